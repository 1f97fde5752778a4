"""Fingerprint: our extract_fingerprint against nnunetv2 2.8.1's on the same NIfTI datasets
(fixtures from tests/fixtures/nnunet/make_fixtures.py), and the sampling rule itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _nnunet_fixtures import load_json

from course_lib.data import UNLABELED
from course_lib.nnunet.fingerprint import (
    extract_fingerprint,
    fingerprint_from_arrays,
    foreground_sample_counts,
    weighted_intensity_statistics,
)

DATASETS = load_json("datasets.json")


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_fingerprint_matches_nnunetv2(nnunet_raw_root: Path, name: str) -> None:
    expected = DATASETS[name]["fingerprint"]
    ours = extract_fingerprint(nnunet_raw_root / name)
    assert ours["shapes_after_crop"] == expected["shapes_after_crop"]
    # nnU-Net reads spacings as float32 header values; the course's reader rounds to 1e-6 mm
    np.testing.assert_allclose(ours["spacings"], expected["spacings"], rtol=1e-6)
    assert ours["median_relative_size_after_cropping"] == pytest.approx(
        expected["median_relative_size_after_cropping"], rel=1e-12
    )
    for channel, stats in expected["foreground_intensity_properties_per_channel"].items():
        got = ours["foreground_intensity_properties_per_channel"][channel]
        for key, value in stats.items():
            # same draws; nnU-Net sums 1e8 float32 values, we sum in float64
            assert got[key] == pytest.approx(value, rel=2e-5), (channel, key)


def test_counts_are_the_draws_of_random_choice() -> None:
    values = np.arange(7.0)
    n = 10_007
    drawn = np.random.RandomState(1234).choice(values, n, replace=True)
    counts = foreground_sample_counts(len(values), n, np.random.RandomState(1234))
    np.testing.assert_array_equal(counts, np.bincount(drawn.astype(int), minlength=7))


def test_weighted_statistics_equal_statistics_of_the_expanded_sample() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=50)
    counts = rng.integers(0, 6, size=50)
    sample = np.repeat(values, counts)
    stats = weighted_intensity_statistics(values, counts)
    expected = {
        "mean": sample.mean(),
        "median": np.median(sample),
        "std": sample.std(),
        "min": sample.min(),
        "max": sample.max(),
        "percentile_99_5": np.percentile(sample, 99.5),
        "percentile_00_5": np.percentile(sample, 0.5),
    }
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_cases_weigh_equally_whatever_their_foreground_size() -> None:
    small = np.zeros((1, 4, 4, 4), np.float32)
    small[0, 1, 1, 1] = 10.0
    big = np.full((1, 4, 4, 4), 20.0, np.float32)
    labels = [(small > 0).astype(np.int64), np.ones((1, 4, 4, 4), np.int64)]
    fp = fingerprint_from_arrays([small, big], labels, [(1, 1, 1)] * 2, num_samples=2000)
    assert fp["foreground_intensity_properties_per_channel"]["0"]["mean"] == pytest.approx(15.0)


def test_empty_foreground_case_draws_nothing() -> None:
    a = np.ones((1, 3, 3, 3), np.float32)
    fp = fingerprint_from_arrays(
        [a, 2 * a],
        [np.zeros((3, 3, 3), int), np.ones((3, 3, 3), int)],
        [(1, 1, 1)] * 2,
        num_samples=100,
    )
    assert fp["foreground_intensity_properties_per_channel"]["0"]["min"] == 2.0
    with pytest.raises(ValueError, match="no case has any foreground"):
        fingerprint_from_arrays([a], [np.zeros((3, 3, 3), int)], [(1, 1, 1)])


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="one entry per case"):
        fingerprint_from_arrays([], [], [])
    with pytest.raises(ValueError, match="spatial shape"):
        fingerprint_from_arrays([np.ones((1, 3, 3, 3))], [np.ones((2, 2, 2))], [(1, 1, 1)])


def test_unlabelled_voxels_count_as_foreground_as_nnunets_ignore_label() -> None:
    """nnU-Net writes the ignore label as the highest id (> 0), so its fingerprint draws them."""
    image = np.arange(4 * 5 * 5, dtype=np.float32).reshape(1, 4, 5, 5) + 1.0
    label = np.zeros((4, 5, 5), np.int64)
    label[0] = 1
    label[3] = UNLABELED
    as_on_disk = np.where(label == UNLABELED, 2, label)
    ours = fingerprint_from_arrays([image], [label], [(1.0, 1.0, 1.0)], num_samples=1000)
    disk = fingerprint_from_arrays([image], [as_on_disk], [(1.0, 1.0, 1.0)], num_samples=1000)
    assert ours == disk
    stats = ours["foreground_intensity_properties_per_channel"]["0"]
    assert stats["max"] == image[0, 3].max()  # the unlabelled slice was drawn from
