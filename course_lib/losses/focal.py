"""Focal loss (Lin et al., ICCV 2017): cross-entropy that down-weights the easy pixels.

The factor ``(1 - p_t)^gamma`` shrinks the loss of pixels that are already right (``p_t`` near 1),
so the rare, hard ones dominate; ``alpha`` balances positives against negatives. The notes clip the
probabilities before the log to avoid NaN; here every log comes from ``log_softmax`` /
``logsigmoid`` of the logits instead, which is exact and finite for any logit, and the loss is a
mean over valid elements (the notes' sum grows with the image size).
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
    check_range,
    class_vector,
    resolve_activation,
    safe_divide,
    target_to_one_hot,
    upcast,
)


def _alpha_vector(
    alpha: float | Sequence[float], activation: str, logits: torch.Tensor
) -> torch.Tensor:
    """One alpha per channel: a scalar means alpha for every sigmoid channel, and for softmax
    ``1 - alpha`` on channel 0 (background) and ``alpha`` on the others (MONAI's convention)."""
    if isinstance(alpha, (int, float)):
        check_range(alpha, "alpha", 0.0, 1.0)
        values = [float(alpha)] * logits.shape[1]
        if activation == "softmax":
            values[0] = 1.0 - alpha
        alpha = values
    vec = class_vector(alpha, "alpha", logits)
    if bool(((vec < 0) | (vec > 1)).any()):
        raise ValueError(f"alpha values must lie in [0, 1], got {vec.tolist()}")
    return vec.view(1, -1, *[1] * (logits.ndim - 2))


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float | Sequence[float] | None = None,
    gamma: float = 2.0,
    activation: str | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Focal loss from logits, sigmoid (per channel) or softmax (over channels).

    .. math:: \mathrm{FL} = -\alpha_t\,(1 - p_t)^\gamma \log p_t

    * ``activation="sigmoid"``: every (pixel, channel) element is a binary problem with
      :math:`p_t = p` on positives and :math:`1 - p` on negatives, :math:`\alpha_t = \alpha` on
      positives and :math:`1 - \alpha` on negatives (the paper's eq. 5, MONAI and
      segmentation_models_pytorch). ``"mean"`` averages over valid (pixel, channel) elements,
      which equals MONAI's ``FocalLoss()``.
    * ``activation="softmax"``: :math:`p_t` is the softmax probability of the true class, so with
      ``gamma=0`` and no alpha this is exactly :func:`cross_entropy`. A scalar ``alpha`` weights
      the foreground channels by alpha and channel 0 by ``1 - alpha`` (MONAI). ``"mean"`` averages
      over valid pixels; MONAI's softmax focal loss also divides by C, we do not.

    ``(1 - p_t)^gamma`` is ``exp(gamma * logsigmoid(-x (2t - 1)))`` for sigmoid and
    ``(-expm1(log p_t))^gamma`` for softmax, both exact even at logits of +-1e4.

    Parameters
    ----------
    logits
        Raw scores ``(N, C, *spatial)``.
    target
        Integer labels ``(N, *spatial)`` or a one-hot / soft map ``(N, C, *spatial)``.
    alpha
        ``None`` (no balancing), a number in [0, 1], or one number per channel (used as the
        positive weight of that channel; sigmoid negatives get ``1 - alpha_c``).
    gamma
        Focusing parameter, ``>= 0``; the paper uses 2 (with ``alpha = 0.25``).
    activation
        ``"sigmoid"`` (the paper's and MONAI's form) or ``"softmax"``; default ``None``, the
        package's rule: softmax for ``C >= 2`` channels, sigmoid for ``C == 1``.
    ignore_index
        Label of voxels that do not count (label maps only).
    reduction
        ``"mean"``, ``"sum"`` or ``"none"`` (``(N, C, *spatial)`` for sigmoid, ``(N, *spatial)``
        for softmax).

    References
    ----------
    Lin, Goyal, Girshick, He, Dollar, "Focal Loss for Dense Object Detection", ICCV 2017, Sec. 3.

    Examples
    --------
    >>> logits = torch.tensor([[[[3.0]], [[-3.0]]]])  # (1, 2, 1, 1): confident and right
    >>> labels = torch.tensor([[[0]]])
    >>> focal_loss(logits, labels, activation="softmax").item() < 1e-4
    True
    """
    logits = upcast(check_logits(logits))
    activation = resolve_activation(activation, logits)
    check_choice("activation", activation, ("sigmoid", "softmax"))
    check_choice("reduction", reduction, REDUCTIONS)
    check_range(gamma, "gamma", 0.0)
    if activation == "softmax" and logits.shape[1] == 1:
        raise ValueError("activation='softmax' needs C >= 2 channels; use 'sigmoid' for C == 1")
    one_hot, valid = target_to_one_hot(logits, target, ignore_index)

    if activation == "sigmoid":
        loss = F.binary_cross_entropy_with_logits(logits, one_hot, reduction="none")
        if gamma > 0:
            # 1 - p_t = sigmoid(-x) on positives, sigmoid(x) on negatives.
            loss = loss * torch.exp(gamma * F.logsigmoid(-logits * (2 * one_hot - 1)))
        if alpha is not None:
            a = _alpha_vector(alpha, activation, logits)
            loss = loss * (a * one_hot + (1 - a) * (1 - one_hot))
    else:
        log_p = logits.log_softmax(dim=1)
        loss = -one_hot * log_p
        if gamma > 0:
            # Clamping 1 - p away from 0 keeps the gradient of x**gamma (gamma < 1) finite.
            one_minus_p = (-torch.expm1(log_p)).clamp_min(torch.finfo(log_p.dtype).tiny)
            loss = loss * one_minus_p.pow(gamma)
        if alpha is not None:
            loss = loss * _alpha_vector(alpha, activation, logits)
        loss = loss.sum(dim=1, keepdim=True)

    if valid is not None:
        loss = loss * valid
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss if activation == "sigmoid" else loss[:, 0]
    if valid is None:
        return loss.mean()
    return safe_divide(loss.sum(), valid.sum().to(loss.dtype) * loss.shape[1])


class FocalLoss(LossModule):
    """Module twin of :func:`focal_loss` (same keyword arguments)."""

    function = staticmethod(focal_loss)
