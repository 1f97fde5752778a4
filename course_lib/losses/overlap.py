"""Overlap losses: Dice (V-Net), Jaccard / IoU, Tversky and the hardness-weighted Dice loss.

All four compare, per image and class, the soft intersection ``I = sum p g`` with the sizes
``P = sum p`` and ``G = sum g`` of prediction and target. Because they are ratios over the whole
structure they ignore how many background pixels there are (the point of V-Net's Dice loss on
imbalanced volumes), but their gradient per pixel scales like ``1 / (P + G)``: large for small
structures, which makes training noisy (chapter 03 shows it).

Definitions follow MONAI 1.6 ``DiceLoss`` / ``TverskyLoss`` (smoothing ``smooth_nr`` once in the
numerator and ``smooth_dr`` once in the denominator, 1e-5 each; one loss per (image, class), then
the mean) so the numbers can be checked against it. segmentation_models_pytorch differs: it pools
the batch (our ``batch=True``) and effectively doubles the smoothing.
"""

from __future__ import annotations

import torch

from course_lib.losses._module import LossModule
from course_lib.losses._validate import (
    activate,
    check_logits,
    check_range,
    reduce,
    target_to_one_hot,
    upcast,
)

SMOOTH = 1e-5
"""MONAI's default numerator and denominator smoothing."""


