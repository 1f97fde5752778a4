"""Cross-entropy for segmentation: softmax CE (mutually exclusive classes) and sigmoid BCE.

Softmax + CE treats the C channels of a pixel as one distribution (raising one class lowers the
others), so only the true class's log-probability enters. Sigmoid + BCE treats every channel as its
own yes/no question, so it must also push the probabilities of the absent classes down; it fits
binary nets (one channel) and multi-label outputs. Both gradients w.r.t. the logits are the bounded
``p - t``, which is why they train smoothly (see chapter 03).

Weights follow U-Net (Ronneberger et al. 2015, eq. 1): a class weight per label, a per-pixel weight
map (touching-cell borders), and weight 0 for unannotated voxels (3D U-Net, Cicek et al. 2016),
which ``ignore_index`` expresses directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from course_lib.losses._module import LossModule
from course_lib.losses._validate import (
    REDUCTIONS,
    check_choice,
    check_logits,
    check_pixel_weight,
    class_vector,
    label_map,
    safe_divide,
    target_to_one_hot,
    upcast,
)


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: Sequence[float] | torch.Tensor | None = None,
    pixel_weight: torch.Tensor | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Softmax cross-entropy with class weights, a per-pixel weight map and ignored voxels.

    .. math:: \ell_i = -v_i \sum_c w_c\, t_{ic} \log \operatorname{softmax}(x_i)_c,
              \qquad L = \frac{\sum_i \ell_i}{\sum_i \sum_c w_c t_{ic}}

    where ``w`` are the class weights (1 when not given), ``v`` the pixel weights (1 when not
    given) and the sums run over the valid (not ignored) pixels.

    Parameters
    ----------
    logits
        Raw scores ``(N, C, *spatial)``, ``C >= 2``.
    target
        Integer labels ``(N, *spatial)`` or a one-hot / soft map ``(N, C, *spatial)``.
    weight
        One weight per class, e.g. inverse class frequencies.
    pixel_weight
        A weight per pixel ``(N, *spatial)``, e.g. the U-Net border weight map.
    ignore_index
        Label of voxels that do not count (the course data marks unannotated voxels with -1). If
        every voxel is ignored the loss is 0 with a zero gradient.
    reduction
        ``"mean"`` (the normaliser above), ``"sum"`` or ``"none"`` (the map ``(N, *spatial)``).

    Notes
    -----
    With class weights the mean divides by the summed class weights of the valid pixels, exactly
    as ``torch.nn.functional.cross_entropy`` does; pixel weights are not normalised, so without
    class weights the mean is ``mean_i(v_i * ce_i)`` (the U-Net weight map keeps its scale). For
    soft targets without class weights the mean divides by the number of valid pixels, as torch
    does.

    References
    ----------
    Ronneberger, Fischer, Brox, "U-Net", MICCAI 2015, Sec. 3, eq. (1) and (2).

    Examples
    --------
    >>> logits = torch.zeros(1, 2, 2, 2)
    >>> labels = torch.tensor([[[0, 1], [1, -1]]])
    >>> round(cross_entropy(logits, labels, ignore_index=-1).item(), 4)  # log(2)
    0.6931
    """
    logits = upcast(check_logits(logits))
    check_choice("reduction", reduction, REDUCTIONS)
    if logits.shape[1] < 2:
        raise ValueError(
            f"cross_entropy needs C >= 2 channels, got {logits.shape[1]}; use "
            "binary_cross_entropy for a one-channel (sigmoid) net"
        )
    class_weight = None if weight is None else class_vector(weight, "weight", logits)
    if isinstance(target, torch.Tensor) and not target.is_floating_point():
        labels, valid = label_map(logits, target, ignore_index)
        labels = labels.long()
        if reduction == "mean" and class_weight is None and valid is None and pixel_weight is None:
            return F.cross_entropy(logits, labels)  # the plain mean: PyTorch's fused kernel
        # -w_y log p_y straight from the labels: the value of the one-hot sum below, without
        # building the one-hot map (fewer passes over the volume, forward and backward)
        pixel_loss = F.cross_entropy(logits, labels, weight=class_weight, reduction="none")
        pixel_loss = pixel_loss.unsqueeze(1)
        # What each pixel adds to the normaliser: its class weight, or 1 (a pixel count).
        norm = (
            torch.ones_like(pixel_loss) if class_weight is None else class_weight[labels][:, None]
        )
    else:
        one_hot, valid = target_to_one_hot(logits, target, ignore_index)
        weighted = one_hot
        if class_weight is not None:
            weighted = one_hot * class_weight.view(1, -1, *[1] * (logits.ndim - 2))
        pixel_loss = -(weighted * logits.log_softmax(dim=1)).sum(dim=1, keepdim=True)
        norm = (
            weighted.sum(dim=1, keepdim=True) if weight is not None else torch.ones_like(pixel_loss)
        )
    if pixel_weight is not None:
        pixel_loss = pixel_loss * check_pixel_weight(pixel_weight, logits)
    if valid is not None:
        pixel_loss = pixel_loss * valid
        norm = norm * valid
    if reduction == "mean":
        return safe_divide(pixel_loss.sum(), norm.sum())
    if reduction == "sum":
        return pixel_loss.sum()
    return pixel_loss[:, 0]


