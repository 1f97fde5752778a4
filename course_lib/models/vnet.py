"""V-Net (Milletari, Navab and Ahmadi 2016, "V-Net: Fully Convolutional Neural Networks for
Volumetric Medical Image Segmentation", 3DV), in 3D (and 2D, for cheap experiments).

The network of the paper's Fig. 1, read top to bottom:

* compression path: five stages of 1, 2, 3, 3 and 3 convolutions with 5x5x5 kernels, each followed
  by a PReLU, at 16, 32, 64, 128 and 256 channels; every stage learns a residual function (its
  input is added element-wise to the output of its last convolution, here after that
  convolution's PReLU; re-implementations differ on this order). Between stages a 2x2x2
  convolution with stride 2 (+ PReLU) halves the resolution and doubles the channels: "replacing
  pooling operations with convolutional ones results also to networks that [...] have a smaller
  memory footprint during training, due to the fact that no switches mapping the output of pooling
  layers back to their inputs are needed for back-propagation" (Sec. 2);
* decompression path: per stage a 2x2x2 transposed convolution (+ PReLU) up to the next finer
  resolution, concatenation with the compression stage of that resolution ("fine grained features
  forwarding"), then 3, 3, 2 and 1 residual convolutions at 256, 128, 64 and 32 channels;
* head: a 1x1x1 convolution to ``num_classes`` channels (raw logits; the paper's soft-max is left to
  the loss, as everywhere in this course).

A stage at level ``l`` (0 = full resolution) has ``min(l + 1, 3)`` convolutions, in both paths;
``base_channels`` (paper 16) and ``depth`` (paper 4 down-samplings) make smaller nets for the quick
profile. Convolutions are zero-padded, so a 128 x 128 x 64 input gives a 128 x 128 x 64 output;
every side must be a multiple of ``2**depth``.

We differ from the paper in two small places, each an option: ``norm`` (default ``None``, as in the
paper) adds batch or instance normalisation after every convolution, which the paper does not have
but most re-implementations add for stable training; and an input with ``in_channels > 1`` reaches
the first residual sum through a 1x1x1 convolution (the paper's single-channel input is added to
each of the 16 feature maps directly, by broadcasting).

Examples
--------
>>> import torch
>>> net = VNet(1, 2, base_channels=4, depth=2, kernel_size=3)
>>> net(torch.zeros(1, 1, 16, 16, 8)).shape
torch.Size([1, 2, 16, 16, 8])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from course_lib.blocks.conv import (
    ConvNormAct,
    activation_layer,
    conv_layer,
    conv_transpose_layer,
    norm_layer,
)
from course_lib.ops.checks import check_int, check_spatial_dims

MAX_CONVS_PER_STAGE = 3
"""Stages hold 1, 2, 3, 3, 3 convolutions from the top (paper Fig. 1): ``min(level + 1, 3)``."""


def convs_per_stage(level: int) -> int:
    """Number of 5x5x5 convolutions of the stage at ``level`` (0 = full resolution), both paths."""
    return min(level + 1, MAX_CONVS_PER_STAGE)


class ResidualStage(nn.Module):
    """``n`` convolutions (each conv + PReLU) whose output is added to the stage input.

    ``y = F(x) + x`` (Milletari et al. Sec. 2, after He et al. 2016): the convolutions learn a
    residual, which "ensures convergence in a fraction of the time required by a similar network
    that does not learn residual functions". ``shortcut`` maps the input to the output channels
    when they differ; the default adds the input unchanged (broadcasting a 1-channel input).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        n_convs: int,
        *,
        spatial_dims: int = 3,
        kernel_size: int = 5,
        norm: str | None = None,
        shortcut: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            *(
                ConvNormAct(
                    in_channels if i == 0 else channels,
                    channels,
                    spatial_dims=spatial_dims,
                    kernel_size=kernel_size,
                    padding="same",
                    norm=norm,
                    activation="prelu",
                )
                for i in range(n_convs)
            )
        )
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.convs(x) + self.shortcut(x)


def _resample(
    layer: Callable[..., nn.Module],
    in_channels: int,
    out_channels: int,
    spatial_dims: int,
    norm: str | None,
) -> nn.Sequential:
    """A 2x2x2 stride-2 (transposed) convolution + (norm) + PReLU: V-Net's down- and up-sampling."""
    return nn.Sequential(
        layer(in_channels, out_channels, kernel_size=2, stride=2, bias=norm is None),
        norm_layer(norm, out_channels, spatial_dims),
        activation_layer("prelu", out_channels),
    )


