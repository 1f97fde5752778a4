"""U-Net (Ronneberger, Fischer and Brox 2015, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI), in 2D and 3D.

The network of the paper's Fig. 1, read top to bottom:

* contracting path: per level a :class:`~course_lib.blocks.conv.DoubleConv` (two 3x3 convs + ReLU),
  then 2x2 max-pooling with stride 2; the channel count doubles at every level (64, 128, 256, 512);
* bottom: one more double conv (1024 channels), then dropout ("drop-out layers at the end of the
  contracting path perform further implicit data augmentation", Sec. 3.1);
* expanding path: per level a 2x2 "up-convolution" halving the channels, concatenation with the
  centre-cropped feature map of the same level (the skip connection), a double conv;
* head: a 1x1 convolution to ``num_classes`` channels (raw logits; the loss applies the softmax).

With ``padding="valid"`` (the paper) a 572 x 572 tile gives a 388 x 388 map and the net has
31,030,658 parameters (1 input channel, 2 classes, 64 base channels, depth 4). ``padding="same"``
keeps the size (sides must be multiples of ``2**depth``), which is what most later U-Nets do.

Examples
--------
>>> import torch
>>> net = UNet(1, 2, base_channels=4, depth=2)
>>> net.output_shape((92, 92))
(52, 52)
>>> net(torch.zeros(1, 1, 92, 92)).shape
torch.Size([1, 2, 52, 52])
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from course_lib.blocks.attention_gate import AttentionGate
from course_lib.blocks.conv import (
    DoubleConv,
    conv_layer,
    conv_transpose_layer,
    init_gaussian_,
    max_pool_layer,
)
from course_lib.models import _shapes
from course_lib.ops.checks import check_choice, check_int, check_spatial_dims
from course_lib.ops.shapes import center_crop

UP_MODES = ("transpose", "upsample")
UP_CHANNELS = ("halve", "keep")

BlockFactory = Callable[..., nn.Module]
"""``block(in_channels, out_channels, *, spatial_dims, padding, norm) -> nn.Module``: one level's
feature block. :class:`DoubleConv` is the paper's; residual or dense blocks plug in the same way.
A valid-padding block must trim ``UNet.block_loss`` pixels per axis (4 for two 3x3 convs)."""


def up_sampling(
    in_channels: int, out_channels: int, *, spatial_dims: int, mode: str, padding: str
) -> nn.Module:
    """Double the spatial size: the paper's 2x2 up-convolution, or nearest up-sampling + 3x3 conv.

    ``"transpose"``: a transposed convolution with kernel 2 and stride 2 (exactly doubles the size).
    ``"upsample"``: nearest-neighbour up-sampling followed by a 3x3 convolution (Odena et al. 2016:
    avoids checkerboard artifacts); with ``padding="valid"`` this conv trims 2 pixels per axis.
    Nearest (not bilinear) keeps valid nets exactly tileable: bilinear clamps at the tile border.
    """
    if mode not in UP_MODES:
        raise ValueError(f"up_mode must be one of {UP_MODES}, got {mode!r}")
    if mode == "transpose":
        return conv_transpose_layer(spatial_dims)(in_channels, out_channels, 2, stride=2)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        conv_layer(spatial_dims)(in_channels, out_channels, 3, padding=int(padding == "same")),
    )


class UpStage(nn.Module):
    """One level of the expanding path: up-sample, crop-and-concatenate the skip, feature block.

    With a ``gate`` (:class:`~course_lib.blocks.attention_gate.AttentionGate`) the skip is first
    multiplied by attention coefficients computed from it and the up-sampled features.
    """

    def __init__(self, up: nn.Module, block: nn.Module, gate: AttentionGate | None = None) -> None:
        super().__init__()
        self.up = up
        self.block = block
        self.gate = gate

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)
        # valid convs shrink the expanding path more than the skip: crop the skip's centre
        skip = center_crop(skip, x.shape[2:])
        if self.gate is not None:
            skip = self.gate(skip, x)
        return self.block(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """The U-Net of Ronneberger et al. (2015), see the module docstring.

    Parameters
    ----------
    in_channels : int
        Channels of the input image (1 for the paper's grey-value EM images).
    num_classes : int
        Output channels (logits), 2 in the paper (cell / border-and-background).
    base_channels : int
        Channels of the first level (64 in the paper); level ``i`` has ``base_channels * 2**i``.
    depth : int
        Number of max-pooling steps (4 in the paper).
    padding : {"valid", "same"}
        Unpadded convolutions (output smaller than input) or zero-padded (same size).
    spatial_dims : {2, 3}
        2D images or 3D volumes (3D: 3x3x3 convs, 2x2x2 pooling).
    norm : {None, "batch", "instance"}
        Normalisation after every convolution (the paper has none).
    dropout : float
        Dropout probability at the end of the contracting path (after the bottom block).
    up_mode : {"transpose", "upsample"}
        How the expanding path doubles the size, see :func:`up_sampling`.
    block : callable
        Factory of each level's feature block, see :data:`BlockFactory`: ``DoubleConv`` (the
        paper), ``ResidualBlock``, ``DenseBlock`` or ``se_block(DoubleConv)`` (squeeze-and-
        excitation after each block) from :mod:`course_lib.blocks`.
    attention_gates : bool
        Gate every skip connection with an :class:`~course_lib.blocks.attention_gate.AttentionGate`
        (Attention U-Net, Oktay et al. 2018), the up-sampled decoder features as gating signal.
    encoder_block : callable, optional
        Factory of the contracting path's and the bottom's blocks, when they differ from the
        expanding path's ``block`` (the 3D U-Net doubles the width inside them).
    up_channels : {"halve", "keep"}
        The up-sampling step halves the channels (the paper: 1024 -> 512, then 512 + 512 -> 512)
        or keeps them (the 3D U-Net: 512 -> 512, then 512 + 256 -> 256).

    The constructor convention of every model in :mod:`course_lib.models`: ``in_channels``,
    ``num_classes``, then ``base_channels`` (the channels of the first, full-resolution level) and
    ``depth`` (the number of down-samplings).

    Weights start Gaussian with std sqrt(2/N) (:func:`~course_lib.blocks.conv.init_gaussian_`).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        base_channels: int = 64,
        depth: int = 4,
        *,
        padding: str = "valid",
        spatial_dims: int = 2,
        norm: str | None = None,
        dropout: float = 0.0,
        up_mode: str = "transpose",
        block: BlockFactory = DoubleConv,
        attention_gates: bool = False,
        encoder_block: BlockFactory | None = None,
        up_channels: str = "halve",
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("base_channels", base_channels),
            ("depth", depth),
        ):
            check_int(name, value)
        check_choice("padding", padding, ("valid", "same"))
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        check_choice("up_mode", up_mode, UP_MODES)
        check_choice("up_channels", up_channels, UP_CHANNELS)
        check_spatial_dims(spatial_dims)
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth
        self.padding, self.spatial_dims, self.up_mode = padding, spatial_dims, up_mode

        options = dict(spatial_dims=spatial_dims, padding=padding, norm=norm)
        down_block = block if encoder_block is None else encoder_block
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.encoder = nn.ModuleList(
            down_block(c_in, c_out, **options)
            for c_in, c_out in zip([in_channels, *widths[: depth - 1]], widths[:depth], strict=True)
        )
        self.pool = max_pool_layer(spatial_dims)(kernel_size=2, stride=2)
        self.bottom = down_block(widths[-2], widths[-1], **options)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.decoder = nn.ModuleList(
            UpStage(
                up_sampling(c_deep, c_up, spatial_dims=spatial_dims, mode=up_mode, padding=padding),
                block(c + c_up, c, **options),  # the skip (c channels) and the up-sampled (c_up)
                AttentionGate(c, c_up, spatial_dims=spatial_dims) if attention_gates else None,
            )
            for c_deep, c in zip(widths[:0:-1], widths[-2::-1], strict=True)
            for c_up in [c if up_channels == "halve" else c_deep]
        )
        self.head = conv_layer(spatial_dims)(widths[0], num_classes, kernel_size=1)
        init_gaussian_(self)

    @property
    def block_loss(self) -> int:
        """Pixels per axis one block trims: 4 for two valid 3x3 convs, 0 for same padding."""
        return 4 if self.padding == "valid" else 0

    @property
    def up_loss(self) -> int:
        """Pixels per axis the up-sampling step trims (2 for up-sampling + valid 3x3 conv)."""
        return 2 if (self.padding == "valid" and self.up_mode == "upsample") else 0

    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """Spatial output shape for a spatial input shape; ``ValueError`` if the input is invalid.

        >>> UNet(1, 2).output_shape((572, 572))
        (388, 388)
        """
        return _shapes.output_shape(
            input_shape, self.depth, block_loss=self.block_loss, up_loss=self.up_loss
        )

    def valid_input_shape(self, min_shape: Sequence[int]) -> tuple[int, ...]:
        """The smallest valid spatial input shape that is at least ``min_shape`` on every axis.

        >>> UNet(1, 2).valid_input_shape((500, 500))
        (508, 508)
        """
        return _shapes.valid_input_shape(
            min_shape, self.depth, block_loss=self.block_loss, up_loss=self.up_loss
        )

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes, *output_shape)`` for input ``(N, in_channels, *spatial)``."""
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (N, {self.in_channels}, {'D, ' * (self.spatial_dims == 3)}H, "
                f"W), got {tuple(x.shape)}"
            )
        self.output_shape(tuple(x.shape[2:]))  # raises a clear error for an invalid size
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.dropout(self.bottom(x))
        for stage, skip in zip(self.decoder, reversed(skips), strict=True):
            x = stage(x, skip)
        return self.head(x)


def shape_table(model: nn.Module, input_shape: Sequence[int]) -> list[dict[str, object]]:
    """The shape after every top-level stage of ``model`` for a ``(N, C, *spatial)`` input.

    Runs a copy of the model on PyTorch's ``meta`` device (shapes only, no arithmetic), so even the
    paper's 572 x 572 U-Net is tabulated instantly. Rows: ``{"stage", "channels", "shape"}``.
    """
    meta = copy.deepcopy(model).to("meta")
    rows: list[dict[str, object]] = []

    def record(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: object, output: Tensor) -> None:
            rows.append(
                {"stage": name, "channels": output.shape[1], "shape": tuple(output.shape[2:])}
            )

        return hook

    for name, module in meta.named_modules():
        if name.count(".") == 1 and name.split(".")[0] in ("encoder", "decoder"):
            module.register_forward_hook(record(name))
        elif name in ("bottom", "head"):
            module.register_forward_hook(record(name))
    with torch.no_grad():
        meta(torch.empty(*input_shape, device="meta"))
    return rows
