"""Preprocessing (transpose, crop, normalize, resample) against nnunetv2 2.8.1's
DefaultPreprocessor on the same NIfTI cases (fixtures: tests/fixtures/nnunet/make_fixtures.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _nnunet_fixtures import assert_plans_match, load_json

from course_lib.data.nifti import read_nnunet_raw
from course_lib.nnunet.fingerprint import fingerprint_from_arrays
from course_lib.nnunet.planning import plan_experiment
from course_lib.nnunet.preprocessing import (
    crop_to_nonzero,
    normalization_scheme_for_channel,
    normalize_channel,
    preprocess_case,
)

DATASETS = load_json("datasets.json")


def _plans(root: Path, name: str) -> dict:
    dataset_json = json.loads((root / name / "dataset.json").read_text())
    return plan_experiment(DATASETS[name]["fingerprint"], dataset_json)


def assert_digest(array: np.ndarray, digest: dict, atol: float, name: str) -> None:
    assert list(array.shape) == digest["shape"], name
    flat = array.astype(np.float64).ravel()
    np.testing.assert_allclose(flat[:: digest["step"]], digest["samples"], atol=atol, err_msg=name)
    assert flat.mean() == pytest.approx(digest["mean"], abs=atol), name
    assert flat.std() == pytest.approx(digest["std"], abs=atol), name


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_plans_on_real_fingerprints_match(nnunet_raw_root: Path, name: str) -> None:
    assert_plans_match(_plans(nnunet_raw_root, name), DATASETS[name]["plans"])


@pytest.mark.parametrize(
    "key",
    [(n, k) for n in sorted(DATASETS) for k in sorted(DATASETS[n]["preprocessed"])],
    ids=lambda k: f"{k[0]}:{k[1]}",
)
def test_preprocessed_arrays_match_nnunetv2(nnunet_raw_root: Path, key: tuple[str, str]) -> None:
    name, entry = key
    configuration, case = entry.split("/")
    expected = DATASETS[name]["preprocessed"][entry]
    cases = read_nnunet_raw(nnunet_raw_root / name)
    c = cases[int(case)]
    plans = _plans(nnunet_raw_root, name)
    data, seg, props = preprocess_case(
        c.image.numpy(), c.label.numpy()[None], c.spacing, plans, configuration
    )
    assert props["bbox_used_for_cropping"] == expected["bbox"]
    assert (
        list(props["shape_after_cropping_and_before_resampling"])
        == expected["shape_after_cropping"]
    )
    assert data.dtype == np.float32 and seg.dtype == np.int8
    # float32 statistics from the fingerprint differ in the 6th digit; values are O(1)
    assert_digest(data, expected["data"], 1e-4, f"{entry} data")
    assert_digest(seg, expected["seg"], 0, f"{entry} seg")


def test_crop_marks_outside_background_minus_one() -> None:
    data = np.zeros((1, 6, 6), np.float32)
    data[0, 1:5, 2:5] = 1.0
    data[0, 2, 3] = 0.0  # a hole inside: filled, so it stays "inside"
    seg = np.zeros((1, 6, 6), np.int64)
    seg[0, 2, 2] = 1
    cropped, cseg, bbox = crop_to_nonzero(data, seg)
    assert bbox == [[1, 5], [2, 5]] and cropped.shape == (1, 4, 3)
    assert (cseg >= 0).all()  # everything in the box is inside the filled mask here
    data[0, 1, 2] = 0.0  # a notch on the border is outside the mask
    _, cseg, _ = crop_to_nonzero(data, seg)
    assert cseg[0, 0, 0] == -1 and cseg[0, 1, 0] == 1


def test_zscore_with_mask_leaves_outside_at_zero() -> None:
    image = np.array([[0.0, 2.0, 4.0, 0.0]])
    seg = np.array([[-1, 0, 1, -1]])
    out = normalize_channel(image, "ZScoreNormalization", seg=seg, use_mask_for_norm=True)
    np.testing.assert_allclose(out, [[0, -1, 1, 0]])


def test_ct_normalization_clips_then_standardizes() -> None:
    props = {"mean": 50.0, "std": 10.0, "percentile_00_5": 0.0, "percentile_99_5": 100.0}
    out = normalize_channel(
        np.array([-1000.0, 50.0, 3000.0]), "CTNormalization", intensity_properties=props
    )
    np.testing.assert_allclose(out, [-5.0, 0.0, 5.0])


def test_constant_image_does_not_divide_by_zero() -> None:
    out = normalize_channel(np.full((3, 3), 7.0), "ZScoreNormalization")
    assert np.isfinite(out).all() and (out == 0).all()


def test_scheme_names() -> None:
    assert normalization_scheme_for_channel("ct") == "CTNormalization"
    assert normalization_scheme_for_channel("noNorm") == "NoNormalization"
    assert normalization_scheme_for_channel("FLAIR") == "ZScoreNormalization"


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="unknown normalization scheme"):
        normalize_channel(np.zeros(3), "MinMax")
    with pytest.raises(ValueError, match="needs seg"):
        normalize_channel(np.zeros(3), "ZScoreNormalization", use_mask_for_norm=True)
    with pytest.raises(ValueError, match="CTNormalization needs"):
        normalize_channel(np.zeros(3), "CTNormalization")
    with pytest.raises(ValueError, match="spatial shape"):
        crop_to_nonzero(np.zeros((1, 3, 3)), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="not in the plans"):
        preprocess_case(np.zeros((1, 2, 2, 2)), None, (1, 1, 1), {"configurations": {}}, "3d")


def test_preprocess_case_leaves_the_callers_array_alone() -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(100.0, 20.0, (1, 6, 10, 10)).astype(np.float32)
    label = (image > 110).astype(np.int64)
    fingerprint = fingerprint_from_arrays([image], [label], [(2.0, 1.0, 1.0)])
    plans = plan_experiment(
        fingerprint,
        {
            "channel_names": {"0": "CT"},
            "labels": {"background": 0, "x": 1},
            "numTraining": 1,
            "file_ending": ".nii.gz",
        },
    )
    before = image.copy()
    first, _, _ = preprocess_case(image, label, (2.0, 1.0, 1.0), plans, "3d_fullres")
    again, _, _ = preprocess_case(image, label, (2.0, 1.0, 1.0), plans, "3d_fullres")
    np.testing.assert_array_equal(image, before)  # normalisation wrote into a copy
    np.testing.assert_array_equal(first, again)


def test_preprocess_case_refuses_unlabelled_voxels_as_minus_one() -> None:
    image = np.ones((1, 4, 6, 6), np.float32)
    label = np.zeros((1, 4, 6, 6), np.int64)
    label[0, 0] = -1  # course_lib's UNLABELED, which would read as "outside the crop"
    plans = plan_experiment(
        fingerprint_from_arrays([image], [np.abs(label)], [(1.0, 1.0, 1.0)]),
        {
            "channel_names": {"0": "CT"},
            "labels": {"background": 0, "x": 1},
            "numTraining": 1,
            "file_ending": ".nii.gz",
        },
    )
    with pytest.raises(ValueError, match="ignore label id"):
        preprocess_case(image, label, (1.0, 1.0, 1.0), plans, "3d_fullres")
