"""Keypoints as segmentation: regress Gaussian heatmaps with the mean squared error.

A keypoint detector can reuse a segmentation net: one output channel per keypoint, trained to
reproduce a Gaussian bump centred on the keypoint. The target is a soft map rather than a binary
mask, so Dice (made for sets) does not fit and the notes use MSE; the predicted keypoint is the
arg-max of the channel (Tompson et al. 2014; Newell et al. 2016).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_lib.losses._module import LossModule
from course_lib.losses._validate import (
    REDUCTIONS,
    check_choice,
    check_logits,
    check_range,
    upcast,
)


def gaussian_heatmaps(keypoints: torch.Tensor, shape: Sequence[int], sigma: float) -> torch.Tensor:
    r"""Target heatmaps ``exp(-|x - k|^2 / (2 sigma^2))``, peak 1 at each keypoint.

    Parameters
    ----------
    keypoints
        Coordinates ``(N, K, d)``, ``d`` = 2 or 3, in pixels, array-axis order (row, column, ...).
    shape
        Spatial shape of the maps (``d`` sizes).
    sigma
        Standard deviation of the bump in pixels.

    Returns
    -------
    torch.Tensor
        ``(N, K, *shape)`` on the keypoints' device, in their (floating) dtype.

    Examples
    --------
    >>> maps = gaussian_heatmaps(torch.tensor([[[2.0, 3.0]]]), (5, 6), sigma=1.0)
    >>> maps.shape, maps[0, 0, 2, 3].item()
    (torch.Size([1, 1, 5, 6]), 1.0)
    """
    if not isinstance(keypoints, torch.Tensor) or keypoints.ndim != 3:
        raise ValueError("keypoints must be a tensor (N, K, d) of pixel coordinates")
    if keypoints.shape[-1] != len(shape) or len(shape) not in (2, 3):
        raise ValueError(
            f"shape must have d = 2 or 3 sizes matching the keypoints' last axis "
            f"({keypoints.shape[-1]}), got {tuple(shape)}"
        )
    check_range(sigma, "sigma", 1e-6)
    keypoints = keypoints if keypoints.is_floating_point() else keypoints.float()
    axes = [torch.arange(s, dtype=keypoints.dtype, device=keypoints.device) for s in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (*shape, d)
    offsets = grid - keypoints.view(*keypoints.shape[:2], *[1] * len(shape), len(shape))
    return torch.exp(-(offsets**2).sum(dim=-1) / (2 * sigma**2))


def heatmap_mse_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    keypoint_weight: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Mean squared error between predicted and target heatmaps, optionally per-keypoint weighted.

    .. math:: L = \frac{1}{N K |\Omega|} \sum_{n,k,i} v_{nk}\, (\hat h_{nki} - h_{nki})^2

    No ``ignore_index``: the targets are heatmaps, not labels; ``keypoint_weight = 0`` leaves a
    keypoint out.

    Parameters
    ----------
    logits
        Raw outputs ``(N, K, *spatial)``; the activation is the identity: the targets are in
        [0, 1] but the regression is unconstrained.
    target
        Heatmaps of the same shape, e.g. from :func:`gaussian_heatmaps`.
    keypoint_weight
        ``(N, K)`` weights, e.g. 0 for keypoints that are not visible in an image.
    reduction
        ``"mean"`` (over every element, weighted ones included), ``"sum"`` or ``"none"``.

    Examples
    --------
    >>> target = gaussian_heatmaps(torch.tensor([[[2.0, 2.0]]]), (5, 5), sigma=1.0)
    >>> heatmap_mse_loss(target, target).item()
    0.0
    """
    prediction = upcast(check_logits(logits))
    check_choice("reduction", reduction, REDUCTIONS)
    if not isinstance(target, torch.Tensor) or tuple(target.shape) != tuple(prediction.shape):
        raise ValueError(
            f"target must be a tensor of the logits' shape {tuple(prediction.shape)}, got "
            f"{tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__}"
        )
    loss = (prediction - target.to(prediction.dtype)) ** 2
    if keypoint_weight is not None:
        if tuple(keypoint_weight.shape) != tuple(prediction.shape[:2]):
            raise ValueError(
                f"keypoint_weight must have shape (N, K) = {tuple(prediction.shape[:2])}, got "
                f"{tuple(keypoint_weight.shape)}"
            )
        loss = loss * keypoint_weight.to(loss.dtype).view(*loss.shape[:2], *[1] * (loss.ndim - 2))
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class HeatmapMSELoss(LossModule):
    """Module twin of :func:`heatmap_mse_loss` (same keyword arguments)."""

    function = staticmethod(heatmap_mse_loss)
