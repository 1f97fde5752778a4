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

Results keep the batch shape, as every metric's: the counts are per image. A dataset's F1 is
micro-averaged: add the counts of all images (:meth:`InstanceMatch.total`, or
:meth:`InstanceMatch.concat` over several batches) and take the ratio of the totals; the mean of
per-image F1 scores is a different number, which weighs an image with 2 cells like one with 200.

Examples
--------
>>> import torch
>>> from course_lib.ops import connected_components
>>> true = torch.tensor([[1, 1, 0, 2, 2]])
>>> merged = connected_components(torch.tensor([[1, 1, 1, 1, 1]]))
>>> match_instances(merged, true).true_positives  # one image: a 0-d count
tensor(0)
>>> batch = torch.stack([merged, connected_components(true > 0)])  # (2, 1, 5): two images
>>> m = match_instances(batch, torch.stack([true, true]))
>>> m.true_positives, m.f1
(tensor([0, 2]), tensor([0., 1.]))
>>> m.total().f1  # both images as one dataset: 2 TP, 1 FP, 2 FN; not the mean 0.5
tensor(0.5714)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from course_lib.metrics.overlap import ratio
from course_lib.ops.checks import check_int


def _check_map(name: str, x: Tensor, spatial_dims: int) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim < spatial_dims:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{name} must be a tensor (*batch, *spatial) with {spatial_dims} spatial axes, got "
            f"{got}"
        )
    if x.dtype.is_floating_point or x.dtype.is_complex:
        raise ValueError(f"{name} must be an integer or bool map, got dtype {x.dtype}")
    return x


def _consecutive_ids(labels: Tensor) -> Tensor:
    """The same instances numbered ``1..K`` (0 stays background), for a compact histogram."""
    zero = torch.zeros(1, dtype=labels.dtype, device=labels.device)
    _, inverse = torch.unique(torch.cat([zero, labels.flatten()]), return_inverse=True)
    return inverse[1:].reshape(labels.shape)  # id 0 always exists, so it maps to 0


