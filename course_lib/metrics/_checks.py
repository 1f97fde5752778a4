"""Argument checks shared by the metrics: binary masks of one shape (the rest is in ``ops``)."""

from __future__ import annotations

import torch


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
