"""Instance matching at IoU > 0.5: counts, merged cells, empty maps, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.metrics.instances import InstanceMatch, match_instances
from course_lib.ops import connected_components


def test_empty_masks():
    empty = torch.zeros(4, 4, dtype=torch.long)
    m = match_instances(empty, empty)
    assert (m.true_positives, m.false_positives, m.false_negatives) == (0, 0, 0)
    assert all(math.isnan(v) for v in (m.f1, m.precision, m.recall))  # undefined: the policy
    cells = empty.clone()
    cells[:2, :2] = 1
    assert match_instances(empty, cells) == InstanceMatch(0, 0, 1, 0)
    assert match_instances(cells, empty) == InstanceMatch(0, 1, 0, 0)


def test_merged_touching_cells_count_as_misses():
    true = torch.zeros(6, 11, dtype=torch.long)
    true[1:5, 1:5], true[1:5, 6:10] = 1, 2  # two cells, a 1-pixel gap
    separated = connected_components(true > 0)
    assert match_instances(separated, true) == InstanceMatch(2, 0, 0, 0)
    merged = true.clone()
    merged[1:5, 5] = 3  # the gap filled in: one component
    result = match_instances(connected_components(merged > 0), true)
    assert result == InstanceMatch(true_positives=0, false_positives=1, false_negatives=2, merged=2)
    assert result.f1 == 0.0


def test_iou_threshold_is_strict_and_ids_are_arbitrary():
    true = torch.zeros(1, 10, dtype=torch.long)
    true[0, :4] = 7
    pred = torch.zeros(1, 10, dtype=torch.long)
    pred[0, :2] = 3  # IoU 2/4 = 0.5 exactly: not a match
    assert match_instances(pred, true).true_positives == 0
    pred[0, :3] = 3  # IoU 3/4
    assert match_instances(pred, true).true_positives == 1
    assert match_instances(pred, true, iou_threshold=0.8).true_positives == 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n_cells=st.integers(0, 6))
def test_identical_maps_match_every_instance_and_ids_do_not_matter(seed, n_cells):
    g = torch.Generator().manual_seed(seed)
    true = torch.zeros(2, 12, 12, dtype=torch.long)
    for k in range(1, n_cells + 1):
        y, x = torch.randint(0, 10, (2,), generator=g).tolist()
        true[k % 2, y : y + 2, x : x + 2] = k  # later cells may cover earlier ones
    n_true = sum(len(img.unique()) - 1 for img in true)
    permuted = torch.where(true > 0, 100 - true, 0)
    assert match_instances(permuted, true) == InstanceMatch(n_true, 0, 0, 0)


def test_matches_at_most_one_to_one():
    # a true cell split into two halves plus a sliver: no half has IoU > 0.5
    true = torch.zeros(1, 4, 8, dtype=torch.long)
    true[0, :, :] = 1
    pred = torch.zeros_like(true)
    pred[0, :, :4], pred[0, :, 4:] = 1, 2
    assert match_instances(pred, true) == InstanceMatch(0, 2, 1, 0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: match_instances(torch.zeros(3, 3), torch.zeros(3, 3)), "integer or bool"),
        (
            lambda: match_instances(
                torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long)
            ),
            "spatial axes",
        ),
        (
            lambda: match_instances(
                torch.zeros(3, 3, dtype=torch.long), torch.zeros(3, 4, dtype=torch.long)
            ),
            "same shape",
        ),
        (
            lambda: match_instances(
                torch.zeros(3, 3, dtype=torch.long),
                torch.zeros(3, 3, dtype=torch.long),
                iou_threshold=0.3,
            ),
            "unique",
        ),
        (
            lambda: match_instances(
                -torch.ones(3, 3, dtype=torch.long), torch.zeros(3, 3, dtype=torch.long)
            ),
            ">= 0",
        ),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()