@dataclass(frozen=True, eq=False)
class InstanceMatch:
    """Counts of instance matching per image: int64 tensors of the batch shape (0-d for a total).

    ``precision``, ``recall`` and ``f1`` are float32 tensors of the same shape, ``empty_value``
    where a ratio is undefined (NaN by default, the metrics' policy). For a dataset, micro-average:
    :meth:`total` adds the counts (they add up; ratios do not), and its ``f1`` is the dataset's.
    """

    true_positives: Tensor
    """True instances matched by a predicted one (IoU above the threshold)."""
    false_positives: Tensor
    """Predicted instances that match nothing."""
    false_negatives: Tensor
    """True instances that nothing matches."""
    merged: Tensor
    """True instances more than half covered by a predicted instance that also covers more than
    half of another true instance: cells a missing border merged with a neighbour."""
    empty_value: float = math.nan
    """The value of a ratio whose denominator is 0 (see the properties)."""

    @property
    def precision(self) -> Tensor:
        """TP / (TP + FP); ``empty_value`` where nothing was predicted."""
        return ratio(
            self.true_positives, self.true_positives + self.false_positives, self.empty_value
        )

    @property
    def recall(self) -> Tensor:
        """TP / (TP + FN); ``empty_value`` where there is nothing to find."""
        return ratio(
            self.true_positives, self.true_positives + self.false_negatives, self.empty_value
        )

    @property
    def f1(self) -> Tensor:
        """2 TP / (2 TP + FP + FN), the instance F1 score; ``empty_value`` where both are empty."""
        tp2 = 2 * self.true_positives
        return ratio(tp2, tp2 + self.false_positives + self.false_negatives, self.empty_value)

    @classmethod
    def from_counts(cls, counts: Tensor, empty_value: float = math.nan) -> InstanceMatch:
        """From a ``(*batch, 4)`` tensor of ``(TP, FP, FN, merged)`` rows."""
        tp, fp, fn, merged = counts.unbind(-1)
        return cls(tp, fp, fn, merged, empty_value)

    def counts(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(true_positives, false_positives, false_negatives, merged)``."""
        return self.true_positives, self.false_positives, self.false_negatives, self.merged

    def total(self) -> InstanceMatch:
        """The counts summed over every batch axis (0-d tensors): one result for the whole batch,
        whose ratios are micro-averages (e.g. the F1 of all cells together)."""
        return self.from_counts(torch.stack([c.sum() for c in self.counts()]), self.empty_value)

    @staticmethod
    def concat(matches: Iterable[InstanceMatch]) -> InstanceMatch:
        """The results of several batches (e.g. a validation loop) as one batch of shape
        ``(images,)``, in order; ``.total()`` of it gives the dataset's counts."""
        matches = list(matches)
        if not matches:
            raise ValueError("concat needs at least one InstanceMatch")
        if len({str(m.empty_value) for m in matches}) > 1:  # str: NaN equals NaN
            raise ValueError("concat needs results with the same empty_value")
        rows = [torch.stack(m.counts(), dim=-1).reshape(-1, 4) for m in matches]
        return InstanceMatch.from_counts(torch.cat(rows), matches[0].empty_value)


def _match_one(pred: Tensor, true: Tensor, iou_threshold: float) -> tuple[int, int, int, int]:
    """``(TP, FP, FN, merged)`` of one image's instance maps."""
    pred, true = _consecutive_ids(pred), _consecutive_ids(true)
    n_p, n_t = int(pred.max()) + 1, int(true.max()) + 1
    # joint histogram: overlap[i, j] = pixels in predicted i and true j (0 = background)
    overlap = torch.bincount((pred * n_t + true).flatten(), minlength=n_p * n_t)
    overlap = overlap.reshape(n_p, n_t)
    area_p, area_t = overlap.sum(1)[1:], overlap.sum(0)[1:]
    inter = overlap[1:, 1:]
    iou = inter / (area_p[:, None] + area_t[None, :] - inter).clamp_min(1)
    n_match = int((iou > iou_threshold).sum())
    covers = inter * 2 > area_t[None, :]  # predicted i holds more than half of true j
    per_pred = covers.sum(1)
    merged = int(per_pred[per_pred >= 2].sum())
    return n_match, (n_p - 1) - n_match, (n_t - 1) - n_match, merged


def match_instances(
    pred: Tensor,
    target: Tensor,
    *,
    iou_threshold: float = 0.5,
    spatial_dims: int = 2,
    empty_value: float = math.nan,
) -> InstanceMatch:
    """Match predicted to true instances one-to-one at IoU > ``iou_threshold``, per image.

    Parameters
    ----------
    pred, target : Tensor
        Integer instance maps of one shape ``(*batch, *spatial)``: 0 background, any positive id
        per instance (ids are per image).
    iou_threshold : float
        In ``[0.5, 1)``: at 0.5 and above a threshold match is unique (see the module docstring).
    spatial_dims : {2, 3}
        Number of trailing spatial axes; the leading ones are a batch.
    empty_value : float
        Precision, recall and F1 where undefined (nothing predicted, nothing to find, or both);
        NaN by default, so that ``torch.nanmean`` skips it.

    Returns
    -------
    InstanceMatch
        True/false positives, false negatives and merged cells per image, int64 tensors of shape
        ``batch`` (0-d for one image) on the maps' device; ``.total()`` sums them.
    """
    if not 0.5 <= iou_threshold < 1.0:
        raise ValueError(
            f"iou_threshold must be in [0.5, 1) so that matches are unique, got {iou_threshold!r}"
        )
    check_int("spatial_dims", spatial_dims, 2, 3)
    pred = _check_map("pred", pred, spatial_dims)
    true = _check_map("target", target, spatial_dims)
    if pred.shape != true.shape:
        raise ValueError(
            f"pred {tuple(pred.shape)} and target {tuple(true.shape)} must have the same shape"
        )
    if bool((pred < 0).any()) or bool((true < 0).any()):
        raise ValueError("instance maps must be >= 0 (0 background)")
    batch, spatial = pred.shape[: pred.ndim - spatial_dims], pred.shape[pred.ndim - spatial_dims :]
    per_image = [
        _match_one(p, t, iou_threshold)
        for p, t in zip(
            pred.long().reshape(-1, *spatial), true.long().reshape(-1, *spatial), strict=True
        )
    ]
    counts = torch.tensor(per_image, dtype=torch.long, device=pred.device).reshape(*batch, 4)
    return InstanceMatch.from_counts(counts, empty_value)