def probabilities_and_target(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    activation: str | None,
    include_background: bool,
    ignore_index: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and a one-hot target of the same shape, ignored voxels set to 0 in both.

    The activation runs over all channels before channel 0 is dropped
    (``include_background=False``), so a softmax still sees the background, as in MONAI.
    """
    logits = upcast(check_logits(logits))
    one_hot, valid = target_to_one_hot(logits, target, ignore_index)
    probs = activate(logits, activation)
    if valid is not None:
        probs, one_hot = probs * valid, one_hot * valid
    if not include_background:
        if logits.shape[1] == 1:
            raise ValueError(
                "include_background=False drops channel 0, but the logits have a single channel"
            )
        probs, one_hot = probs[:, 1:], one_hot[:, 1:]
    return probs, one_hot


def per_class_sum(x: torch.Tensor, batch: bool) -> torch.Tensor:
    """Sum over the spatial axes, ``(N, C)``; over the batch too when ``batch``, ``(C,)``."""
    summed = x.sum(dim=tuple(range(2, x.ndim)))
    return summed.sum(dim=0) if batch else summed


def _check_smoothing(smooth_nr: float, smooth_dr: float) -> None:
    check_range(smooth_nr, "smooth_nr", 0.0)
    check_range(smooth_dr, "smooth_dr", 0.0)


def _sums(
    logits: torch.Tensor,
    target: torch.Tensor,
    activation: str | None,
    include_background: bool,
    ignore_index: int | None,
    squared: bool,
    batch: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``I = sum p g``, ``P = sum p`` and ``G = sum g`` (``sum p^2``, ``sum g^2`` when squared)."""
    p, g = probabilities_and_target(
        logits,
        target,
        activation=activation,
        include_background=include_background,
        ignore_index=ignore_index,
    )
    intersection = per_class_sum(p * g, batch)
    if squared:
        return intersection, per_class_sum(p * p, batch), per_class_sum(g * g, batch)
    return intersection, per_class_sum(p, batch), per_class_sum(g, batch)


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    activation: str | None = None,
    include_background: bool = True,
    squared: bool = False,
    smooth_nr: float = SMOOTH,
    smooth_dr: float = SMOOTH,
    batch: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Soft Dice loss, plain or with V-Net's squared denominator.

    .. math:: L = 1 - \frac{2 \sum_i p_i g_i + s_{nr}}{\sum_i p_i + \sum_i g_i + s_{dr}}
              \qquad\text{or, squared,}\qquad
              1 - \frac{2 \sum_i p_i g_i + s_{nr}}{\sum_i p_i^2 + \sum_i g_i^2 + s_{dr}}

    per (image, class), then reduced. Equals MONAI's ``DiceLoss`` with ``softmax=True`` (or
    ``sigmoid=True``), ``to_onehot_y`` for label maps, and the same ``include_background``,
    ``squared_pred``, ``smooth_nr``, ``smooth_dr``, ``batch``. An empty target with an empty
    prediction gives ``1 - s_nr / s_dr`` (0 with the defaults); an empty target with a confident
    prediction gives about 1.

    Parameters
    ----------
    logits
        Raw scores ``(N, C, *spatial)``.
    target
        Integer labels ``(N, *spatial)`` or a one-hot / soft map ``(N, C, *spatial)``.
    activation
        ``"softmax"``, ``"sigmoid"`` (binary or multi-label nets) or ``"none"`` (``logits``
        already are probabilities); default ``None``: softmax for ``C >= 2``, sigmoid for 1.
    include_background
        Whether channel 0 enters the mean.
    squared
        Use ``sum p^2 + sum g^2`` in the denominator (Milletari et al. 2016, eq. 1).
    smooth_nr, smooth_dr
        Smoothing added to numerator and denominator; they avoid 0/0 on empty classes.
    batch
        Pool the sums over the batch (one Dice per class) instead of one per image.
    ignore_index
        Label of voxels that do not count (removed from both sums).
    reduction
        ``"mean"``, ``"sum"`` or ``"none"`` (``(N, C)``, or ``(C,)`` when ``batch``).

    References
    ----------
    Milletari, Navab, Ahmadi, "V-Net", 3DV 2016, Sec. 3, eq. (1).

    Examples
    --------
    >>> labels = torch.tensor([[[0, 1], [1, 1]]])
    >>> perfect = 20.0 * torch.nn.functional.one_hot(labels, 2).movedim(-1, 1).float() - 10.0
    >>> dice_loss(perfect, labels).item() < 1e-4
    True
    """
    _check_smoothing(smooth_nr, smooth_dr)
    intersection, size_p, size_g = _sums(
        logits, target, activation, include_background, ignore_index, squared, batch
    )
    loss = 1 - (2 * intersection + smooth_nr) / (size_p + size_g + smooth_dr)
    return reduce(loss, reduction)


def jaccard_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    activation: str | None = None,
    include_background: bool = True,
    squared: bool = False,
    smooth_nr: float = SMOOTH,
    smooth_dr: float = SMOOTH,
    batch: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Soft Jaccard (IoU) loss: the Dice loss with the union in the denominator.

    .. math:: L = 1 - \frac{2 I + s_{nr}}{2 (P + G - I) + s_{dr}}
              = 1 - \frac{I + s_{nr}/2}{P + G - I + s_{dr}/2}

    with ``I = sum p g``, ``P = sum p``, ``G = sum g`` (``sum p^2``, ``sum g^2`` when ``squared``).
    This is MONAI's ``DiceLoss(jaccard=True)``, whose smoothing therefore acts halved. Arguments as
    in :func:`dice_loss`.

    Examples
    --------
    >>> logits = torch.zeros(1, 2, 2, 2)  # p = 0.5 everywhere
    >>> labels = torch.zeros(1, 2, 2, dtype=torch.long)
    >>> round(jaccard_loss(logits, labels, include_background=False, smooth_nr=0.0).item(), 4)
    1.0
    """
    _check_smoothing(smooth_nr, smooth_dr)
    intersection, size_p, size_g = _sums(
        logits, target, activation, include_background, ignore_index, squared, batch
    )
    union = size_p + size_g - intersection
    loss = 1 - (2 * intersection + smooth_nr) / (2 * union + smooth_dr)
    return reduce(loss, reduction)


