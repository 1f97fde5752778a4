"""Instance matching at IoU > 0.5: counts per image (the batch shape kept), merged cells, empty
maps, micro-averaged totals, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.metrics.instances import InstanceMatch, match_instances
from course_lib.ops import connected_components


def _counts(m: InstanceMatch) -> tuple:
    """``(TP, FP, FN, merged)`` as Python numbers (one image) or lists (a batch)."""
    return tuple(c.tolist() for c in m.counts())


def test_empty_masks():
    empty = torch.zeros(4, 4, dtype=torch.long)
    m = match_instances(empty, empty)
    assert _counts(m) == (0, 0, 0, 0)
    assert all(math.isnan(v) for v in (m.f1, m.precision, m.recall))  # undefined: the policy
    cells = empty.clone()
    cells[:2, :2] = 1
    assert _counts(match_instances(empty, cells)) == (0, 0, 1, 0)
    assert _counts(match_instances(cells, empty)) == (0, 1, 0, 0)
    only_missed = match_instances(empty, cells)
    assert math.isnan(only_missed.precision) and only_missed.recall == 0 and only_missed.f1 == 0
    chosen = match_instances(empty, empty, empty_value=1.0)  # "nothing to find, nothing found"
    assert chosen.f1 == chosen.precision == chosen.recall == 1.0
    assert match_instances(empty, cells, empty_value=1.0).recall == 0  # defined: kept


def test_merged_touching_cells_count_as_misses():
    true = torch.zeros(6, 11, dtype=torch.long)
    true[1:5, 1:5], true[1:5, 6:10] = 1, 2  # two cells, a 1-pixel gap
    separated = connected_components(true > 0)
    assert _counts(match_instances(separated, true)) == (2, 0, 0, 0)
    merged = true.clone()
    merged[1:5, 5] = 3  # the gap filled in: one component
    result = match_instances(connected_components(merged > 0), true)
    assert _counts(result) == (0, 1, 2, 2)  # TP, FP, FN, merged
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
    n_true = [len(img.unique()) - 1 for img in true]
    permuted = torch.where(true > 0, 100 - true, 0)
    assert _counts(match_instances(permuted, true)) == (n_true, [0, 0], [0, 0], [0, 0])
    assert _counts(match_instances(permuted, true).total()) == (sum(n_true), 0, 0, 0)


def test_matches_at_most_one_to_one():
    # a true cell split into two halves plus a sliver: no half has IoU > 0.5
    true = torch.zeros(1, 4, 8, dtype=torch.long)
    true[0, :, :] = 1
    pred = torch.zeros_like(true)
    pred[0, :, :4], pred[0, :, 4:] = 1, 2
    assert _counts(match_instances(pred, true)) == ([0], [2], [1], [0])  # a batch of one image


def test_the_batch_shape_is_kept_and_each_image_counted_alone():
    g = torch.Generator().manual_seed(5)
    true = torch.randint(0, 4, (2, 3, 9, 9), generator=g)
    pred = torch.randint(0, 4, (2, 3, 9, 9), generator=g)
    pred[0, 1] = true[0, 1]  # one image predicted exactly
    m = match_instances(pred, true)
    assert all(c.shape == (2, 3) and c.dtype == torch.long for c in m.counts())
    assert m.f1.shape == m.precision.shape == m.recall.shape == (2, 3)
    assert m.f1.dtype == torch.float32 and m.f1[0, 1] == 1
    for i in range(2):
        for j in range(3):
            alone = match_instances(pred[i, j], true[i, j])
            assert _counts(alone) == tuple(c[i, j].item() for c in m.counts())
            assert all(c.shape == () for c in alone.counts())  # unbatched: 0-d, as every metric


def test_three_spatial_axes():
    true = torch.zeros(2, 4, 6, 6, dtype=torch.long)
    true[0, :2, :3, :3], true[0, 2:, 3:, 3:], true[1, 1:3, 1:5, 1:5] = 1, 2, 5
    m = match_instances(connected_components(true > 0, spatial_dims=3), true, spatial_dims=3)
    assert _counts(m) == ([2, 1], [0, 0], [0, 0], [0, 0])


def test_totals_are_micro_averages():
    """Counts add up over images, ratios do not: the total's F1 is that of the summed counts."""
    true = torch.zeros(2, 6, 11, dtype=torch.long)
    true[:, 1:5, 1:5], true[:, 1:5, 6:10] = 1, 2
    pred = true.clone()
    pred[1, 1:5, 1:10] = 3  # the second image's cells merged into one
    m = match_instances(pred, true)
    assert _counts(m) == ([2, 0], [0, 1], [0, 2], [0, 2])
    total = m.total()
    assert _counts(total) == (2, 1, 2, 2)
    assert total.f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))  # 4/7, the dataset's F1
    assert m.f1.mean() == pytest.approx(0.5)  # per-image mean: another number
    # two batches (a validation loop) give the same totals as one batch
    both = InstanceMatch.concat(
        [match_instances(pred[:1], true[:1]), match_instances(pred[1], true[1])]
    )
    assert _counts(both) == _counts(m)
    assert _counts(both.total()) == _counts(total)


def test_concat_refuses_nothing_and_mixed_empty_values():
    empty = torch.zeros(3, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="at least one"):
        InstanceMatch.concat([])
    with pytest.raises(ValueError, match="same empty_value"):
        InstanceMatch.concat(
            [match_instances(empty, empty), match_instances(empty, empty, empty_value=0.0)]
        )
    assert InstanceMatch.concat([match_instances(empty, empty)] * 2).true_positives.shape == (2,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_counts_stay_on_the_maps_device():
    true = torch.zeros(2, 5, 5, dtype=torch.long, device="cuda")
    true[:, :2, :2] = 1
    m = match_instances(true, true)
    assert m.true_positives.device.type == m.f1.device.type == "cuda"
    assert m.true_positives.tolist() == [1, 1]


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
        (
            lambda: match_instances(
                torch.zeros(3, 3, dtype=torch.long),
                torch.zeros(3, 3, dtype=torch.long),
                spatial_dims=4,
            ),
            "spatial_dims",
        ),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()
