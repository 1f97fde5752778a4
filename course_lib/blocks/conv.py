"""Convolution blocks of the U-Net family: conv-norm-activation and the double convolution.

The U-Net paper (Ronneberger et al. 2015, Sec. 2) builds both paths from "the repeated application
of two 3x3 convolutions (unpadded convolutions), each followed by a rectified linear unit".
:class:`DoubleConv` is that unit; :class:`ConvNormAct` is one of its two halves. Both work in 2D
and 3D and with ``padding="valid"`` (the paper: every 3x3 conv trims one pixel per side) or
``padding="same"`` (zero padding keeps the size, as most later U-Nets and nnU-Net do).

Examples
--------
>>> import torch
>>> block = DoubleConv(1, 8, padding="valid")
>>> block(torch.zeros(1, 1, 20, 20)).shape
torch.Size([1, 8, 16, 16])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import nn

PADDINGS = ("valid", "same")
NORMS = (None, "batch", "instance")
ACTIVATIONS = ("relu", "leaky_relu", "prelu")


def check_spatial_dims(spatial_dims: int) -> int:
    """Return ``spatial_dims`` if it is 2 or 3, else raise ``ValueError``."""
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    return spatial_dims


def _check_choice(name: str, value: object, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def conv_layer(spatial_dims: int) -> type[nn.Module]:
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    return (nn.Conv2d, nn.Conv3d)[check_spatial_dims(spatial_dims) - 2]


def conv_transpose_layer(spatial_dims: int) -> type[nn.Module]:
    """``nn.ConvTranspose2d`` or ``nn.ConvTranspose3d``."""
    return (nn.ConvTranspose2d, nn.ConvTranspose3d)[check_spatial_dims(spatial_dims) - 2]


def max_pool_layer(spatial_dims: int) -> type[nn.Module]:
    """``nn.MaxPool2d`` or ``nn.MaxPool3d``."""
    return (nn.MaxPool2d, nn.MaxPool3d)[check_spatial_dims(spatial_dims) - 2]


def norm_layer(norm: str | None, channels: int, spatial_dims: int) -> nn.Module:
    """The normalisation after a convolution: batch norm, instance norm or none (identity).

    Instance norm gets a learnable scale and shift (``affine=True``) like batch norm, as in nnU-Net.
    """
    _check_choice("norm", norm, NORMS)
    if norm is None:
        return nn.Identity()
    if norm == "batch":
        return (nn.BatchNorm2d, nn.BatchNorm3d)[check_spatial_dims(spatial_dims) - 2](channels)
    return (nn.InstanceNorm2d, nn.InstanceNorm3d)[check_spatial_dims(spatial_dims) - 2](
        channels, affine=True
    )


def activation_layer(activation: str, channels: int) -> nn.Module:
    """ReLU (U-Net), leaky ReLU of slope 0.01 (nnU-Net) or PReLU, one slope per channel (V-Net)."""
    _check_choice("activation", activation, ACTIVATIONS)
    if activation == "relu":
        return nn.ReLU(inplace=True)
    if activation == "leaky_relu":
        return nn.LeakyReLU(0.01, inplace=True)
    return nn.PReLU(channels)


class ConvNormAct(nn.Sequential):
    """One convolution, then (optionally) a normalisation, then the activation.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    spatial_dims : {2, 3}
        2D images or 3D volumes.
    kernel_size : int or sequence of int
        Side of a cubic kernel, or one side per spatial axis (e.g. ``(1, 3, 3)``: in-plane only);
        odd, so that ``"same"`` padding is symmetric.
    padding : {"valid", "same"}
        ``"valid"`` trims ``kernel_size - 1`` pixels per axis (the U-Net paper); ``"same"`` pads
        with zeros to keep the size.
    norm : {None, "batch", "instance"}
        Normalisation after the convolution. With a norm the convolution has no bias: the norm
        subtracts the mean, which would cancel any bias anyway.
    activation : {"relu", "leaky_relu", "prelu"}
        The non-linearity.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_dims: int = 2,
        kernel_size: int | Sequence[int] = 3,
        padding: str = "valid",
        norm: str | None = None,
        activation: str = "relu",
    ) -> None:
        _check_choice("padding", padding, PADDINGS)
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size,) * spatial_dims
        kernel = tuple(kernel_size)
        if len(kernel) != spatial_dims or any(k < 1 or k % 2 == 0 for k in kernel):
            raise ValueError(
                f"kernel_size must be a positive odd int or {spatial_dims} of them, got "
                f"{kernel_size!r}"
            )
        conv = conv_layer(spatial_dims)(
            in_channels,
            out_channels,
            kernel,
            padding=0 if padding == "valid" else tuple(k // 2 for k in kernel),
            bias=norm is None,
        )
        super().__init__(
            conv,
            norm_layer(norm, out_channels, spatial_dims),
            activation_layer(activation, out_channels),
        )


class DoubleConv(nn.Sequential):
    """Two :class:`ConvNormAct` in a row: the unit of every U-Net level (Ronneberger et al. Fig. 1).

    With ``padding="valid"`` and 3x3 kernels the block trims 4 pixels per axis (2 per side).
    Takes the same keyword arguments as :class:`ConvNormAct`; ``mid_channels`` (default
    ``out_channels``) is the width after the first convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        mid_channels: int | None = None,
        spatial_dims: int = 2,
        kernel_size: int = 3,
        padding: str = "valid",
        norm: str | None = None,
        activation: str = "relu",
    ) -> None:
        mid = out_channels if mid_channels is None else mid_channels
        options: dict[str, Any] = dict(
            spatial_dims=spatial_dims,
            kernel_size=kernel_size,
            padding=padding,
            norm=norm,
            activation=activation,
        )
        super().__init__(
            ConvNormAct(in_channels, mid, **options), ConvNormAct(mid, out_channels, **options)
        )


def init_gaussian_(module: nn.Module) -> None:
    """He/Ronneberger initialisation: weights ~ N(0, 2/N), N = incoming connections of one unit.

    Ronneberger et al. (Sec. 3): "a Gaussian distribution with a standard deviation of sqrt(2/N),
    where N denotes the number of incoming nodes of one neuron", e.g. N = 9 * 64 = 576 for a 3x3
    convolution over 64 channels (He et al. 2015). For a transposed convolution one output unit
    receives ``in_channels * prod(kernel) / prod(stride)`` inputs (``in_channels`` for the 2x2,
    stride-2 up-convolution). Biases start at zero. Applied to every conv in ``module``.
    """
    for m in module.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            if m.transposed:
                fan_in = m.in_channels * math.prod(m.kernel_size) / math.prod(m.stride)
            else:
                fan_in = m.in_channels // m.groups * math.prod(m.kernel_size)
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