def tversky_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    activation: str | None = None,
    include_background: bool = True,
    smooth_nr: float = SMOOTH,
    smooth_dr: float = SMOOTH,
    batch: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Tversky loss: a Dice loss that weighs false positives and false negatives separately.

    .. math:: L = 1 - \frac{TP + s_{nr}}{TP + \alpha\,FP + \beta\,FN + s_{dr}},\quad
              TP = \sum p g,\ FP = \sum p (1 - g),\ FN = \sum (1 - p) g

    **alpha weights the false positives and beta the false negatives**, as in the paper, MONAI
    and segmentation_models_pytorch (the notes' code calls the false-negative weight alpha).
    ``beta > alpha`` trades precision for recall, useful for small lesions. ``alpha = beta = 0.5``
    gives the Dice loss (up to where the smoothing sits). Other arguments as in :func:`dice_loss`.

    References
    ----------
    Salehi, Erdogmus, Gholipour, "Tversky loss function for image segmentation using 3D fully
    convolutional deep networks", MLMI 2017, Sec. 2, eq. (3).

    Examples
    --------
    >>> logits = torch.tensor([[[[5.0, -5.0]], [[-5.0, 5.0]]]])  # predicts class 1 at pixel 2
    >>> labels = torch.tensor([[[1, 1]]])  # one false negative for class 1
    >>> recall_heavy = tversky_loss(logits, labels, alpha=0.3, beta=0.7, include_background=False)
    >>> balanced = tversky_loss(logits, labels, include_background=False)
    >>> bool(recall_heavy > balanced)
    True
    """
    _check_smoothing(smooth_nr, smooth_dr)
    check_range(alpha, "alpha", 0.0)
    check_range(beta, "beta", 0.0)
    tp, size_p, size_g = _sums(
        logits, target, activation, include_background, ignore_index, False, batch
    )
    fp, fn = size_p - tp, size_g - tp
    loss = 1 - (tp + smooth_nr) / (tp + alpha * fp + beta * fn + smooth_dr)
    return reduce(loss, reduction)


def hardness_weighted_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    hardness_lambda: float = 0.6,
    activation: str | None = None,
    include_background: bool = True,
    smooth_nr: float = SMOOTH,
    smooth_dr: float = SMOOTH,
    batch: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Dice loss with a per-voxel hardness weight (Wang et al. 2019, the 2.5D U-Net paper).

    .. math:: w_i = \lambda\,|p_i - g_i| + (1 - \lambda),\qquad
              L = 1 - \frac{2 \sum_i w_i p_i g_i + s_{nr}}{\sum_i w_i (p_i + g_i) + s_{dr}}

    Voxels that are predicted badly (``|p - g|`` near 1) weigh up to ``1 / (1 - lambda)`` times
    more than easy ones. We use the **paper's form** of ``w``; the authors' PyMIC code writes
    ``lambda + (1 - lambda)|p - g|`` instead (the two agree only at lambda = 0.5). As in that code
    the weight is not detached, so gradients flow through it too. ``hardness_lambda=0`` gives
    :func:`dice_loss`. PyMIC pools the batch (our ``batch=True``); other arguments as in
    :func:`dice_loss`.

    References
    ----------
    Wang et al., "Automatic Segmentation of Vestibular Schwannoma from T2-Weighted MRI by Deep
    Spatial Attention with Hardness-Weighted Loss", MICCAI 2019, Sec. 2.3.

    Examples
    --------
    >>> logits = torch.randn(2, 3, 8, 8)
    >>> labels = torch.randint(0, 3, (2, 8, 8))
    >>> plain = dice_loss(logits, labels)
    >>> torch.allclose(hardness_weighted_dice_loss(logits, labels, hardness_lambda=0.0), plain)
    True
    """
    _check_smoothing(smooth_nr, smooth_dr)
    check_range(hardness_lambda, "hardness_lambda", 0.0, 1.0)
    p, g = probabilities_and_target(
        logits,
        target,
        activation=activation,
        include_background=include_background,
        ignore_index=ignore_index,
    )
    weight = hardness_lambda * (p - g).abs() + (1 - hardness_lambda)
    intersection = per_class_sum(weight * p * g, batch)
    total = per_class_sum(weight * (p + g), batch)
    loss = 1 - (2 * intersection + smooth_nr) / (total + smooth_dr)
    return reduce(loss, reduction)


class DiceLoss(LossModule):
    """Module twin of :func:`dice_loss` (same keyword arguments)."""

    function = staticmethod(dice_loss)


class JaccardLoss(LossModule):
    """Module twin of :func:`jaccard_loss` (same keyword arguments)."""

    function = staticmethod(jaccard_loss)


class TverskyLoss(LossModule):
    """Module twin of :func:`tversky_loss` (same keyword arguments)."""

    function = staticmethod(tversky_loss)


class HardnessWeightedDiceLoss(LossModule):
    """Module twin of :func:`hardness_weighted_dice_loss` (same keyword arguments)."""

    function = staticmethod(hardness_weighted_dice_loss)
