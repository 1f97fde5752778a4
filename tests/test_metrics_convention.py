"""One convention for every metric (``course_lib.metrics``' docstring), checked on all of them:
``(pred, target)`` first, results of the batch shape (0-d for one unbatched pair), and
``empty_value`` (NaN by default) wherever an empty mask can leave the metric undefined."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from course_lib import metrics as M

HELPERS = {"connected_components", "distance_transform_edt", "mask_surface", "simple_point_warp"}
"""Exported primitives that take one mask or build pieces of a metric."""
UNDEFINED_ON_EMPTY = {
    "average_surface_distance",
    "dice_score",
    "hausdorff_distance",
    "iou_score",
    "match_instances",
    "precision",
    "rand_error",
    "recall",
}
"""Metrics with a 0/0 (or no surface at all) on empty masks: they take ``empty_value``."""
METRICS = sorted(n for n in M.__all__ if n[0].islower() and n not in HELPERS)
SPATIAL_DIMS = {"pixel_error", "rand_error", "warping_error"}  # 2D by definition: no argument


def _per_item(name, pred, target):
    """The metric's per-item results as a flat list of tensors of the batch shape."""
    kwargs = {} if name in SPATIAL_DIMS else {"spatial_dims": 2}
    if name == "match_instances":
        pred, target = pred.long(), target.long()
    result = getattr(M, name)(pred, target, **kwargs)
    if name == "match_instances":
        return [*result.counts(), result.f1]
    if name == "surface_distances":  # one (pred -> target, target -> pred) pair per item
        return [torch.tensor([len(pairs) for pairs in result])]
    return list(result) if isinstance(result, tuple) else [result]


def test_every_metric_takes_pred_then_target():
    for name in METRICS:
        params = list(inspect.signature(getattr(M, name)).parameters)
        assert params[:2] == ["pred", "target"], (name, params)


@pytest.mark.parametrize("name", METRICS)
def test_empty_value_defaults_to_nan_where_a_metric_can_be_undefined(name):
    params = inspect.signature(getattr(M, name)).parameters
    if name in UNDEFINED_ON_EMPTY:
        assert math.isnan(params["empty_value"].default), name
    else:
        assert "empty_value" not in params, f"{name}: add it to UNDEFINED_ON_EMPTY"


@pytest.mark.parametrize("name", [n for n in METRICS if n != "surface_distances"])
def test_results_keep_the_batch_shape(name):
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 3, 8, 8, generator=g) > 0.5
    target = torch.rand(2, 3, 8, 8, generator=g) > 0.5
    batched = _per_item(name, pred, target)
    assert all(r.shape == (2, 3) for r in batched), (name, [r.shape for r in batched])
    single = _per_item(name, pred[1, 2], target[1, 2])
    assert all(r.shape == () for r in single), (name, [r.shape for r in single])
    for one, many in zip(single, batched, strict=True):  # each item computed alone
        torch.testing.assert_close(one, many[1, 2], equal_nan=True)
