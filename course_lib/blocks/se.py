"""Squeeze-and-excitation (Hu, Shen and Sun 2018, "Squeeze-and-Excitation Networks", CVPR).

A channel re-weighting ("feature recalibration" in nnU-Net's list of U-Net improvements): every
channel of ``x`` is multiplied by a gate in (0, 1) computed from all channels' global averages.

    z_c = mean over the pixels of x_c                   (squeeze, Sec. 3.1)
    s   = sigmoid(W_2 relu(W_1 z))                      (excitation, Sec. 3.2, eq. 3)
    y_c = s_c * x_c                                     (scale, eq. 4)

``W_1`` maps C channels to C / r, ``W_2`` back to C; the paper's reduction ratio is r = 16. The
output has the shape of the input, so the module can follow any block; :func:`se_block` makes a
U-Net block factory "block, then SE" (``UNet(block=se_block(DoubleConv))``), as Hu et al. add SE
after the residual branch of every ResNet block.

Examples
--------
>>> import torch
>>> SqueezeExcitation(32)(torch.ones(2, 32, 5, 5)).shape
torch.Size([2, 32, 5, 5])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from course_lib.ops.checks import check_int

REDUCTION = 16
"""The paper's reduction ratio r (Hu et al., Sec. 6.1: a good accuracy / cost trade-off)."""


class SqueezeExcitation(nn.Module):
    """``y = x * sigmoid(W_2 relu(W_1 mean(x)))``, one gate per channel (module docstring).

    Parameters
    ----------
    channels : int
        ``C``, the channels of the input.
    reduction : int
        ``r``; the hidden layer has ``max(1, C // r)`` units.

    Works for any number of spatial axes (2D images, 3D volumes).
    """

    def __init__(self, channels: int, reduction: int = REDUCTION) -> None:
        super().__init__()
        for name, value in (("channels", channels), ("reduction", reduction)):
            check_int(name, value)
        hidden = max(1, channels // reduction)
        self.excitation = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )

    def gates(self, x: Tensor) -> Tensor:
        """The channel gates ``s``, shape ``(N, C)``, values in (0, 1)."""
        channels = self.excitation[0].in_features
        if x.ndim < 3 or x.shape[1] != channels:
            raise ValueError(f"x must have shape (N, {channels}, *spatial), got {tuple(x.shape)}")
        squeezed = x.mean(dim=tuple(range(2, x.ndim)))
        return torch.sigmoid(self.excitation(squeezed))

    def forward(self, x: Tensor) -> Tensor:
        """Every channel of ``x`` scaled by its gate."""
        s = self.gates(x)
        return x * s.reshape(*s.shape, *(1,) * (x.ndim - 2))


def se_block(
    block: Callable[..., nn.Module], reduction: int = REDUCTION
) -> Callable[..., nn.Module]:
    """A block factory whose blocks are ``block(...)`` followed by :class:`SqueezeExcitation`.

    ``block`` has the U-Net block signature ``block(in_channels, out_channels, **options)``; the
    result has it too, so ``UNet(..., block=se_block(DoubleConv))`` is the SE variant of a U-Net.

    Examples
    --------
    >>> from course_lib.blocks.conv import DoubleConv
    >>> make = se_block(DoubleConv, reduction=4)
    >>> type(make(1, 8, padding="same")[1]).__name__
    'SqueezeExcitation'
    """

    def make(in_channels: int, out_channels: int, **options: Any) -> nn.Module:
        return nn.Sequential(
            block(in_channels, out_channels, **options), SqueezeExcitation(out_channels, reduction)
        )

    return make
