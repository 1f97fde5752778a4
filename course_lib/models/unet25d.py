"""2.5D U-Net with spatial attention (Wang et al., MICCAI 2019), for anisotropic volumes.

MR volumes are often anisotropic: in the paper 0.4 x 0.4 mm in-plane, 1.5 mm between slices. A 2D
net ignores the neighbouring slices; a 3D net with cubic 3x3x3 kernels and 2x2x2 pooling sees a
region about 4 times longer (in mm) through-plane than in-plane, so its receptive field is badly
shaped unless the volume is resampled first. The 2.5D U-Net balances the physical receptive field:

* levels 1-2: 2D convolutions (1x3x3 kernels, axis order (D, H, W)) and in-plane 1x2x2 pooling;
  after two of them the in-plane spacing is 1.6 mm, about the slice spacing;
* levels 3-5: 3D convolutions (3x3x3) and 2x2x2 pooling on the now near-isotropic features;
* every block is conv-BN-PReLU twice; 16 base channels doubling per level;
* the decoder up-samples with transposed convolutions that undo each pooling (1x2x2 or 2x2x2),
  concatenates the skip, runs a block with the level's kernel, and then a
  :class:`~course_lib.blocks.spatial_attention.SpatialAttention` module whose map
  ``A_l = sigmoid(z_l)`` it returns as its logit ``z_l``, so that the maps can be supervised
  (:mod:`course_lib.losses.attention`) and drawn (``torch.sigmoid(z_l)``).

``levels_2d=depth + 1`` gives the all-2D baseline (every kernel 1x3x3: slices never mix) and
``levels_2d=0`` the all-3D one, so the paper's 2D / 3D / 2.5D comparison uses one class.

Reference: G. Wang, J. Shapey, W. Li et al., "Automatic Segmentation of Vestibular Schwannoma from
T2-Weighted MRI by Deep Spatial Attention with Hardness-Weighted Loss", MICCAI 2019, section 2.1.
We differ from the paper where the notes leave details open: the attention convolutions use the
level's kernel, and up-sampling is a transposed convolution.

Examples
--------
>>> import torch
>>> net = UNet25D(1, 2, base_channels=4)
>>> logits, attention_logits = net(torch.zeros(1, 1, 8, 32, 32), return_auxiliary=True)
>>> tuple(logits.shape), [tuple(z.shape[2:]) for z in attention_logits]
((1, 2, 8, 32, 32), [(8, 32, 32), (8, 16, 16), (8, 8, 8), (4, 4, 4)])
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from course_lib.blocks.conv import DoubleConv, init_gaussian_
from course_lib.blocks.spatial_attention import SpatialAttention
from course_lib.ops.checks import check_int

KERNEL_2D = (1, 3, 3)
"""In-plane kernel of the 2D levels, in (D, H, W) order (the paper's 3x3x1 in (x, y, z))."""
KERNEL_3D = (3, 3, 3)
POOL_2D = (1, 2, 2)
"""In-plane pooling after a 2D level: halves H and W, keeps every slice."""
POOL_3D = (2, 2, 2)
BLOCK_OPTIONS = {"spatial_dims": 3, "padding": "same", "norm": "batch", "activation": "prelu"}
"""Wang et al.'s block is conv -> batch norm -> PReLU, twice, padded to keep the size."""


def unet_receptive_field(
    kernels: Sequence[Sequence[int]],
    pools: Sequence[Sequence[int]],
    *,
    convs_per_block: int = 2,
    decoder_extra_convs: int = 0,
) -> tuple[int, ...]:
    """Receptive field (voxels per axis) of a same-padding U-Net output voxel.

    Walks the deepest path, where the field is largest. A convolution with kernel ``k`` applied
    where one feature voxel spans ``j`` input voxels grows the field by ``(k - 1) * j``; a pooling
    by ``p`` grows it by ``(p - 1) * j`` and multiplies ``j`` by ``p``; a transposed convolution
    with kernel = stride = ``p`` adds nothing and divides ``j`` by ``p``.

    Parameters
    ----------
    kernels
        Kernel of each level, finest first (``levels`` entries, the last one the bottom level).
    pools
        Pooling after each level but the last (``levels - 1`` entries).
    convs_per_block
        Convolutions in each encoder and decoder block.
    decoder_extra_convs
        More convolutions per decoder level with the level's kernel (2 for a spatial attention
        module, whose map multiplies the features).

    Examples
    --------
    >>> unet_receptive_field([(3, 3)] * 2, [(2, 2)])   # 2 convs, pool, 2 convs, up, 2 convs
    (18, 18)
    """
    if len(pools) != len(kernels) - 1:
        raise ValueError(
            f"need one pooling per level but the last: {len(kernels)} levels, {pools=}"
        )
    ndim = len(kernels[0])
    field, jump = [1] * ndim, [1] * ndim
    for kernel, pool in zip(kernels[:-1], pools, strict=True):
        for a in range(ndim):
            field[a] += convs_per_block * (kernel[a] - 1) * jump[a] + (pool[a] - 1) * jump[a]
            jump[a] *= pool[a]
    for a in range(ndim):
        field[a] += convs_per_block * (kernels[-1][a] - 1) * jump[a]
    for kernel, pool in zip(kernels[-2::-1], pools[::-1], strict=True):
        for a in range(ndim):
            jump[a] //= pool[a]
            field[a] += (convs_per_block + decoder_extra_convs) * (kernel[a] - 1) * jump[a]
    return tuple(field)


def gradient_support(model: nn.Module, input_shape: Sequence[int]) -> Tensor:
    """Input voxels that can influence the centre output voxel (its input gradient is non-zero).

    Runs a float64 copy of ``model`` in eval mode with every max-pooling replaced by average
    pooling over the same window: max-pooling passes the gradient to one voxel per window only,
    average pooling to all of them, and both read the same window. The result is the *support* of
    the centre voxel's receptive field, which need not fill its bounding box: a two-pathway block
    (1x3x3 next to 3x1x1 kernels) reaches a cross, a 3x3x3 block a full cube. A ReLU that happens
    to be off all along the border of the field hides part of it (likely only in very narrow nets,
    e.g. an attention module with a 1-channel hidden layer): measure with a few channels per level.

    Parameters
    ----------
    model
        Any net mapping ``(1, C, *spatial)`` to ``(1, K, *spatial)`` (same padding).
    input_shape
        ``(1, C, *spatial)``.

    Returns
    -------
    Tensor
        Boolean ``spatial``-shaped mask on the model's device.

    Examples
    --------
    >>> conv = nn.Conv3d(1, 1, (3, 1, 1), padding=(1, 0, 0))
    >>> int(gradient_support(conv, (1, 1, 5, 5, 5)).sum())  # three voxels along D
    3
    """
    probe = copy.deepcopy(model).double().eval()
    for name, module in list(probe.named_modules()):
        if isinstance(module, nn.MaxPool3d | nn.MaxPool2d):
            pool = (nn.AvgPool2d, nn.AvgPool3d)[isinstance(module, nn.MaxPool3d)]
            parent = probe.get_submodule(name.rpartition(".")[0]) if "." in name else probe
            window = (module.kernel_size, module.stride)
            setattr(parent, name.rpartition(".")[2], pool(*window))  # type: ignore[arg-type]
    device = next(probe.parameters()).device
    x = torch.randn(*input_shape, dtype=torch.float64, device=device, requires_grad=True)
    out = probe(x)
    centre = tuple(s // 2 for s in out.shape[2:])
    (grad,) = torch.autograd.grad(out[(0, slice(None), *centre)].sum(), x)
    return grad[0].abs().sum(0) != 0


def receptive_field_by_gradient(model: nn.Module, input_shape: Sequence[int]) -> tuple[int, ...]:
    """Measure the receptive field of the centre output voxel: the bounding box of its
    :func:`gradient_support`, in voxels per axis.

    Checks :func:`unet_receptive_field` independently of how the net is built.

    Parameters
    ----------
    model
        Any net mapping ``(1, C, *spatial)`` to ``(1, K, *spatial)`` (same padding).
    input_shape
        ``(1, C, *spatial)``, larger than the field on every axis.

    Raises
    ------
    ValueError
        If the field reaches the border of the input (it could be larger than measured).
    """
    reached = gradient_support(model, input_shape)
    extent = []
    for axis in range(reached.ndim):
        other = tuple(a for a in range(reached.ndim) if a != axis)
        hit = torch.nonzero(reached.any(dim=other)).flatten()
        if hit[0] == 0 or hit[-1] == reached.shape[axis] - 1:
            raise ValueError(
                f"input_shape {tuple(input_shape)} is too small: the receptive field reaches the "
                f"border on spatial axis {axis}"
            )
        extent.append(int(hit[-1] - hit[0]) + 1)
    return tuple(extent)


class UNet25D(nn.Module):
    """2.5D U-Net with spatial attention (see the module docstring).

    Parameters
    ----------
    in_channels
        Input channels (1 for the paper's T2 images; more for multi-parametric MR).
    num_classes
        Output channels (logits).
    base_channels
        Channels of level 1 (16 in the paper); level ``l`` has ``base_channels * 2**(l - 1)``.
    depth
        Number of poolings, 4 in the paper (5 resolution levels), as ``depth`` in every model.
    levels_2d
        How many of the first levels use 1x3x3 kernels and 1x2x2 pooling (2 in the paper;
        ``depth + 1`` for the 2D baseline, 0 for the 3D one).
    attention
        Add a spatial attention module to every decoder level (levels ``1 .. depth``).

    Input ``(N, in_channels, D, H, W)``: ``D`` must be a multiple of ``size_divisor[0]``
    (``2**(depth - levels_2d)`` when ``levels_2d <= depth``), ``H`` and ``W`` of ``2**depth``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        base_channels: int = 16,
        depth: int = 4,
        levels_2d: int = 2,
        *,
        attention: bool = True,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("num_classes", num_classes)
        check_int("base_channels (the attention's hidden layer has half)", base_channels, 2)
        check_int("depth", depth)
        check_int(f"levels_2d (of depth + 1 = {depth + 1} levels)", levels_2d, 0, depth + 1)
        levels = depth + 1
        self.in_channels, self.num_classes = in_channels, num_classes
        self.depth, self.levels_2d, self.attention = depth, levels_2d, attention
        self.kernels = [KERNEL_2D if lv < levels_2d else KERNEL_3D for lv in range(levels)]
        self.pools = [POOL_2D if lv < levels_2d else POOL_3D for lv in range(levels - 1)]
        widths = [base_channels * 2**lv for lv in range(levels)]

        self.encoder = nn.ModuleList(
            DoubleConv(c_in, c_out, kernel_size=k, **BLOCK_OPTIONS)  # type: ignore[arg-type]
            for c_in, c_out, k in zip(
                [in_channels, *widths[:-1]], widths, self.kernels, strict=True
            )
        )
        self.down = nn.ModuleList(nn.MaxPool3d(p, stride=p) for p in self.pools)
        # decoder level l (finest first): undo pooling l, concatenate skip l, block, attention
        self.up = nn.ModuleList(
            nn.ConvTranspose3d(widths[lv + 1], widths[lv], p, stride=p)
            for lv, p in enumerate(self.pools)
        )
        self.decoder = nn.ModuleList(
            DoubleConv(2 * widths[lv], widths[lv], kernel_size=self.kernels[lv], **BLOCK_OPTIONS)  # type: ignore[arg-type]
            for lv in range(levels - 1)
        )
        self.spatial_attention = nn.ModuleList(
            SpatialAttention(widths[lv], self.kernels[lv]) for lv in range(levels - 1) if attention
        )
        self.head = nn.Conv3d(widths[0], num_classes, kernel_size=1)
        init_gaussian_(self)

    @property
    def size_divisor(self) -> tuple[int, int, int]:
        """What ``(D, H, W)`` of an input must be multiples of (the product of the poolings)."""
        return tuple(math.prod(p[a] for p in self.pools) for a in range(3))  # type: ignore[return-value]

    @property
    def receptive_field(self) -> tuple[int, int, int]:
        """Voxels ``(D, H, W)`` that can influence one output voxel (multiply by the spacing for
        mm); see :func:`unet_receptive_field`."""
        extra = 2 if self.attention else 0
        return unet_receptive_field(self.kernels, self.pools, decoder_extra_convs=extra)  # type: ignore[return-value]

    def forward(
        self, x: Tensor, *, return_auxiliary: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Logits ``(N, num_classes, D, H, W)``; with ``return_auxiliary`` the attention logits too.

        The package's convention for auxiliary outputs: ``(logits, [z_1, ..., z_depth])``, finest
        first, ``z_l`` of shape ``(N, 1, *spatial_l)`` the logit of attention map
        ``A_l = torch.sigmoid(z_l)``, for the multi-scale attention loss
        (:func:`course_lib.losses.attention_loss`, which takes logits like every loss;
        ``fit(..., auxiliary=True)`` hands both to the loss function). Nothing is kept on the
        module.
        """
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (N, {self.in_channels}, D, H, W), got {tuple(x.shape)}"
            )
        if any(s % d for s, d in zip(x.shape[2:], self.size_divisor, strict=True)):
            raise ValueError(
                f"x's (D, H, W) = {tuple(x.shape[2:])} must be multiples of {self.size_divisor} "
                f"(depth={self.depth}, levels_2d={self.levels_2d})"
            )
        if return_auxiliary and not self.attention:
            raise ValueError("return_auxiliary=True needs a net built with attention=True")
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x)
            if level < self.depth:
                skips.append(x)
                x = self.down[level](x)
        attention_logits: list[Tensor] = []
        for level in reversed(range(self.depth)):
            x = self.decoder[level](torch.cat([skips[level], self.up[level](x)], dim=1))
            if self.attention:
                x, z = self.spatial_attention[level](x)
                attention_logits.insert(0, z)
        logits = self.head(x)
        return (logits, attention_logits) if return_auxiliary else logits
