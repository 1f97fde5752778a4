"""Centre cropping: U-Net's "crop" before the skip concatenation, and a target cut to a prediction.

Examples
--------
>>> import torch
>>> center_crop(torch.arange(6).view(1, 6), (2,))
tensor([[2, 3]])
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


def center_crop(x: Tensor, spatial_shape: Sequence[int]) -> Tensor:
    """The centre ``spatial_shape`` of the trailing axes of ``x`` (U-Net's "crop" before concat).

    Cropping is needed "due to the loss of border pixels in every convolution" (Ronneberger et al.
    2015, Sec. 2); a target tile is cropped the same way to the size of the prediction. Every axis
    must shrink by an even number, so that as much is cut on each side.

    >>> import torch
    >>> center_crop(torch.zeros(1, 8, 9, 9), (5, 5)).shape
    torch.Size([1, 8, 5, 5])
    """
    spatial_shape = tuple(spatial_shape)
    have = tuple(x.shape[x.ndim - len(spatial_shape) :])
    if any(h < w or (h - w) % 2 for h, w in zip(have, spatial_shape, strict=True)):
        raise ValueError(
            f"cannot centre-crop spatial shape {have} to {spatial_shape}: every axis must be at "
            "least as large and differ by an even number"
        )
    first_axis = x.ndim - len(spatial_shape)
    for axis, (h, w) in enumerate(zip(have, spatial_shape, strict=True)):
        x = x.narrow(first_axis + axis, (h - w) // 2, w)
    return x
