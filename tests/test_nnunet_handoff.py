"""The course's raw datasets handed to nnU-Net v2 itself (nnunetv2 2.8.1): its integrity check
passes, its planner writes the plans ``course_lib.nnunet.plan_experiment`` makes, and its
preprocessing of a case equals the course's (tests/_nnunet_handoff.py runs nnunetv2).

Skipped where nnunetv2 is not installed, except under ``COURSE_REQUIRE_NNUNETV2=1`` (CI sets it,
and ``course.sh test`` installs nnunetv2), where a missing nnunetv2 fails.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _nnunet_fixtures import assert_plans_match, make_fixtures

from course_lib import data
from course_lib.data.nifti import read_nnunet_raw
from course_lib.nnunet import extract_fingerprint, plan_experiment, preprocess_case

HERE = Path(__file__).resolve().parent
REQUIRE_ENV = "COURSE_REQUIRE_NNUNETV2"
DATASETS = ("Dataset501_CourseCT", "Dataset502_CourseSparseCT")


def _nnunetv2_or_skip() -> None:
    if importlib.util.find_spec("nnunetv2") is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but nnunetv2 is not installed (course.sh installs it)")
        pytest.skip("nnunetv2 is not installed (course.sh test installs it)")


@pytest.fixture(scope="module")
def handed_over(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The course's datasets in ``raw/``, and what nnunetv2 made of them."""
    _nnunetv2_or_skip()
    work = tmp_path_factory.mktemp("handoff")
    raw, store = work / "raw", work / "data"
    raw.mkdir()
    # the dataset chapter 06 writes, as it writes it
    shutil.copytree(data.load_dataset("nnunet_ct", "quick", data_dir=store), raw / DATASETS[0])
    # chapter 07's sparse annotations, written in nnU-Net's layout by the course's writer
    # (unlabelled voxels become nnU-Net's ignore label)
    sparse = data.load_dataset("sparse_volumes", "quick", data_dir=store)[:3]
    data.write_nnunet_raw(raw / DATASETS[1], sparse, labels=data.CT_LABELS)
    done = subprocess.run(
        [sys.executable, str(HERE / "_nnunet_handoff.py"), str(work)],
        env={**os.environ, "OMP_NUM_THREADS": "1", "nnUNet_n_proc_DA": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    return work


@functools.cache
def _our_fingerprint(folder: Path) -> dict:
    return extract_fingerprint(folder)


@pytest.mark.parametrize("name", DATASETS)
def test_nnunetv2_plans_equal_the_courses(handed_over: Path, name: str) -> None:
    folder = handed_over / "raw" / name
    theirs = json.loads(
        (handed_over / "preprocessed" / name / "dataset_fingerprint.json").read_text()
    )
    ours = _our_fingerprint(folder)
    assert ours["shapes_after_crop"] == theirs["shapes_after_crop"]
    np.testing.assert_allclose(ours["spacings"], theirs["spacings"], rtol=1e-6)
    for channel, stats in theirs["foreground_intensity_properties_per_channel"].items():
        got = ours["foreground_intensity_properties_per_channel"][channel]
        for key, value in stats.items():  # nnU-Net sums float32 values, the course float64
            assert got[key] == pytest.approx(value, rel=2e-5), (channel, key)
    plans = make_fixtures()._plans_digest(
        json.loads((handed_over / "preprocessed" / name / "nnUNetPlans.json").read_text())
    )
    dataset_json = json.loads((folder / "dataset.json").read_text())
    # the planner alone: given nnU-Net's fingerprint, the same plans to the last digit
    assert_plans_match(plan_experiment(theirs, dataset_json), plans)
    # end to end: nnU-Net reads spacings as float32 header values, the course rounds to 1e-6 mm
    assert_plans_match(plan_experiment(ours, dataset_json), plans, rtol=1e-6)


@pytest.mark.parametrize("name", DATASETS)
def test_nnunetv2_preprocessing_equals_the_courses(handed_over: Path, name: str) -> None:
    folder = handed_over / "raw" / name
    dataset_json = json.loads((folder / "dataset.json").read_text())
    plans = plan_experiment(_our_fingerprint(folder), dataset_json)
    case = read_nnunet_raw(folder)[0]
    saved = sorted((handed_over / "out" / name).glob("*.npz"))
    assert {p.stem for p in saved} == set(plans["configurations"])
    for path in saved:
        theirs = np.load(path)
        label = case.label.numpy()[None]
        label = np.where(label < 0, len(data.CT_LABELS), label)  # UNLABELED -> ignore, as written
        image, seg, props = preprocess_case(
            case.image.numpy(), label, case.spacing, plans, path.stem
        )
        assert props["bbox_used_for_cropping"] == theirs["bbox"].tolist(), path.stem
        assert image.shape == theirs["data"].shape, path.stem
        np.testing.assert_allclose(image, theirs["data"], atol=1e-4, err_msg=path.stem)
        np.testing.assert_array_equal(seg, theirs["seg"], err_msg=path.stem)
