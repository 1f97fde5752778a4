"""Overlap metrics: hand values, label maps, the empty-mask policy, properties, medpy and MONAI."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.metrics import confusion_counts, dice_score, iou_score, precision, recall

METRICS = [dice_score, iou_score, precision, recall]


def _pair(shape, seed, density=0.4):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen) < density, torch.rand(shape, generator=gen) < density


def test_hand_computed_values():
    pred = torch.tensor([[1, 1, 1, 0], [0, 0, 1, 0]])
    target = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 1]])
    assert [int(c) for c in confusion_counts(pred, target)] == [3, 1, 2]  # TP, FP, FN
    assert dice_score(pred, target).item() == pytest.approx(6 / 9)
    assert iou_score(pred, target).item() == pytest.approx(3 / 6)
    assert precision(pred, target).item() == pytest.approx(3 / 4)
    assert recall(pred, target).item() == pytest.approx(3 / 5)


def test_label_maps_give_one_value_per_class_after_the_batch_axes():
    pred = torch.tensor([[[0, 1], [2, 2]], [[1, 1], [0, 0]]])
    target = torch.tensor([[[0, 1], [2, 1]], [[1, 1], [0, 0]]])
    dice = dice_score(pred, target, num_classes=3, spatial_dims=2)
    assert dice.shape == (2, 3)
    expected = torch.tensor([[1.0, 2 / 3, 2 / 3], [1.0, 1.0, math.nan]])
    torch.testing.assert_close(dice, expected, equal_nan=True)
    one_hot = torch.nn.functional.one_hot(pred, 3).movedim(-1, 1)
    one_hot_target = torch.nn.functional.one_hot(target, 3).movedim(-1, 1)
    torch.testing.assert_close(
        dice_score(one_hot, one_hot_target, spatial_dims=2), dice, equal_nan=True
    )


@pytest.mark.parametrize("metric", METRICS)
def test_empty_policy(metric):
    empty, some = torch.zeros(3, 3, dtype=torch.bool), torch.eye(3, dtype=torch.bool)
    assert math.isnan(metric(empty, empty).item())
    assert metric(empty, empty, empty_value=1.0).item() == 1.0
    assert metric(some, some).item() == 1.0
    # one side empty: defined (0) unless that side is the metric's denominator
    if metric is precision:
        assert math.isnan(metric(empty, some).item()) and metric(some, empty).item() == 0.0
    elif metric is recall:
        assert metric(empty, some).item() == 0.0 and math.isnan(metric(some, empty).item())
    else:
        assert metric(empty, some).item() == 0.0 == metric(some, empty).item()


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.05, 0.95))
def test_properties(seed, density):
    a, b = _pair((3, 9, 11), seed, density)
    dice = dice_score(a, b, spatial_dims=2, empty_value=1.0)
    iou = iou_score(a, b, spatial_dims=2, empty_value=1.0)
    torch.testing.assert_close(iou, dice / (2 - dice))
    torch.testing.assert_close(dice, dice_score(b, a, spatial_dims=2, empty_value=1.0))
    torch.testing.assert_close(
        precision(a, b, spatial_dims=2), recall(b, a, spatial_dims=2), equal_nan=True
    )
    assert ((0 <= dice) & (dice <= 1)).all() and (iou <= dice).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_medpy(seed):
    binary = pytest.importorskip("medpy.metric.binary")
    a, b = _pair((12, 13, 9), seed)
    an, bn = a.numpy(), b.numpy()
    assert dice_score(a, b).item() == pytest.approx(binary.dc(an, bn))
    assert iou_score(a, b).item() == pytest.approx(binary.jc(an, bn))
    assert precision(a, b).item() == pytest.approx(binary.precision(an, bn))
    assert recall(a, b).item() == pytest.approx(binary.recall(an, bn))


def test_agrees_with_monai_including_empty_ground_truth():
    metrics = pytest.importorskip("monai.metrics")
    pred, target = _pair((2, 3, 10, 10), 3)
    pred[0, 1] = target[0, 1] = False  # both empty
    target[1, 2] = False  # empty ground truth, non-empty prediction
    monai = metrics.compute_dice(pred.float(), target.float(), ignore_empty=False)
    ours = dice_score(pred, target, spatial_dims=2, empty_value=1.0)
    torch.testing.assert_close(ours, monai.float())
    assert ours[1, 2] == 0  # MONAI's default ignore_empty=True would say NaN here


@pytest.mark.parametrize(
    "pred, target, kwargs, message",
    [
        (torch.rand(3, 3), torch.zeros(3, 3), {}, "binary mask"),
        (torch.zeros(3, 3), torch.zeros(3, 4), {}, "same shape"),
        (
            torch.zeros(3, 3, dtype=torch.long),
            torch.full((3, 3), 3),
            {"num_classes": 3},
            r"\[0, 3\)",
        ),
        (torch.rand(3, 3), torch.zeros(3, 3), {"num_classes": 3}, "integer label map"),
        (torch.zeros(3, 3, dtype=torch.long), torch.zeros(3, 3), {"num_classes": 0}, "num_classes"),
        (torch.zeros(3, 3), torch.zeros(3, 3), {"spatial_dims": 3}, "spatial_dims"),
    ],
)
def test_bad_input_raises_value_error(pred, target, kwargs, message):
    with pytest.raises(ValueError, match=message):
        dice_score(pred, target, **kwargs)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.uint8])
def test_any_binary_dtype_gives_the_bool_result(dtype):
    a, b = _pair((2, 7, 9), 4)
    expected = dice_score(a, b, spatial_dims=2)
    assert torch.equal(dice_score(a.to(dtype), b.to(dtype), spatial_dims=2), expected)