class VNet(nn.Module):
    """V-Net: residual stages, strided-convolution down-sampling, concatenated forwarding.

    Parameters
    ----------
    in_channels : int
        Image channels (the paper: 1, prostate MRI).
    num_classes : int
        Output channels (the paper: 2, foreground and background).
    base_channels : int
        Channels of the first stage, doubled at every level (paper 16).
    depth : int
        Number of down-samplings (paper 4, i.e. five resolution levels).
    kernel_size : int
        Side of the stage convolutions (paper 5); odd.
    spatial_dims : {2, 3}
        Volumes (the paper) or images.
    norm : {None, "batch", "instance"}
        Normalisation after every convolution (the paper has none).

    Examples
    --------
    >>> net = VNet(1, 2)  # the paper's net
    >>> net.channels
    (16, 32, 64, 128, 256)
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        base_channels: int = 16,
        depth: int = 4,
        *,
        kernel_size: int = 5,
        spatial_dims: int = 3,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        for name, value in [
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("base_channels", base_channels),
            ("depth", depth),
        ]:
            check_int(name, value)
        check_spatial_dims(spatial_dims)
        self.depth = depth
        self.spatial_dims = spatial_dims
        self.channels = tuple(base_channels * 2**level for level in range(depth + 1))
        stage: dict[str, Any] = dict(spatial_dims=spatial_dims, kernel_size=kernel_size, norm=norm)
        conv, up = conv_layer(spatial_dims), conv_transpose_layer(spatial_dims)
        c = self.channels

        first_shortcut = None if in_channels == 1 else conv(in_channels, c[0], kernel_size=1)
        self.encoder = nn.ModuleList(
            [ResidualStage(in_channels, c[0], 1, shortcut=first_shortcut, **stage)]
            + [
                ResidualStage(c[lv], c[lv], convs_per_stage(lv), **stage)
                for lv in range(1, depth + 1)
            ]
        )
        self.down = nn.ModuleList(
            _resample(conv, c[lv], c[lv + 1], spatial_dims, norm) for lv in range(depth)
        )
        # up[lv] brings level lv + 1 (the bottom stage, or a decoder stage of 2 * c[lv + 1]
        # channels) to level lv with c[lv] channels, so that the concatenation with the forwarded
        # features has 2 * c[lv] channels (paper Fig. 1: 256, 128, 64, 32)
        self.up = nn.ModuleList(
            _resample(up, c[lv + 1] * (1 if lv == depth - 1 else 2), c[lv], spatial_dims, norm)
            for lv in range(depth)
        )
        self.decoder = nn.ModuleList(
            ResidualStage(2 * c[lv], 2 * c[lv], convs_per_stage(lv), **stage) for lv in range(depth)
        )
        self.head = conv(2 * c[0], num_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes, *spatial)`` for ``(N, in_channels, *spatial)``."""
        self.check_input(x)
        forwarded = []
        for level in range(self.depth):
            x = self.encoder[level](x)
            forwarded.append(x)
            x = self.down[level](x)
        x = self.encoder[self.depth](x)
        for level in reversed(range(self.depth)):
            x = torch.cat([self.up[level](x), forwarded[level]], dim=1)
            x = self.decoder[level](x)
        return self.head(x)

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(N, C, *spatial)``, sides multiples of 2^depth."""
        factor = 2**self.depth
        if x.ndim != self.spatial_dims + 2 or any(s % factor for s in x.shape[2:]):
            raise ValueError(
                f"VNet(depth={self.depth}, spatial_dims={self.spatial_dims}) needs an input "
                f"(N, C, *spatial) with {self.spatial_dims} spatial sides divisible by {factor}, "
                f"got {tuple(x.shape)}"
            )


def receptive_fields(depth: int = 4, kernel_size: int = 5) -> list[tuple[str, int]]:
    """Theoretical receptive field (voxels per side) after each stage, counted as the paper does.

    Every layer of kernel ``k`` grows the field by ``(k - 1) * jump``, where ``jump`` is the input
    spacing of the layer's output grid; a stride-2 layer doubles the jump (halves it going up).
    Milletari et al. Table 1 count the 2x2x2 transposed convolutions like convolutions (each adds
    ``jump`` at its output resolution), which gives 551 at the output of the paper's net. Strictly,
    an output voxel of a stride-2 transposed convolution with kernel 2 sees one input voxel, so the
    field measured with gradients is a few voxels smaller, by how much depending on where the
    voxel sits on the stride-2 grids (the chapter measures it).

    Returns
    -------
    list of (stage name, field)
        ``L-Stage 1`` ... ``L-Stage depth+1``, then ``R-Stage depth`` ... ``R-Stage 1``.

    Examples
    --------
    >>> [field for _, field in receptive_fields()]
    [5, 22, 72, 172, 372, 476, 528, 546, 551]
    """
    field, jump, rows = 1, 1, []
    for level in range(depth + 1):
        if level > 0:  # the 2x2x2 stride-2 down-convolution
            field += jump
            jump *= 2
        field += convs_per_stage(level) * (kernel_size - 1) * jump
        rows.append((f"L-Stage {level + 1}", field))
    for level in reversed(range(depth)):
        jump //= 2
        field += jump  # the 2x2x2 up-convolution, counted as the paper counts it
        field += convs_per_stage(level) * (kernel_size - 1) * jump
        rows.append((f"R-Stage {level + 1}", field))
    return rows


def saved_tensor_bytes(module: nn.Module, x: Tensor) -> dict[str, int]:
    """Bytes that autograd keeps from ``module(x)`` for the backward pass, by dtype.

    Each tensor is counted once, however many operations save it (``saved_tensors_hooks`` sees
    every save; tensors sharing storage are deduplicated by their data pointer). This is how the
    chapter measures V-Net's claim that a strided convolution needs less memory than max-pooling,
    whose back-propagation needs the "switches" (the argmax indices, ``int64`` in PyTorch).
    Parameters are not counted: they exist whether or not anything is saved.

    Examples
    --------
    >>> x = torch.randn(1, 4, 8, 8, 8, requires_grad=True)
    >>> saved_tensor_bytes(nn.MaxPool3d(2), x)  # the input (float32) and the switches (int64)
    {'torch.float32': 8192, 'torch.int64': 2048}
    """
    parameters = {p.data_ptr() for p in module.parameters()}
    seen: dict[int, tuple[str, int]] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if t.data_ptr() not in parameters:
            seen[storage.data_ptr()] = (str(t.dtype), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x)
    totals: dict[str, int] = {}
    for dtype, nbytes in seen.values():
        totals[dtype] = totals.get(dtype, 0) + nbytes
    return totals
