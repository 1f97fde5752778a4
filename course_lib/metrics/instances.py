"""Instance-level evaluation: are touching cells separated? Matching instances at IoU > 0.5.

A semantic map (cell / background) becomes instances through its connected components
(:func:`~course_lib.ops.connected_components`). A predicted instance *matches* a
true one when their intersection over union exceeds 0.5. Above 0.5 no instance can match two
others (two regions each covering more than half of the union cannot be disjoint), so a plain
threshold gives a one-to-one matching without the Hungarian algorithm. This is the rule of the
cell-tracking and instance-segmentation benchmarks (e.g. the SEG measure of the ISBI cell tracking
challenge, and "AP at IoU 0.5"). When a net fails to draw the thin background gap between two
touching cells, both merge into one component whose IoU with either cell is at most about 0.5:
two misses and one false positive instead of two matches.

Examples
--------
>>> import torch
>>> from course_lib.ops import connected_components
>>> true = torch.tensor([[1, 1, 0, 2, 2]])
>>> merged = connected_components(torch.tensor([[1, 1, 1, 1, 1]]))
>>> match_instances(merged, true).true_positives
0
>>> match_instances(connected_components(true > 0), true).true_positives
2
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def _check_map(name: str, x: Tensor, spatial_dims: int) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim not in (spatial_dims, spatial_dims + 1):
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{name} must be a tensor with {spatial_dims} spatial axes, optionally after a batch "
            f"axis, got {got}"
        )
    if x.dtype.is_floating_point or x.dtype.is_complex:
        raise ValueError(f"{name} must be an integer or bool map, got dtype {x.dtype}")
    return x if x.ndim == spatial_dims + 1 else x[None]


def _consecutive_ids(labels: Tensor) -> Tensor:
    """The same instances numbered ``1..K`` (0 stays background), for a compact histogram."""
    zero = torch.zeros(1, dtype=labels.dtype, device=labels.device)
    _, inverse = torch.unique(torch.cat([zero, labels.flatten()]), return_inverse=True)
    return inverse[1:].reshape(labels.shape)  # id 0 always exists, so it maps to 0


@dataclass(frozen=True)
class InstanceMatch:
    """Counts of instance matching (summed over the images of a batch)."""

    true_positives: int
    """True instances matched by a predicted one (IoU above the threshold)."""
    false_positives: int
    """Predicted instances that match nothing."""
    false_negatives: int
    """True instances that nothing matches."""
    merged: int
    """True instances more than half covered by a predicted instance that also covers more than
    half of another true instance: cells a missing border merged with a neighbour."""

    @property
    def precision(self) -> float:
        """TP / (TP + FP); NaN when nothing was predicted (undefined, the metrics' policy)."""
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else math.nan

    @property
    def recall(self) -> float:
        """TP / (TP + FN); NaN when there is nothing to find (undefined)."""
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else math.nan

    @property
    def f1(self) -> float:
        """2 TP / (2 TP + FP + FN), the instance F1 score; NaN when both are empty (undefined)."""
        denominator = 2 * self.true_positives + self.false_positives + self.false_negatives
        return 2 * self.true_positives / denominator if denominator else math.nan


def match_instances(
    pred: Tensor,
    target: Tensor,
    *,
    iou_threshold: float = 0.5,
    spatial_dims: int = 2,
) -> InstanceMatch:
    """Match predicted to true instances one-to-one at IoU > ``iou_threshold``.

    Parameters
    ----------
    pred, target : Tensor
        Integer instance maps of one shape, ``(N, *spatial)`` or ``(*spatial)``: 0 background,
        any positive id per instance (ids are per image).
    iou_threshold : float
        In ``[0.5, 1)``: at 0.5 and above a threshold match is unique (see the module docstring).
    spatial_dims : {2, 3}
        Number of spatial axes.

    Returns
    -------
    InstanceMatch
        True/false positives, false negatives and merged cells, summed over the batch: the one
        metric that does not keep the batch shape, because counts add up where ratios do not.
    """
    if not 0.5 <= iou_threshold < 1.0:
        raise ValueError(
            f"iou_threshold must be in [0.5, 1) so that matches are unique, got {iou_threshold!r}"
        )
    shape = tuple(pred.shape) if isinstance(pred, Tensor) else None
    pred = _check_map("pred", pred, spatial_dims)
    true = _check_map("target", target, spatial_dims)
    if pred.shape != true.shape:
        raise ValueError(f"pred {shape} and target {tuple(target.shape)} must have the same shape")
    if bool((pred < 0).any()) or bool((true < 0).any()):
        raise ValueError("instance maps must be >= 0 (0 background)")
    tp = fp = fn = merged = 0
    for p_img, t_img in zip(pred.long(), true.long(), strict=True):
        p_img, t_img = _consecutive_ids(p_img), _consecutive_ids(t_img)
        n_p, n_t = int(p_img.max()) + 1, int(t_img.max()) + 1
        # joint histogram: overlap[i, j] = pixels in predicted i and true j (0 = background)
        overlap = torch.bincount((p_img * n_t + t_img).flatten(), minlength=n_p * n_t)
        overlap = overlap.reshape(n_p, n_t)
        area_p, area_t = overlap.sum(1)[1:], overlap.sum(0)[1:]
        inter = overlap[1:, 1:]
        iou = inter / (area_p[:, None] + area_t[None, :] - inter).clamp_min(1)
        n_match = int((iou > iou_threshold).sum())
        tp += n_match
        fp += (n_p - 1) - n_match
        fn += (n_t - 1) - n_match
        covers = inter * 2 > area_t[None, :]  # predicted i holds more than half of true j
        per_pred = covers.sum(1)
        merged += int(per_pred[per_pred >= 2].sum())
    return InstanceMatch(tp, fp, fn, merged)