def binary_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    pos_weight: float | Sequence[float] | torch.Tensor | None = None,
    pixel_weight: torch.Tensor | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Sigmoid binary cross-entropy per channel, computed from the logits (stable for any logit).

    .. math:: \ell_{ic} = -v_i\,[\,q_c\, t_{ic} \log \sigma(x_{ic})
              + (1 - t_{ic}) \log(1 - \sigma(x_{ic}))\,]

    with ``q`` the positive-class weight (``pos_weight``, one value or one per channel) and ``v``
    the pixel weights. ``"mean"`` averages over every valid (pixel, channel) element.

    Parameters
    ----------
    logits
        Raw scores ``(N, C, *spatial)``; ``C == 1`` for a binary net, ``C > 1`` for multi-label.
    target
        0/1 labels ``(N, *spatial)`` for ``C == 1``, class labels (one-vs-rest) for ``C > 1``, or a
        soft map ``(N, C, *spatial)`` in [0, 1].
    pos_weight
        Weight of the positive term, e.g. ``n_negative / n_positive`` for a rare foreground.
    pixel_weight, ignore_index, reduction
        As in :func:`cross_entropy`; ``"none"`` returns ``(N, C, *spatial)``.

    Examples
    --------
    >>> logits = torch.zeros(1, 1, 2, 2)
    >>> round(binary_cross_entropy(logits, torch.ones(1, 2, 2, dtype=torch.long)).item(), 4)
    0.6931
    """
    logits = upcast(check_logits(logits))
    check_choice("reduction", reduction, REDUCTIONS)
    one_hot, valid = target_to_one_hot(logits, target, ignore_index)
    if pos_weight is not None:
        channels = logits.shape[1]
        values = [pos_weight] * channels if isinstance(pos_weight, (int, float)) else pos_weight
        pos_weight = class_vector(values, "pos_weight", logits).view(-1, *[1] * (logits.ndim - 2))
    loss = F.binary_cross_entropy_with_logits(
        logits, one_hot, pos_weight=pos_weight, reduction="none"
    )
    if pixel_weight is not None:
        loss = loss * check_pixel_weight(pixel_weight, logits)
    if valid is not None:
        loss = loss * valid
    if reduction == "mean":
        if valid is None:
            return loss.mean()
        return safe_divide(loss.sum(), valid.sum().to(loss.dtype) * logits.shape[1])
    if reduction == "sum":
        return loss.sum()
    return loss


class CrossEntropyLoss(LossModule):
    """Module twin of :func:`cross_entropy` (same keyword arguments)."""

    function = staticmethod(cross_entropy)


class BinaryCrossEntropyLoss(LossModule):
    """Module twin of :func:`binary_cross_entropy` (same keyword arguments)."""

    function = staticmethod(binary_cross_entropy)
