"""Graded exercises of chapter 08, the 2.5D U-Net: its receptive field in millimetres per axis,
the spatial attention module, and the hardness-weighted Dice loss.

The references are the package's: ``UNet25D.receptive_field`` of a net built on the meta device,
``blocks.SpatialAttention`` with the given weights loaded, ``losses.hardness_weighted_dice_loss``;
the chapter's solutions write each from its formula.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import torch
import torch.nn.functional as F

from course_lib import losses
from course_lib.blocks.spatial_attention import SpatialAttention
from course_lib.classroom.exercise import Case, Exercise, Mistake, register
from course_lib.models.unet25d import KERNEL_2D, KERNEL_3D, POOL_2D, POOL_3D, UNet25D
from course_lib.models.unet25d import unet_receptive_field as _field

Tensor = torch.Tensor
Spacing = tuple[float, float, float]
CHAPTER = "08_unet25d_attention"


# --- 1. The receptive field in millimetres --------------------------------------------------------


@cache
def _net_field(levels_2d: int, depth: int, attention: bool) -> tuple[int, ...]:
    """The receptive field in voxels of a narrow ``UNet25D`` (built once per configuration, without
    touching the caller's random state)."""
    with torch.random.fork_rng(devices=[]):
        net = UNet25D(1, 2, base_channels=2, depth=depth, levels_2d=levels_2d, attention=attention)
    return net.receptive_field


def receptive_field_mm_reference(
    levels_2d: int, depth: int, spacing: Spacing, attention: bool = True
) -> tuple[float, ...]:
    """``UNet25D(levels_2d=..., depth=..., attention=...).receptive_field`` times the spacing."""
    voxels = _net_field(levels_2d, depth, attention)
    return tuple(float(v * s) for v, s in zip(voxels, spacing, strict=True))


def _encoder_field(
    kernels: Sequence[Sequence[int]], pools: Sequence[Sequence[int]]
) -> tuple[int, ...]:
    """The field at the bottom of the U: two convolutions per level, then its pooling."""
    field, jump = [1, 1, 1], [1, 1, 1]
    for kernel, pool in zip(kernels, [*pools, (1, 1, 1)], strict=True):
        for a in range(3):
            field[a] += 2 * (kernel[a] - 1) * jump[a] + (pool[a] - 1) * jump[a]
            jump[a] *= pool[a]
    return tuple(field)


def _field_mm(
    first_3d: Callable[[int], int] = lambda levels_2d: levels_2d,
    pool_2d: tuple[int, ...] = POOL_2D,
    decoder: bool = True,
    attention_convs: int = 2,
    spacing_of: Callable[[Spacing], Sequence[float]] = lambda s: s,
) -> Callable[..., tuple[float, ...]]:
    """The receptive field in mm with one step changed, for the known mistakes."""

    def receptive_field_mm(
        levels_2d: int, depth: int, spacing: Spacing, attention: bool = True
    ) -> tuple[float, ...]:
        start = first_3d(levels_2d)
        kernels = [KERNEL_2D if lv < start else KERNEL_3D for lv in range(depth + 1)]
        pools = [pool_2d if lv < start else POOL_3D for lv in range(depth)]
        if decoder:
            voxels = _field(kernels, pools, decoder_extra_convs=attention_convs * attention)
        else:
            voxels = _encoder_field(kernels, pools)
        return tuple(float(v * s) for v, s in zip(voxels, spacing_of(spacing), strict=True))

    return receptive_field_mm


FIELD_MISTAKES = (
    Mistake(
        "stops at the bottom of the U: the synthesis path's convolutions widen the field too, "
        "two per level with the level's kernel, at the resolution of that level",
        _field_mm(decoder=False),
    ),
    Mistake(
        "leaves out the spatial attention modules: each holds two convolutions with the level's "
        "kernel, which widen the field like the decoder's own two",
        _field_mm(attention_convs=0),
    ),
    Mistake(
        "pools the 2D levels across slices too: their pooling is 1x2x2, it halves H and W and "
        "keeps every slice",
        _field_mm(pool_2d=POOL_3D),
    ),
    Mistake(
        "makes one level too many 2D: levels 1 .. levels_2d (indices 0 .. levels_2d - 1) use "
        "1x3x3 kernels and 1x2x2 pooling, the others 3x3x3 and 2x2x2",
        _field_mm(first_3d=lambda levels_2d: levels_2d + 1),
    ),
    Mistake(
        "is in voxels: multiply each axis by its spacing to get millimetres",
        _field_mm(spacing_of=lambda s: (1.0, 1.0, 1.0)),
    ),
    Mistake(
        "multiplies by the spacing in reverse order: the axes are (D, H, W) and so is the "
        "spacing, slice spacing first",
        _field_mm(spacing_of=lambda s: s[::-1]),
    ),
)


def _field_public() -> list[Case]:
    spacing = (1.5, 0.4, 0.4)
    return [
        Case("the paper's 2.5D net: levels_2d=2, depth=4, spacing (1.5, 0.4, 0.4)", 2, 4, spacing),
        Case("levels_2d=1, depth=2, spacing (1.5, 0.4, 0.4)", 1, 2, spacing),
        Case(
            "levels_2d=2, depth=4, without attention, spacing (1.5, 0.4, 0.4)",
            2,
            4,
            spacing,
            attention=False,
        ),
    ]


def _field_hidden(gen: torch.Generator) -> list[Case]:
    inplane = 0.3 + 0.6 * float(torch.rand((), generator=gen))
    thick = inplane * (2.5 + 3 * float(torch.rand((), generator=gen)))
    spacing = (round(thick, 3), round(inplane, 3), round(inplane, 3))
    depth = int(torch.randint(2, 5, (), generator=gen))
    levels = int(torch.randint(1, depth, (), generator=gen))
    return [
        Case(f"levels_2d={levels}, depth={depth}, spacing {spacing}", levels, depth, spacing),
        Case(
            f"levels_2d={levels}, depth={depth}, no attention, spacing {spacing}",
            levels,
            depth,
            spacing,
            attention=False,
        ),
    ]


RECEPTIVE_FIELD_MM = Exercise(
    name="receptive_field_mm",
    chapter=CHAPTER,
    number=1,
    task=(
        "write receptive_field_mm(levels_2d, depth, spacing, attention=True): the receptive "
        "field of the 2.5D U-Net's output voxel in mm per axis (D, H, W), with two convolutions "
        "per encoder and decoder block, 1x3x3 kernels and 1x2x2 pooling in the first levels_2d "
        "levels, 3x3x3 and 2x2x2 in the others, and two more convolutions per decoder level for "
        "spatial attention."
    ),
    points=2,
    reference=receptive_field_mm_reference,
    public_cases=_field_public,
    hidden_cases=_field_hidden,
    mistakes=FIELD_MISTAKES,
)


# --- 2. The spatial attention module --------------------------------------------------------------


def spatial_attention_reference(
    x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor
) -> tuple[Tensor, Tensor]:
    """``blocks.SpatialAttention`` with the given weights: ``(x * (1 + A), A)``, the map
    ``A = sigmoid(z)`` from the logit ``z`` the module returns."""
    module = SpatialAttention(x.shape[1], tuple(w1.shape[2:])).to(x.dtype)
    with torch.no_grad():
        for param, value in zip(
            (*module.conv1.parameters(), *module.conv2.parameters()), (w1, b1, w2, b2), strict=True
        ):
            param.copy_(value)
        y, logit = module(x)
    return y, torch.sigmoid(logit)


def _attention(
    squash: Callable[[Tensor], Tensor] = torch.sigmoid,
    hidden: Callable[[Tensor], Tensor] = torch.relu,
    combine: Callable[[Tensor, Tensor], Tensor] = lambda x, a: x * (1 + a),
) -> Callable[..., tuple[Tensor, Tensor]]:
    """Spatial attention with one step changed, for the known mistakes."""

    def spatial_attention(
        x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor
    ) -> tuple[Tensor, Tensor]:
        padding = tuple(k // 2 for k in w1.shape[2:])
        h = hidden(F.conv3d(x, w1, b1, padding=padding))
        attention = squash(F.conv3d(h, w2, b2, padding=padding))
        return combine(x, attention), attention

    return spatial_attention


def _softmax_over_voxels(logits: Tensor) -> Tensor:
    return logits.flatten(2).softmax(-1).view_as(logits)


ATTENTION_MISTAKES = (
    Mistake(
        "has no residual connection: y = x * A switches the features off where A is near 0; the "
        "module adds them back, y = x * A + x",
        _attention(combine=lambda x, a: x * a),
    ),
    Mistake(
        "adds the map to the features (x + A): the map multiplies them, y = x * A + x",
        _attention(combine=lambda x, a: x + a),
    ),
    Mistake(
        "takes a softmax over the voxels: each voxel's coefficient is a sigmoid of its own "
        "score, in [0, 1] independently of the others",
        _attention(squash=_softmax_over_voxels),
    ),
    Mistake(
        "has no ReLU between the two convolutions: A = sigmoid(conv2(relu(conv1(x))))",
        _attention(hidden=lambda h: h),
    ),
)


def _attention_inputs(
    gen: torch.Generator, channels: int, shape: tuple[int, int, int], kernel: tuple[int, int, int]
) -> tuple[Tensor, ...]:
    def randn(*size: int) -> Tensor:
        return torch.randn(*size, generator=gen, dtype=torch.float64)

    x = randn(1, channels, *shape)
    return (
        x,
        randn(channels // 2, channels, *kernel) / 2,
        randn(channels // 2),
        randn(1, channels // 2, *kernel),
        randn(1),
    )


def _attention_public() -> list[Case]:
    gen = torch.Generator().manual_seed(8)
    return [
        Case(
            "4 channels on a 2 x 5 x 5 patch, 1x3x3 kernels (a 2D level)",
            *_attention_inputs(gen, 4, (2, 5, 5), KERNEL_2D),
        ),
        Case(
            "6 channels on a 3 x 4 x 4 patch, 3x3x3 kernels (a 3D level)",
            *_attention_inputs(gen, 6, (3, 4, 4), KERNEL_3D),
        ),
    ]


def _attention_hidden(gen: torch.Generator) -> list[Case]:
    return [
        Case(
            "8 random channels on a 3 x 6 x 6 patch, 1x3x3 kernels",
            *_attention_inputs(gen, 8, (3, 6, 6), KERNEL_2D),
        ),
        Case(
            "4 random channels on a 4 x 4 x 4 patch, 3x3x3 kernels",
            *_attention_inputs(gen, 4, (4, 4, 4), KERNEL_3D),
        ),
    ]


SPATIAL_ATTENTION = Exercise(
    name="spatial_attention",
    chapter=CHAPTER,
    number=2,
    task=(
        "write spatial_attention(x, w1, b1, w2, b2) returning (y, A): the map "
        "A = sigmoid(conv2(relu(conv1(x)))) from two 3D convolutions with 'same' padding (weights "
        "w1, w2, biases b1, b2), and the features y = x * A + x."
    ),
    points=2,
    reference=spatial_attention_reference,
    public_cases=_attention_public,
    hidden_cases=_attention_hidden,
    mistakes=ATTENTION_MISTAKES,
)


# --- 3. The hardness-weighted Dice loss -----------------------------------------------------------

EPS = 1e-5
"""The smoothing term of the exercise's loss, in the numerator and the denominator."""


def hardness_dice_loss_reference(p: Tensor, g: Tensor, lam: float) -> Tensor:
    """By ``losses.hardness_weighted_dice_loss`` on one foreground channel of probabilities."""
    return losses.hardness_weighted_dice_loss(
        p.reshape(1, 1, 1, -1),
        g.reshape(1, 1, 1, -1).to(p.dtype),
        hardness_lambda=lam,
        activation="none",
        smooth_nr=EPS,
        smooth_dr=EPS,
    )


def _hardness(
    weight: Callable[[Tensor, Tensor, float], Tensor] = lambda p, g, lam: (
        lam * (p - g).abs() + (1 - lam)
    ),
    in_numerator: bool = True,
    in_denominator: bool = True,
    loss: bool = True,
) -> Callable[[Tensor, Tensor, float], Tensor]:
    """Hardness-weighted Dice losses with one step changed, for the known mistakes."""

    def hardness_dice_loss(p: Tensor, g: Tensor, lam: float) -> Tensor:
        w = weight(p, g, lam)
        numerator = 2 * ((w if in_numerator else 1) * p * g).sum() + EPS
        denominator = ((w if in_denominator else 1) * (p + g)).sum() + EPS
        dice = numerator / denominator
        return 1 - dice if loss else dice

    return hardness_dice_loss


HARDNESS_MISTAKES = (
    Mistake(
        "uses the authors' code form λ + (1 - λ)|p - g|; the paper's weight, which the chapter "
        "uses, is λ|p - g| + (1 - λ) (the two agree only at λ = 0.5)",
        _hardness(weight=lambda p, g, lam: lam + (1 - lam) * (p - g).abs()),
    ),
    Mistake(
        "weighs by λ|p - g| alone: without the 1 - λ term a perfectly predicted voxel weighs 0, "
        "and λ = 0 weighs every voxel 0 instead of giving the plain Dice loss",
        _hardness(weight=lambda p, g, lam: lam * (p - g).abs()),
    ),
    Mistake(
        "weighs only the numerator: w_i goes into both sums, 2 Σ w p g and Σ w (p + g)",
        _hardness(in_denominator=False),
    ),
    Mistake(
        "weighs only the denominator: w_i goes into both sums, 2 Σ w p g and Σ w (p + g)",
        _hardness(in_numerator=False),
    ),
    Mistake(
        "returns the weighted Dice coefficient; the loss is 1 minus it",
        _hardness(loss=False),
    ),
)

_HARD_P = torch.tensor([0.9, 0.8, 0.2, 0.6, 0.1, 0.7, 0.05, 0.3], dtype=torch.float64)
_HARD_G = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)


def _hardness_public() -> list[Case]:
    return [
        Case("eight voxels, λ = 0.6", _HARD_P, _HARD_G, 0.6),
        Case("the same voxels, λ = 0.9", _HARD_P, _HARD_G, 0.9),
        Case("the same voxels, λ = 0 (the plain Dice loss)", _HARD_P, _HARD_G, 0.0),
    ]


def _hardness_hidden(gen: torch.Generator) -> list[Case]:
    p = torch.rand(4, 5, 6, generator=gen, dtype=torch.float64)
    g = (torch.rand(4, 5, 6, generator=gen) > 0.7).double()
    g[0, 0, 0] = 1.0
    lam = round(0.2 + 0.25 * float(torch.rand((), generator=gen)), 3)  # away from 0.5
    return [
        Case(f"a random 4 x 5 x 6 volume, λ = {lam}", p, g, lam),
        Case("the same volume, λ = 0", p, g, 0.0),
    ]


HARDNESS_DICE_LOSS = Exercise(
    name="hardness_dice_loss",
    chapter=CHAPTER,
    number=3,
    task=(
        "write hardness_dice_loss(p, g, lam): 1 - (2 Σ w p g + ε) / (Σ w (p + g) + ε) with "
        "ε = 1e-5 and the hardness weight w = λ|p - g| + (1 - λ) of every voxel."
    ),
    points=2,
    reference=hardness_dice_loss_reference,
    public_cases=_hardness_public,
    hidden_cases=_hardness_hidden,
    mistakes=HARDNESS_MISTAKES,
)

register(RECEPTIVE_FIELD_MM, SPATIAL_ATTENTION, HARDNESS_DICE_LOSS)
