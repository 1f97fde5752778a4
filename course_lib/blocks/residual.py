"""Residual block (He, Zhang, Ren and Sun 2016, "Deep Residual Learning for Image Recognition").

The block learns a correction ``F(x)`` to its input instead of a whole new mapping:

    y = act(F(x) + shortcut(x)),     F = conv-norm-act, conv-norm   (two 3x3 convolutions)

``shortcut`` is the identity when the channel count stays, else a 1x1 convolution (+ norm), the
paper's "projection shortcut" (option B, Sec. 3.3). The identity path lets the gradient reach early
layers unchanged, which is why "add residual" speeds up convergence (the notes, on V-Net; Milletari
et al. 2016 use residual stages for the same reason).

The block has the signature of a U-Net level (``UNet(block=ResidualBlock)``, see
:data:`course_lib.models.unet.BlockFactory`). With ``padding="valid"`` the two 3x3 convolutions
trim 4 pixels per axis like the paper's double convolution, and the shortcut is centre-cropped to
match (we differ from ResNet here, which always pads).

Examples
--------
>>> import torch
>>> ResidualBlock(4, 8, padding="valid")(torch.zeros(1, 4, 20, 20)).shape
torch.Size([1, 8, 16, 16])
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from course_lib.blocks.conv import ConvNormAct, activation_layer
from course_lib.ops.shapes import center_crop


class ResidualBlock(nn.Module):
    """``y = act(F(x) + shortcut(x))`` with ``F`` two 3x3 convolutions (see the module docstring).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out; they differ -> 1x1 projection shortcut.
    spatial_dims : {2, 3}
        2D images or 3D volumes.
    padding : {"valid", "same"}
        ``"valid"`` trims 4 pixels per axis (the shortcut is centre-cropped), ``"same"`` keeps size.
    norm : {None, "batch", "instance"}
        Normalisation after each convolution and on the projection shortcut.
    activation : {"relu", "leaky_relu", "prelu"}
        Non-linearity; the second one comes after the addition, as in ResNet.
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
    ) -> None:
        super().__init__()
        options: dict[str, Any] = dict(spatial_dims=spatial_dims, padding=padding, norm=norm)
        # F ends with the second norm: the activation comes after the addition
        self.residual = nn.Sequential(
            ConvNormAct(in_channels, out_channels, activation=activation, **options),
            ConvNormAct(out_channels, out_channels, activation=None, **options),
        )
        if in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = ConvNormAct(
                in_channels, out_channels, kernel_size=1, activation=None, **options
            )
        self.act = activation_layer(activation, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """``act(F(x) + shortcut(x))``; the shortcut is cropped to ``F(x)`` for valid padding."""
        fx = self.residual(x)
        return self.act(fx + center_crop(self.shortcut(x), fx.shape[2:]))
