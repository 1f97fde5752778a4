"""The generic U-Net nnU-Net builds from a plan (``PlainConvUNet``), and its deep supervision.

Per encoder stage: ``n_conv`` x (conv -> instance norm -> leaky ReLU), the first conv strided
(stride = the plan's pooling step, so no max-pooling); kernels are 3 along fine axes and 1 along
axes the planner found too coarse. Per decoder stage: a transposed conv (kernel = stride) up,
concatenation with the skip, ``n_conv`` conv blocks, and a 1x1 segmentation head. Deep
supervision follows the package's convention for auxiliary outputs: ``net(x)`` gives the logits,
``net(x, return_auxiliary=True)`` gives ``(logits, [coarser logits, ...])``, finest first.

Why instance norm: nnU-Net trains with batches of 2; batch-norm statistics over 2 samples are
noise, instance norm normalizes each sample on its own (the notes' argument, measured in chapter
06). Leaky ReLU (slope 0.01) keeps a gradient for negative inputs.

References
----------
Isensee et al., Nature Methods 2021, online methods "network topology"; dynamic-network-
architectures 0.4.4 ``PlainConvUNet`` (what nnunetv2 2.8.1 instantiates).

Examples
--------
>>> import torch
>>> net = PlainConvUNet(1, 3, (8, 16, 32), ((3, 3),) * 3, ((1, 1), (2, 2), (2, 2)))
>>> logits, auxiliary = net(torch.zeros(2, 1, 16, 16), return_auxiliary=True)
>>> tuple(logits.shape), [tuple(a.shape) for a in auxiliary]
((2, 3, 16, 16), [(2, 3, 8, 8)])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from course_lib.blocks.conv import ConvNormAct, conv_layer, conv_transpose_layer
from course_lib.ops.checks import check_int

HE_NEG_SLOPE = 1e-2  # nnU-Net's InitWeights_He(1e-2)


CONV_OPTIONS: dict[str, Any] = {
    "padding": "same",
    "norm": "instance",
    "activation": "leaky_relu",
    "bias": True,
}
"""conv -> instance norm -> leaky ReLU; nnU-Net keeps the conv's bias although the norm follows."""


def _stage(
    n_conv: int, in_ch: int, out_ch: int, kernel: Sequence[int], stride: Sequence[int]
) -> nn.Sequential:
    options: dict[str, Any] = dict(spatial_dims=len(kernel), kernel_size=tuple(kernel))
    return nn.Sequential(
        ConvNormAct(in_ch, out_ch, stride=tuple(stride), **options, **CONV_OPTIONS),
        *[ConvNormAct(out_ch, out_ch, **options, **CONV_OPTIONS) for _ in range(n_conv - 1)],
    )


class PlainConvUNet(nn.Module):
    """nnU-Net's plain U-Net for 2D or 3D input, shaped by a plan.

    Parameters
    ----------
    in_channels, num_classes
        Image channels in; classes out (background included).
    features
        Features per stage (``32 * 2**s`` capped at 320 / 512 in nnU-Net's plans).
    kernel_sizes, strides
        One entry per stage; ``strides[0]`` is all ones.
    n_conv_per_stage
        Convs per encoder and per decoder stage (2).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        features: Sequence[int],
        kernel_sizes: Sequence[Sequence[int]],
        strides: Sequence[Sequence[int]],
        n_conv_per_stage: int = 2,
    ) -> None:
        super().__init__()
        n = len(features)
        if not (n >= 2 and len(kernel_sizes) == n and len(strides) == n):
            raise ValueError(
                "features, kernel_sizes and strides need one entry per stage (>= 2 stages), got "
                f"{len(features)}, {len(kernel_sizes)} and {len(strides)}"
            )
        dim = len(kernel_sizes[0])
        self.strides = [tuple(s) for s in strides]
        chans = [in_channels, *features]
        self.encoder = nn.ModuleList(
            _stage(n_conv_per_stage, chans[s], chans[s + 1], kernel_sizes[s], strides[s])
            for s in range(n)
        )
        # decoder stages ordered as computed: from just above the bottleneck up to full resolution
        up_stages = range(n - 2, -1, -1)
        self.transpconvs = nn.ModuleList(
            conv_transpose_layer(dim)(
                features[s + 1], features[s], strides[s + 1], strides[s + 1], bias=True
            )
            for s in up_stages
        )
        self.decoder = nn.ModuleList(
            _stage(n_conv_per_stage, 2 * features[s], features[s], kernel_sizes[s], (1,) * dim)
            for s in up_stages
        )
        self.seg_layers = nn.ModuleList(
            conv_layer(dim)(features[s], num_classes, 1, 1, 0, bias=True) for s in up_stages
        )
        self.apply(_init_he)

    def forward(
        self, x: torch.Tensor, *, return_auxiliary: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits at full resolution; with ``return_auxiliary`` also the deep-supervision outputs
        of the coarser decoder stages, finest first (nnU-Net's loss weights them 1/2^i)."""
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = skips.pop()
        outputs = []
        last = len(self.decoder) - 1
        for i, (up, stage, head) in enumerate(
            zip(self.transpconvs, self.decoder, self.seg_layers, strict=True)
        ):
            x = stage(torch.cat([up(x), skips.pop()], dim=1))
            if return_auxiliary or i == last:
                outputs.append(head(x))
        outputs.reverse()  # highest resolution first, as nnU-Net's losses expect
        return (outputs[0], outputs[1:]) if return_auxiliary else outputs[0]


def _init_he(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        nn.init.kaiming_normal_(module.weight, a=HE_NEG_SLOPE)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_network(
    plans: Mapping[str, Any],
    configuration: str,
    in_channels: int,
    num_classes: int,
    *,
    features_scale: float = 1.0,
) -> PlainConvUNet:
    """The U-Net of ``plans["configurations"][configuration]``.

    ``features_scale`` shrinks every stage's width (e.g. ``0.25`` gives 8, 16, ... instead of
    32, 64, ...) so the course can train the planned topology on a CPU; 1.0 is nnU-Net's net.
    """
    configs = plans["configurations"]
    if configuration not in configs:
        raise ValueError(f"configuration {configuration!r} not in the plans: {sorted(configs)}")
    config = configs[configuration]
    if "inherits_from" in config:
        config = {**configs[config["inherits_from"]], **config}
    if not 0 < features_scale <= 1:
        raise ValueError(f"features_scale must be in (0, 1], got {features_scale}")
    arch = config["architecture"]["arch_kwargs"]
    features = [max(1, round(f * features_scale)) for f in arch["features_per_stage"]]
    return PlainConvUNet(
        in_channels,
        num_classes,
        features,
        arch["kernel_sizes"],
        arch["strides"],
        n_conv_per_stage=arch["n_conv_per_stage"][0],
    )


def deep_supervision_weights(n_outputs: int) -> torch.Tensor:
    """nnU-Net's loss weights for ``n_outputs`` deep-supervision outputs (highest resolution first).

    ``w_i = 1 / 2**i``, the lowest-resolution output gets 0, then normalized to sum 1.

    Examples
    --------
    >>> [round(w, 3) for w in deep_supervision_weights(5).tolist()]
    [0.533, 0.267, 0.133, 0.067, 0.0]
    """
    check_int("n_outputs", n_outputs)
    w = torch.tensor([1 / 2**i for i in range(n_outputs)], dtype=torch.float64)
    if n_outputs > 1:
        w[-1] = 0
    return (w / w.sum()).float()
