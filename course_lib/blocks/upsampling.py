"""Transposed convolutions of any kernel size, and a measure of the checkerboard they leave.

The U-Net's 2x2 up-convolution and nearest up-sampling + convolution are
:func:`course_lib.models.unet.up_sampling`. This module adds what chapter 05 needs to compare
them with the kernel-3, stride-2 transposed convolution of TernausNet's decoder, the case of
Odena, Dumoulin and Olah (2016), "Deconvolution and Checkerboard Artifacts", Distill: when the
kernel size is not a multiple of the stride, output pixels receive unequal numbers of kernel taps
("uneven overlap"), 1, 2, 1, 2, ... per axis for kernel 3 and stride 2, so even a constant input
comes out as a checkerboard. Up-sampling first and then convolving gives every pixel the same taps.

:func:`checkerboard_amplitude` measures the artifact: the average 2 x 2 tile of a map (every 2 x 2
cell of the map, averaged) is flat for anything without period-2 structure, and its spread is the
amplitude of the checkerboard.

Examples
--------
>>> import torch
>>> up = transposed_conv_up(1, 1, kernel_size=3)
>>> _ = torch.nn.init.ones_(up.weight), torch.nn.init.zeros_(up.bias)
>>> up(torch.ones(1, 1, 4, 4))[0, 0, 2:6, 2:6].detach()  # taps per axis 1, 2, 1, 2: uneven
tensor([[1., 2., 1., 2.],
        [2., 4., 2., 4.],
        [1., 2., 1., 2.],
        [2., 4., 2., 4.]])
"""

from __future__ import annotations

from torch import Tensor, nn

from course_lib.blocks.conv import conv_transpose_layer
from course_lib.ops.checks import check_int


def transposed_conv_up(
    in_channels: int, out_channels: int, *, kernel_size: int = 2, spatial_dims: int = 2
) -> nn.Module:
    """A stride-2 transposed convolution whose output is exactly twice its input on every axis.

    PyTorch's output size is ``(s - 1) * 2 - 2 * padding + kernel_size + output_padding``; with
    ``padding = (kernel_size - 1) // 2`` and ``output_padding = 2 + 2 * padding - kernel_size``
    (0 or 1) it is ``2 s``. Kernel 2 is U-Net's up-convolution, kernel 3 TernausNet's.
    """
    check_int("kernel_size (of a stride-2 up-sampling)", kernel_size, minimum=2)
    padding = (kernel_size - 1) // 2
    return conv_transpose_layer(spatial_dims)(
        in_channels,
        out_channels,
        kernel_size,
        stride=2,
        padding=padding,
        output_padding=2 + 2 * padding - kernel_size,
    )


def checkerboard_amplitude(y: Tensor, margin: int = 0) -> Tensor:
    """Standard deviation of the average 2 x 2 tile of the last two axes of ``y``, per map.

    ``margin`` pixels are dropped at every side first (zero padding makes the border differ).
    A constant map gives 0 and ``a * (-1) ** (i + j)`` gives ``a``; smooth content adds little
    (a ramp of slope ``s`` per pixel gives ``s / sqrt(2)``), edges at random positions average out.

    >>> import torch
    >>> i, j = torch.meshgrid(torch.arange(6), torch.arange(6), indexing="ij")
    >>> float(checkerboard_amplitude(3.0 * (-1.0) ** (i + j)))
    3.0
    """
    check_int("margin", margin, minimum=0)
    if y.ndim < 2:
        raise ValueError(f"y must have at least 2 (spatial) axes, got shape {tuple(y.shape)}")
    h, w = y.shape[-2] - 2 * margin, y.shape[-1] - 2 * margin
    if h < 2 or w < 2:
        raise ValueError(f"y of shape {tuple(y.shape)} leaves no 2 x 2 tile after margin {margin}")
    y = y[..., margin : margin + h // 2 * 2, margin : margin + w // 2 * 2].float()
    tile = y.reshape(*y.shape[:-2], h // 2, 2, w // 2, 2).mean(dim=(-4, -2))
    return tile.flatten(-2).std(dim=-1, unbiased=False)
