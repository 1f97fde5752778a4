"""Dense block (Huang, Liu, van der Maaten and Weinberger 2017, "Densely Connected Convolutional
Networks", CVPR).

Every layer sees the feature maps of all layers before it, concatenated, and adds ``k`` new ones
(``k`` is the *growth rate*, Sec. 3):

    x_l = H_l([x_0, x_1, ..., x_{l-1}]),     H_l = 3x3 conv-norm-act with k output channels

The block's output ``[x_0, ..., x_L]`` (``in_channels + L * k`` channels) goes through a 1x1
conv-norm-act to ``out_channels``, like DenseNet's transition layer (without its pooling: the U-Net
pools between levels). Feature reuse keeps each layer narrow; the 1x1 layer lets the block plug into
a U-Net level: ``UNet(block=DenseBlock)`` (see :data:`course_lib.models.unet.BlockFactory`).

We differ from DenseNet in two places: conv-norm-act order (as the rest of the course) instead of
DenseNet's pre-activation norm-act-conv, and ``padding="valid"``, where every 3x3 layer trims one
pixel per side and the earlier maps are centre-cropped before the concatenation. With the default
two layers a valid block trims 4 pixels per axis, like the paper's double convolution.

Examples
--------
>>> import torch
>>> DenseBlock(4, 8, padding="same")(torch.zeros(1, 4, 16, 16)).shape
torch.Size([1, 8, 16, 16])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from course_lib.blocks.conv import ConvNormAct
from course_lib.ops.checks import check_int
from course_lib.ops.shapes import center_crop


class DenseBlock(nn.Module):
    """``num_layers`` densely connected 3x3 layers, then a 1x1 transition to ``out_channels``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    spatial_dims : {2, 3}
        2D images or 3D volumes.
    padding : {"valid", "same"}
        ``"valid"`` trims ``2 * num_layers`` pixels per axis, ``"same"`` keeps the size.
    norm : {None, "batch", "instance"}
        Normalisation after every convolution.
    activation : {"relu", "leaky_relu", "prelu"}
        The non-linearity.
    num_layers : int
        ``L``, the 3x3 layers (2: same footprint as the U-Net's double convolution).
    growth_rate : int, optional
        ``k``, channels each layer adds (default ``max(1, out_channels // 2)``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        spatial_dims: int = 2,
        padding: str = "valid",
        norm: str | None = None,
        activation: str = "relu",
        num_layers: int = 2,
        growth_rate: int | None = None,
    ) -> None:
        super().__init__()
        k = max(1, out_channels // 2) if growth_rate is None else growth_rate
        for name, value in (("num_layers", num_layers), ("growth_rate", k)):
            check_int(name, value)
        options: dict[str, Any] = dict(
            spatial_dims=spatial_dims, padding=padding, norm=norm, activation=activation
        )
        self.layers = nn.ModuleList(
            ConvNormAct(in_channels + i * k, k, **options) for i in range(num_layers)
        )
        self.transition = ConvNormAct(
            in_channels + num_layers * k, out_channels, kernel_size=1, **options
        )

    def forward(self, x: Tensor) -> Tensor:
        """Concatenate every layer's output to its inputs, then map to ``out_channels``."""
        features = x
        for layer in self.layers:
            new = layer(features)
            # valid padding: the new maps are smaller, so crop the earlier ones to them
            features = torch.cat([center_crop(features, new.shape[2:]), new], dim=1)
        return self.transition(features)
