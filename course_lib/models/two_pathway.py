"""Two-pathway U-Net for anisotropic multi-parametric MR (vestibular schwannoma, T1/T2 inputs).

Every block of this U-Net runs two pathways side by side on the same input:

* in-plane: two conv-BN-PReLU with 3x3x1 kernels (the paper's (x, y, z) order; ``(1, 3, 3)`` in
  our ``(D, H, W)`` order), which mix only voxels of one slice, where the resolution is high;
* through-plane: two conv-BN-PReLU with 1x1x3 kernels (``(3, 1, 1)``), which mix only the same
  in-plane position across neighbouring slices.

How the pathways merge is not in the notes (they have the abstract and one figure). We document our
choice: concatenate the two outputs along the channels and fuse them with a 1x1x1 conv-BN-PReLU back
to the block's width, so every output channel can combine in-plane and through-plane evidence.
Together the two pathways reach as far as a 3x3x3 double convolution along every axis, with
9 + 3 instead of 27 weights per kernel pair of channels. The rest is the course's
:class:`~course_lib.models.unet.UNet` (same padding, 2x2x2 pooling, transposed convolutions); the
single-pathway baseline (:func:`single_pathway_unet`) is the same U-Net with 3x3x3 conv-BN-PReLU
blocks.

Reference: the notes' summary of "Combining analysis of multi-parametric MR images into a
convolutional neural network: Precise target delineation for vestibular schwannoma treatment
planning" (abstract and figure only): T1W, T2W and T1C inputs; a two-pathway U-Net with 3x3x1 and
1x1x3 kernels outperformed a single-pathway U-Net on anisotropic MR images.

Examples
--------
>>> import torch
>>> net = TwoPathwayUNet(2, 2, base_channels=4, depth=2)
>>> net(torch.zeros(1, 2, 4, 16, 16)).shape
torch.Size([1, 2, 4, 16, 16])
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor, nn

from course_lib.blocks.conv import ConvNormAct, DoubleConv
from course_lib.models.unet import UNet
from course_lib.models.unet25d import KERNEL_3D, unet_receptive_field

KERNEL_IN_PLANE = (1, 3, 3)
"""The paper's 3x3x1 kernel in (D, H, W) order: one slice, 3x3 in-plane."""
KERNEL_THROUGH_PLANE = (3, 1, 1)
"""The paper's 1x1x3 kernel in (D, H, W) order: three slices, one in-plane position."""
_UNET_OPTIONS = {"padding": "same", "spatial_dims": 3, "norm": "batch"}
"""What the two-pathway net and its single-pathway baseline share."""


class TwoPathwayBlock(nn.Module):
    """In-plane and through-plane double convolutions side by side, concatenated, fused by 1x1x1.

    ``y = fuse(cat(in_plane(x), through_plane(x)))``: ``in_plane`` is two conv-BN-PReLU with
    ``(1, 3, 3)`` kernels, ``through_plane`` two with ``(3, 1, 1)``, ``fuse`` one ``(1, 1, 1)``.
    Takes the keyword arguments of a :data:`course_lib.models.unet.BlockFactory` so that
    :class:`~course_lib.models.unet.UNet` builds its levels from it; only 3D and ``"same"``
    padding make sense here.

    Examples
    --------
    >>> block = TwoPathwayBlock(2, 8)
    >>> block(torch.zeros(1, 2, 3, 5, 5)).shape
    torch.Size([1, 8, 3, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_dims: int = 3,
        padding: str = "same",
        norm: str | None = "batch",
    ) -> None:
        super().__init__()
        if spatial_dims != 3:
            raise ValueError(
                f"a two-pathway block is 3D: spatial_dims must be 3, got {spatial_dims!r}"
            )
        if padding != "same":
            raise ValueError(
                "a two-pathway block pads to keep the size: padding must be 'same', "
                f"got {padding!r}"
            )
        options: dict[str, Any] = dict(
            spatial_dims=3, padding="same", norm=norm, activation="prelu"
        )
        self.in_plane = DoubleConv(
            in_channels, out_channels, kernel_size=KERNEL_IN_PLANE, **options
        )
        self.through_plane = DoubleConv(
            in_channels, out_channels, kernel_size=KERNEL_THROUGH_PLANE, **options
        )
        self.fuse = ConvNormAct(2 * out_channels, out_channels, kernel_size=1, **options)

    def forward(self, x: Tensor) -> Tensor:
        return self.fuse(torch.cat([self.in_plane(x), self.through_plane(x)], dim=1))


class TwoPathwayUNet(UNet):
    """A 3D U-Net (same padding, batch norm) whose every level is a :class:`TwoPathwayBlock`.

    Parameters
    ----------
    in_channels
        MR sequences stacked as channels (e.g. 2 for T1-like + T2-like).
    num_classes
        Output channels (logits).
    base_channels
        Width of level 1, doubling per level.
    depth
        Number of 2x2x2 poolings; ``D``, ``H`` and ``W`` must be multiples of ``2**depth``.
    dropout
        Dropout at the end of the contracting path.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        base_channels: int = 16,
        depth: int = 3,
        *,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            in_channels,
            num_classes,
            base_channels,
            depth,
            dropout=dropout,
            block=TwoPathwayBlock,
            **_UNET_OPTIONS,  # type: ignore[arg-type]
        )

    @property
    def receptive_field(self) -> tuple[int, int, int]:
        """Voxels ``(D, H, W)`` that can influence one output voxel: along every axis one of the
        pathways grows the field as a 3x3x3 double convolution does."""
        return unet_receptive_field([KERNEL_3D] * (self.depth + 1), [(2, 2, 2)] * self.depth)  # type: ignore[return-value]


def single_pathway_unet(
    in_channels: int, num_classes: int, base_channels: int = 16, depth: int = 3
) -> UNet:
    """The baseline of :class:`TwoPathwayUNet`: the same U-Net with 3x3x3 conv-BN-PReLU blocks."""
    prelu_block = functools.partial(DoubleConv, activation="prelu")
    return UNet(in_channels, num_classes, base_channels, depth, block=prelu_block, **_UNET_OPTIONS)  # type: ignore[arg-type]
