"""Argument checks shared by the metrics: spatial axes, spacing, binary masks."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import torch

Spacing = float | Sequence[float] | None


def resolve_spatial_dims(ndim: int, spacing: Spacing, spatial_dims: int | None) -> int:
    """How many trailing axes are spatial (the course's rule for every metric).

    ``spatial_dims`` when given; otherwise ``len(spacing)`` when spacing is a sequence; otherwise
    every axis is spatial (as in SciPy). Raises ``ValueError`` when these disagree.
    """
    from_spacing = len(spacing) if isinstance(spacing, Sequence) else None
    if spatial_dims is None:
        spatial_dims = from_spacing if from_spacing is not None else ndim
    if not isinstance(spatial_dims, int) or not 1 <= spatial_dims <= ndim:
        raise ValueError(
            f"spatial_dims must be an int from 1 to the input's {ndim} axes, got {spatial_dims!r}"
        )
    if from_spacing is not None and from_spacing != spatial_dims:
        raise ValueError(
            f"spacing must give one value per spatial axis ({spatial_dims}), got {from_spacing}"
        )
    return spatial_dims


def resolve_spacing(spacing: Spacing, spatial_dims: int) -> tuple[float, ...]:
    """One positive voxel size per spatial axis (a scalar applies to every axis; None means 1)."""
    if spacing is None:
        return (1.0,) * spatial_dims
    values = tuple(spacing) if isinstance(spacing, Sequence) else (spacing,) * spatial_dims
    if any(not isinstance(s, Real) or not float(s) > 0 for s in values):
        raise ValueError(f"spacing must be positive numbers, got {spacing!r}")
    return tuple(float(s) for s in values)


def binary_pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``pred`` and ``target`` as bool masks, after checking they are binary and alike in shape.

    Metrics take masks, not probabilities: a soft 0.3 is neither in nor out, so thresholding is
    left to the caller (MONAI silently counts any nonzero value as foreground).
    """
    masks = []
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype != torch.bool and not bool(((x == 0) | (x == 1)).all()):
            raise ValueError(
                f"{name} must be a binary mask (bool, or values 0 and 1); threshold "
                f"probabilities first (e.g. p > 0.5). Got values in [{x.min()}, {x.max()}]"
            )
        masks.append(x if x.dtype == torch.bool else x != 0)
    check_same_shape(pred, target)
    return masks[0], masks[1]


def check_same_shape(pred: torch.Tensor, target: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``pred`` and ``target`` have the same shape."""
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
