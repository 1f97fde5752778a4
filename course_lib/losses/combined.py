"""Mixed losses: a region term (Dice / Jaccard) plus a pixel term (cross-entropy / focal).

The pixel term gives smooth, bounded gradients from the first step; the region term ignores the
background count and optimises the overlap directly. The notes warn about scale: on a very
imbalanced task the (mean) cross-entropy soon falls far below the Dice loss, and the focal loss is
smaller still (its easy pixels are down-weighted), so the weights ``lambda_*`` matter; chapter 03
prints both terms.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_lib.losses._module import LossModule
from course_lib.losses._validate import (
    activate,
    check_logits,
    check_range,
    target_to_one_hot,
    upcast,
)
from course_lib.losses.cross_entropy import binary_cross_entropy, cross_entropy
from course_lib.losses.focal import focal_loss
from course_lib.losses.overlap import SMOOTH, dice_loss


def dice_ce_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    lambda_dice: float = 1.0,
    lambda_ce: float = 1.0,
    include_background: bool = True,
    squared: bool = False,
    smooth_nr: float = SMOOTH,
    smooth_dr: float = SMOOTH,
    batch: bool = False,
    weight: Sequence[float] | torch.Tensor | None = None,
    pos_weight: float | Sequence[float] | torch.Tensor | None = None,
    ignore_index: int | None = None,
) -> torch.Tensor:
    r"""Dice + cross-entropy, nnU-Net's default loss: ``lambda_dice * Dice + lambda_ce * CE``.

    With ``C >= 2`` the Dice term uses softmax and the CE term is :func:`cross_entropy` over all
    channels (also when ``include_background=False``), weighted by the class weights ``weight``;
    with ``C == 1`` they use sigmoid and :func:`binary_cross_entropy`, weighted by ``pos_weight``
    (a class weight and a positive-term weight are different things: each is refused where it
    does not apply). This is MONAI's ``DiceCELoss(softmax=True, to_onehot_y=True)`` (or
    ``sigmoid=True``). The Dice arguments are those of :func:`dice_loss`.

    No ``reduction``: the two terms reduce over different axes (Dice per image and class, CE per
    voxel); call :func:`dice_loss` and :func:`cross_entropy` for unreduced values.

    Examples
    --------
    >>> logits, labels = torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long)
    >>> total = dice_ce_loss(logits, labels)
    >>> bool(torch.isclose(total, dice_loss(logits, labels) + cross_entropy(logits, labels)))
    True
    """
    logits = check_logits(logits)
    check_range(lambda_dice, "lambda_dice", 0.0)
    check_range(lambda_ce, "lambda_ce", 0.0)
    binary = logits.shape[1] == 1
    if binary and weight is not None:
        raise ValueError(
            "weight holds class weights of a softmax net (C >= 2); this net has one channel: "
            "pass pos_weight, the weight of the positive term of its binary cross-entropy"
        )
    if not binary and pos_weight is not None:
        raise ValueError(
            f"pos_weight is for a one-channel (sigmoid) net; this one has C = {logits.shape[1]}: "
            "pass class weights as weight"
        )
    dice = dice_loss(
        logits,
        target,
        activation="sigmoid" if binary else "softmax",
        include_background=include_background,
        squared=squared,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        batch=batch,
        ignore_index=ignore_index,
    )
    if binary:
        ce = binary_cross_entropy(logits, target, pos_weight=pos_weight, ignore_index=ignore_index)
    else:
        ce = cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)
    return lambda_dice * dice + lambda_ce * ce


def focal_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    lambda_focal: float = 1.0,
    lambda_dice: float = 1.0,
    alpha: float | Sequence[float] | None = None,
    gamma: float = 2.0,
    activation: str | None = None,
    include_background: bool = True,
    ignore_index: int | None = None,
) -> torch.Tensor:
    r"""Focal + Dice: ``lambda_focal * FL + lambda_dice * Dice`` with one activation for both.

    :func:`focal_loss` and :func:`dice_loss` with the given ``activation`` (``"softmax"`` or
    ``"sigmoid"``; default by the channel count, as everywhere). MONAI's ``DiceFocalLoss``
    differs: its focal term is always the sigmoid one, even when the Dice term uses softmax.

    No ``reduction``: the two terms reduce over different axes (focal per voxel, Dice per image
    and class); call :func:`focal_loss` and :func:`dice_loss` for unreduced values.

    Examples
    --------
    >>> logits, labels = torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long)
    >>> bool(focal_dice_loss(logits, labels, lambda_dice=0.0) < cross_entropy(logits, labels))
    True
    """
    check_range(lambda_focal, "lambda_focal", 0.0)
    check_range(lambda_dice, "lambda_dice", 0.0)
    focal = focal_loss(
        logits, target, alpha=alpha, gamma=gamma, activation=activation, ignore_index=ignore_index
    )
    dice = dice_loss(
        logits,
        target,
        activation=activation,
        include_background=include_background,
        ignore_index=ignore_index,
    )
    return lambda_focal * focal + lambda_dice * dice


def bce_minus_log_jaccard(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    jaccard_weight: float = 1.0,
    smooth_nr: float = 1e-15,
    smooth_dr: float = 1e-15,
    ignore_index: int | None = None,
) -> torch.Tensor:
    r"""TernausNet's loss: binary cross-entropy minus the log of the soft Jaccard index.

    .. math:: L = H - w \log \frac{\sum p g + s_{nr}}{\sum p + \sum g - \sum p g + s_{dr}}

    with ``p = sigmoid(logits)`` and the sums over the whole batch and every channel (as in the
    authors' code). ``-log J`` grows without bound as the overlap vanishes, so it keeps pushing
    where ``1 - J`` would flatten out.

    No ``reduction``: the Jaccard index is one ratio over the whole batch (the authors' code), so
    there is no per-image value to keep.

    Parameters
    ----------
    logits
        Raw scores ``(N, C, *spatial)`` of a sigmoid net (usually ``C == 1``).
    target
        0/1 labels ``(N, *spatial)`` or a 0/1 map ``(N, C, *spatial)``.
    jaccard_weight
        ``w``; 1 in TernausNet.
    smooth_nr, smooth_dr
        Smoothing of numerator and denominator, as in :func:`dice_loss` (the authors' ``eps``,
        1e-15 in both): keeps the log finite when both sets are empty (the ratio is then 1).
    ignore_index
        Label of pixels that do not count.

    References
    ----------
    Iglovikov, Shvets, "TernausNet", arXiv:1801.05746, 2018, Sec. III-B, eq. (2).

    Examples
    --------
    >>> logits, labels = torch.full((1, 1, 2, 2), 9.0), torch.ones(1, 2, 2, dtype=torch.long)
    >>> bce_minus_log_jaccard(logits, labels).item() < 1e-3
    True
    """
    logits = upcast(check_logits(logits))
    check_range(jaccard_weight, "jaccard_weight", 0.0)
    check_range(smooth_nr, "smooth_nr", 0.0)
    check_range(smooth_dr, "smooth_dr", 0.0)
    bce = binary_cross_entropy(logits, target, ignore_index=ignore_index)
    g, valid = target_to_one_hot(logits, target, ignore_index)
    p = activate(logits, "sigmoid")
    if valid is not None:
        p, g = p * valid, g * valid
    intersection = (p * g).sum()
    union = p.sum() + g.sum() - intersection
    return bce - jaccard_weight * torch.log((intersection + smooth_nr) / (union + smooth_dr))


class DiceCELoss(LossModule):
    """Module twin of :func:`dice_ce_loss` (same keyword arguments)."""

    function = staticmethod(dice_ce_loss)


class FocalDiceLoss(LossModule):
    """Module twin of :func:`focal_dice_loss` (same keyword arguments)."""

    function = staticmethod(focal_dice_loss)


class BCEMinusLogJaccardLoss(LossModule):
    """Module twin of :func:`bce_minus_log_jaccard` (same keyword arguments)."""

    function = staticmethod(bce_minus_log_jaccard)
