"""Overlap metrics: Dice, IoU (Jaccard), precision and recall, per item and per class.

From the confusion counts of one mask pair, ``TP = |P ∧ G|``, ``FP = |P ∧ ¬G|``, ``FN = |¬P ∧ G|``:

* Dice ``2TP / (2TP + FP + FN)`` (Dice 1945; Sørensen 1948),
* IoU ``TP / (TP + FP + FN)`` (Jaccard 1912), with ``IoU = Dice / (2 − Dice)``,
* precision ``TP / (TP + FP)`` and recall (sensitivity) ``TP / (TP + FN)``.

Empty-mask policy: a ratio whose denominator is 0 is undefined, and the metric returns
``empty_value`` there, NaN by default, so that ``torch.nanmean`` skips it rather than it counting
as a perfect 1 or a failed 0. That happens for Dice and IoU only when prediction and target are
both empty (an empty target with a non-empty prediction gives 0: MONAI's ``ignore_empty=True``
would give NaN), for precision when the prediction is empty, for recall when the target is empty.
Pass ``empty_value=1.0`` for MONAI's ``ignore_empty=False`` (both empty counts as a match).
"""

from __future__ import annotations

import math

import torch

from course_lib.metrics._checks import binary_pair, check_same_shape
from course_lib.ops.checks import check_int, resolve_spatial_dims


def _as_masks(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int | None, spatial_dims: int | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Binary masks of equal shape ``(*batch, *spatial)`` and their number of spatial axes.

    Label maps (``num_classes`` given) become one mask per class, the class axis placed right
    before the spatial axes: ``(*batch, *spatial)`` labels give ``(*batch, C, *spatial)`` masks.
    """
    if num_classes is None:
        pred, target = binary_pair(pred, target)
        return pred, target, resolve_spatial_dims(pred.ndim, None, spatial_dims)
    check_int("num_classes", num_classes)
    for name, labels in (("pred", pred), ("target", target)):
        if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point:
            raise ValueError(f"{name} must be an integer label map when num_classes is given")
        if labels.numel() and not (0 <= int(labels.min()) and int(labels.max()) < num_classes):
            raise ValueError(
                f"{name} labels must lie in [0, {num_classes}), got [{int(labels.min())}, "
                f"{int(labels.max())}]"
            )
    check_same_shape(pred, target)
    spatial_dims = resolve_spatial_dims(pred.ndim, None, spatial_dims)
    axis = pred.ndim - spatial_dims
    classes = torch.arange(num_classes, device=pred.device).view(-1, *[1] * spatial_dims)
    return pred.unsqueeze(axis) == classes, target.unsqueeze(axis) == classes, spatial_dims


def confusion_counts(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int | None = None,
    spatial_dims: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(TP, FP, FN)`` voxel counts (int64) over the spatial axes.

    Parameters
    ----------
    pred, target : Tensor
        Binary masks (bool or 0/1) of the same shape ``(*batch, *spatial)``; or, with
        ``num_classes``, integer label maps, compared class by class.
    num_classes : int, optional
        Read the inputs as label maps with values in ``[0, num_classes)``; the counts then get a
        class axis after the batch axes.
    spatial_dims : int, optional
        Number of trailing spatial axes; default: all (a single pair). E.g. 2 for ``(N, C, H, W)``.

    Examples
    --------
    >>> confusion_counts(torch.tensor([1, 1, 0, 0]), torch.tensor([1, 0, 1, 0]))
    (tensor(1), tensor(1), tensor(1))
    """
    p, g, spatial_dims = _as_masks(pred, target, num_classes, spatial_dims)
    dims = tuple(range(p.ndim - spatial_dims, p.ndim))
    return (p & g).sum(dims), (p & ~g).sum(dims), (~p & g).sum(dims)


def ratio(num: torch.Tensor, den: torch.Tensor, empty_value: float) -> torch.Tensor:
    """``num / den`` in float32, ``empty_value`` where ``den`` is 0 (the empty-mask policy)."""
    num, den = num.to(torch.float32), den.to(torch.float32)
    return torch.where(den > 0, num / den.clamp(min=1), empty_value)


def dice_score(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int | None = None,
    spatial_dims: int | None = None,
    empty_value: float = math.nan,
) -> torch.Tensor:
    """Dice coefficient ``2TP / (2TP + FP + FN) = 2|P ∧ G| / (|P| + |G|)``, per item (and class).

    Inputs as in :func:`confusion_counts`; ``empty_value`` where both masks are empty (see the
    module docstring). Returns float32 of the batch shape (plus a class axis for label maps).

    Examples
    --------
    >>> dice_score(torch.tensor([1, 1, 0, 0]), torch.tensor([1, 0, 1, 0]))
    tensor(0.5000)
    >>> dice_score(torch.tensor([[0, 2], [1, 1]]), torch.tensor([[0, 2], [2, 1]]), num_classes=3)
    tensor([1.0000, 0.6667, 0.6667])
    """
    tp, fp, fn = confusion_counts(pred, target, num_classes=num_classes, spatial_dims=spatial_dims)
    return ratio(2 * tp, 2 * tp + fp + fn, empty_value)


def iou_score(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int | None = None,
    spatial_dims: int | None = None,
    empty_value: float = math.nan,
) -> torch.Tensor:
    """Intersection over union (Jaccard index) ``TP / (TP + FP + FN) = |P ∧ G| / |P ∨ G|``.

    Inputs, output and empty rule as :func:`dice_score`.

    Examples
    --------
    >>> iou_score(torch.tensor([1, 1, 0, 0]), torch.tensor([1, 0, 1, 0]))
    tensor(0.3333)
    """
    tp, fp, fn = confusion_counts(pred, target, num_classes=num_classes, spatial_dims=spatial_dims)
    return ratio(tp, tp + fp + fn, empty_value)


def precision(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int | None = None,
    spatial_dims: int | None = None,
    empty_value: float = math.nan,
) -> torch.Tensor:
    """Precision (positive predictive value) ``TP / (TP + FP)``; ``empty_value`` if ``P`` is empty.

    Inputs and output as :func:`dice_score`.

    Examples
    --------
    >>> precision(torch.tensor([1, 1, 1, 0]), torch.tensor([1, 0, 1, 0]))
    tensor(0.6667)
    """
    tp, fp, _ = confusion_counts(pred, target, num_classes=num_classes, spatial_dims=spatial_dims)
    return ratio(tp, tp + fp, empty_value)


def recall(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    num_classes: int | None = None,
    spatial_dims: int | None = None,
    empty_value: float = math.nan,
) -> torch.Tensor:
    """Recall (sensitivity) ``TP / (TP + FN)``; ``empty_value`` if the target is empty.

    Inputs and output as :func:`dice_score`.

    Examples
    --------
    >>> recall(torch.tensor([1, 1, 1, 0]), torch.tensor([1, 0, 1, 0]))
    tensor(1.)
    """
    tp, _, fn = confusion_counts(pred, target, num_classes=num_classes, spatial_dims=spatial_dims)
    return ratio(tp, tp + fn, empty_value)
