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

from course_lib.ops.checks import check_choice, check_spatial_dims, kernel_tuple

PADDINGS = ("valid", "same")
NORMS = (None, "batch", "instance")
ACTIVATIONS = (None, "relu", "leaky_relu", "prelu")


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
    check_choice("norm", norm, NORMS)
    if norm is None:
        return nn.Identity()
    if norm == "batch":
        return (nn.BatchNorm2d, nn.BatchNorm3d)[check_spatial_dims(spatial_dims) - 2](channels)
    return (nn.InstanceNorm2d, nn.InstanceNorm3d)[check_spatial_dims(spatial_dims) - 2](
        channels, affine=True
    )


def activation_layer(activation: str | None, channels: int) -> nn.Module:
    """ReLU (U-Net), leaky ReLU of slope 0.01 (nnU-Net), PReLU with one slope per channel (V-Net),
    or none (identity: a conv-norm whose output is added to a shortcut first, as in ResNet)."""
    check_choice("activation", activation, ACTIVATIONS)
    if activation is None:
        return nn.Identity()
    if activation == "relu":
        return nn.ReLU(inplace=True)
    if activation == "leaky_relu":
        return nn.LeakyReLU(0.01, inplace=True)
    return nn.PReLU(channels)


class ConvNormAct(nn.Sequential):
    """One convolution, then (optionally) a normalisation, then the activation.

    The one convolution unit of the package: U-Net's (3x3, ReLU), V-Net's (5x5x5, PReLU), the
    2.5D U-Net's (1x3x3 or 3x3x3, batch norm, PReLU) and nnU-Net's (per-axis kernel and stride,
    instance norm, leaky ReLU, bias kept) are all this class with different arguments.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    spatial_dims : {2, 3}
        2D images or 3D volumes.
    kernel_size : int or sequence of int
        Side of a cubic kernel, or one side per spatial axis (e.g. ``(1, 3, 3)``: in-plane only);
        odd, so that ``"same"`` padding is symmetric.
    stride : int or sequence of int
        Step of the convolution (nnU-Net down-samples with a stride-2 first convolution). With
        ``"same"`` padding a stride ``s`` gives ``ceil(size / s)``.
    padding : {"valid", "same"}
        ``"valid"`` trims ``kernel_size - 1`` pixels per axis (the U-Net paper); ``"same"`` pads
        ``kernel_size // 2`` zeros on each side to keep the size.
    norm : {None, "batch", "instance"}
        Normalisation after the convolution.
    activation : {"relu", "leaky_relu", "prelu", None}
        The non-linearity; ``None`` for none (conv-norm only).
    bias : bool, optional
        Whether the convolution has a bias. Default: only without a norm, since the norm
        subtracts the mean, which cancels any bias (nnU-Net keeps it anyway: ``bias=True``).

    Examples
    --------
    >>> import torch
    >>> down = ConvNormAct(1, 4, spatial_dims=3, kernel_size=(1, 3, 3), stride=(1, 2, 2),
    ...                    padding="same", norm="instance", activation="leaky_relu", bias=True)
    >>> down(torch.zeros(1, 1, 5, 8, 8)).shape
    torch.Size([1, 4, 5, 4, 4])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_dims: int = 2,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding: str = "valid",
        norm: str | None = None,
        activation: str | None = "relu",
        bias: bool | None = None,
    ) -> None:
        check_choice("padding", padding, PADDINGS)
        kernel = kernel_tuple(kernel_size, check_spatial_dims(spatial_dims))
        conv = conv_layer(spatial_dims)(
            in_channels,
            out_channels,
            kernel,
            stride=stride if isinstance(stride, int) else tuple(stride),
            padding=0 if padding == "valid" else tuple(k // 2 for k in kernel),
            bias=norm is None if bias is None else bias,
        )
        super().__init__(
            conv,
            norm_layer(norm, out_channels, spatial_dims),
            activation_layer(activation, out_channels),
        )


class DoubleConv(nn.Sequential):
    """Two :class:`ConvNormAct` in a row: the unit of every U-Net level (Ronneberger et al. Fig. 1).

    With ``padding="valid"`` and 3x3 kernels the block trims 4 pixels per axis (2 per side).
    Takes the keyword arguments of :class:`ConvNormAct` (kernel, norm, activation, bias apply to
    both convolutions); ``stride`` is the first convolution's (a strided down-sampling, as in
    nnU-Net), the second has stride 1; ``mid_channels`` (default ``out_channels``) is the width
    after the first convolution (the 3D U-Net doubles the width inside the block).

    Examples
    --------
    >>> import torch
    >>> block = DoubleConv(2, 8, spatial_dims=3, kernel_size=(1, 3, 3), padding="same",
    ...                    norm="batch", activation="prelu")
    >>> block(torch.zeros(1, 2, 3, 5, 5)).shape
    torch.Size([1, 8, 3, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        mid_channels: int | None = None,
        spatial_dims: int = 2,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding: str = "valid",
        norm: str | None = None,
        activation: str | None = "relu",
        bias: bool | None = None,
    ) -> None:
        mid = out_channels if mid_channels is None else mid_channels
        options: dict[str, Any] = dict(
            spatial_dims=spatial_dims,
            kernel_size=kernel_size,
            padding=padding,
            norm=norm,
            activation=activation,
            bias=bias,
        )
        super().__init__(
            ConvNormAct(in_channels, mid, stride=stride, **options),
            ConvNormAct(mid, out_channels, **options),
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
