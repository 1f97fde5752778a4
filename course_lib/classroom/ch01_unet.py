"""Graded exercises of chapter 01, U-Net: the output size of valid convolutions, mirror padding,
crop-and-concatenate, and the weight map.

The references are the package's (``UNet.output_shape``, ``inference.tiling.mirror_pad``,
``data.unet_weight_map``) or the same operation written another way (cropping by negative padding);
each mistake is one students make, or that same-padded U-Net code makes when it is read for the
paper's net.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from course_lib import data, metrics
from course_lib.classroom.exercise import Case, Exercise, Mistake, register
from course_lib.inference.tiling import mirror_pad
from course_lib.models.unet import UNet

Tensor = torch.Tensor
CHAPTER = "01_unet"


# --- 1. The output size of a valid U-Net ----------------------------------------------------------


def unet_output_size_reference(size: int, depth: int) -> int:
    """The output side of the paper's U-Net of ``depth`` poolings, by ``UNet.output_shape``."""
    with torch.device("meta"):
        net = UNet(1, 2, base_channels=1, depth=depth)
    return net.output_shape((size,))[0]


def _output_size(
    block_loss: int = 4,
    bottom: bool = True,
    expanding_convs: bool = True,
    up_loss: int = 0,
) -> Callable[[int, int], int]:
    """The size walk of the module docstring of ``models._shapes``, with one step changed."""

    def size_after(size: int, depth: int) -> int:
        s = size
        for _ in range(depth):
            s = (s - block_loss) // 2
        s -= block_loss if bottom else 0
        for _ in range(depth):
            s = 2 * s - up_loss - (block_loss if expanding_convs else 0)
        return s

    return size_after


OUTPUT_SIZE_MISTAKES = (
    Mistake(
        "trims 2 pixels per block: a valid 3x3 convolution loses one pixel on each side, 2 per "
        "axis, so a block of two convolutions trims 4",
        _output_size(block_loss=2),
    ),
    Mistake(
        "forgets the convolutions of the expanding path: after each 2x2 up-convolution come two "
        "valid 3x3 convolutions, which trim 4 pixels again",
        _output_size(expanding_convs=False),
    ),
    Mistake(
        "forgets the bottom block: after the last pooling come two valid 3x3 convolutions (the "
        "1024-channel block of the paper) before the first up-convolution",
        _output_size(bottom=False),
    ),
    Mistake(
        "treats the 2x2 up-convolution as a valid convolution that trims a pixel; a transposed "
        "convolution with kernel 2 and stride 2 exactly doubles the size",
        _output_size(up_loss=1),
    ),
    Mistake(
        "ignores the pooling: it subtracts 4 pixels per block from the input, but a pixel lost "
        "at a deep level counts 2**level times at the output's resolution, and pooling halves "
        "the size",
        lambda size, depth: size - 4 * (2 * depth + 1),
    ),
    Mistake(
        "keeps the input size, as a same-padded U-Net does; the paper's convolutions are "
        "unpadded (valid), so the output is smaller than the input",
        lambda size, depth: size,
    ),
)


def _output_size_public() -> list[Case]:
    return [
        Case("the paper's net: a 572 px tile, depth 4", 572, 4),
        Case("the chapter's demo net: a 140 px tile, depth 3", 140, 3),
        Case("a 92 px tile, depth 2", 92, 2),
    ]


def _valid_size(gen: torch.Generator, depth: int) -> int:
    with torch.device("meta"):
        net = UNet(1, 2, base_channels=1, depth=depth)
    return net.valid_input_shape((int(torch.randint(60, 700, (), generator=gen)),))[0]


def _output_size_hidden(gen: torch.Generator) -> list[Case]:
    cases = []
    for depth in (1, int(torch.randint(2, 4, (), generator=gen)), 5):
        size = _valid_size(gen, depth)
        cases.append(Case(f"a {size} px tile, depth {depth}", size, depth))
    return cases


UNET_OUTPUT_SIZE = Exercise(
    name="unet_output_size",
    chapter=CHAPTER,
    number=1,
    task=(
        "write unet_output_size(size, depth): the output side of the paper's U-Net (two valid "
        "3x3 convolutions per block, 2x2 max-pooling, 2x2 up-convolutions) with depth poolings, "
        "for a valid input side size."
    ),
    points=1,
    reference=unet_output_size_reference,
    public_cases=_output_size_public,
    hidden_cases=_output_size_hidden,
    mistakes=OUTPUT_SIZE_MISTAKES,
)


# --- 2. Mirror padding ----------------------------------------------------------------------------


def mirror_border_reference(x: Tensor, margin: int) -> Tensor:
    """``x`` (H, W) mirrored by ``margin`` pixels on every side, by ``tiling.mirror_pad``."""
    return mirror_pad(x[None, None], (margin, margin), (margin, margin))[0, 0]


def _padded(mode: str) -> Callable[[Tensor, int], Tensor]:
    def pad(x: Tensor, margin: int) -> Tensor:
        return F.pad(x[None, None], (margin,) * 4, mode=mode)[0, 0]

    return pad


def _symmetric(x: Tensor, margin: int) -> Tensor:
    """Mirrored with the edge pixel repeated (NumPy's "symmetric")."""
    rows = torch.cat([x[:margin].flip(0), x, x[-margin:].flip(0)], 0)
    return torch.cat([rows[:, :margin].flip(1), rows, rows[:, -margin:].flip(1)], 1)


MIRROR_MISTAKES = (
    Mistake(
        "repeats the edge pixel: the mirror axis is the edge pixel itself, so the pixel next to "
        "the border is x[1], not x[0] (PyTorch's and NumPy's 'reflect', not 'symmetric')",
        _symmetric,
    ),
    Mistake(
        "pads with zeros: the paper extrapolates the missing context by mirroring the image, so "
        "that the net sees image-like context at the border, not a black frame",
        _padded("constant"),
    ),
    Mistake(
        "copies the edge pixel outwards ('replicate'); the paper mirrors the image at its border",
        _padded("replicate"),
    ),
    Mistake(
        "wraps around ('circular'): the pixels beyond the left edge come from the right edge, far "
        "away in the image; mirroring takes them from next to the edge",
        _padded("circular"),
    ),
)


def _mirror_public() -> list[Case]:
    return [
        Case(
            "a 4 x 5 image (pixel value 10 row + column), margin 2",
            (10 * torch.arange(4.0)[:, None] + torch.arange(5.0)),
            2,
        ),
        Case(
            "a 6 x 7 image, margin 3",
            torch.arange(42.0).reshape(6, 7),
            3,
        ),
    ]


def _mirror_hidden(gen: torch.Generator) -> list[Case]:
    h, w = (int(torch.randint(5, 9, (), generator=gen)) for _ in range(2))
    margin = int(torch.randint(2, min(h, w), (), generator=gen))
    image = torch.rand(h, w, generator=gen, dtype=torch.float64)
    return [Case(f"a random {h} x {w} image, margin {margin}", image, margin)]


MIRROR_BORDER = Exercise(
    name="mirror_border",
    chapter=CHAPTER,
    number=2,
    task=(
        "write mirror_border(x, margin): the (H, W) image x extended by margin pixels on every "
        "side by mirroring it at its border, the edge pixel not repeated (margin < min(H, W))."
    ),
    points=1,
    reference=mirror_border_reference,
    public_cases=_mirror_public,
    hidden_cases=_mirror_hidden,
    mistakes=MIRROR_MISTAKES,
)


# --- 3. Crop and concatenate ----------------------------------------------------------------------


def crop_and_concat_reference(skip: Tensor, up: Tensor) -> Tensor:
    """The centre of ``skip`` (cut by negative padding) and ``up``, concatenated on channels."""
    dh, dw = (s - u for s, u in zip(skip.shape[2:], up.shape[2:], strict=True))
    cropped = F.pad(skip, (-(dw // 2), -(dw - dw // 2), -(dh // 2), -(dh - dh // 2)))
    return torch.cat([cropped, up], dim=1)


def _corner(skip: Tensor, up: Tensor) -> Tensor:
    h, w = up.shape[2:]
    return torch.cat([skip[..., :h, :w], up], dim=1)


def _up_first(skip: Tensor, up: Tensor) -> Tensor:
    ref = crop_and_concat_reference(skip, up)
    return torch.cat([up, ref[:, : skip.shape[1]]], dim=1)


def _height_margin_on_both_axes(skip: Tensor, up: Tensor) -> Tensor:
    d = (skip.shape[2] - up.shape[2]) // 2
    h, w = up.shape[2:]
    return torch.cat([skip[..., d : d + h, d : d + w], up], dim=1)


def _resized(skip: Tensor, up: Tensor) -> Tensor:
    small = F.interpolate(skip, size=up.shape[2:], mode="bilinear", align_corners=False)
    return torch.cat([small, up], dim=1)


def _padded_up(skip: Tensor, up: Tensor) -> Tensor:
    dh, dw = (s - u for s, u in zip(skip.shape[2:], up.shape[2:], strict=True))
    return torch.cat([skip, F.pad(up, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))], dim=1)


CROP_MISTAKES = (
    Mistake(
        "crops the top-left corner of the skip: the up-sampled map lies in the centre of the "
        "skip's map (the valid convolutions trimmed it equally on both sides), so crop the centre",
        _corner,
    ),
    Mistake(
        "puts the up-sampled features first; the exercise (like course_lib's UpStage) "
        "concatenates the cropped skip first, then the up-sampled features",
        _up_first,
    ),
    Mistake(
        "uses the margin of the height on both axes: compute the margin (skip size - up size) / 2 "
        "of each axis on its own",
        _height_margin_on_both_axes,
    ),
    Mistake(
        "resizes the skip by interpolation: that blurs the high-resolution features the skip "
        "is there to bring; crop its centre instead",
        _resized,
    ),
    Mistake(
        "pads the up-sampled features to the skip's size, as a same-padded U-Net would; in the "
        "valid U-Net the skip is larger, and it is the skip that is cropped",
        _padded_up,
    ),
)


def _crop_public() -> list[Case]:
    skip = torch.arange(2 * 8 * 10, dtype=torch.float32).reshape(1, 2, 8, 10)
    up = -torch.arange(3 * 4 * 4, dtype=torch.float32).reshape(1, 3, 4, 4) - 1
    return [
        Case(
            "a skip of 2 channels, 8 x 10 px, and up-sampled features of 3 channels, 4 x 4 px",
            skip,
            up,
        )
    ]


def _crop_hidden(gen: torch.Generator) -> list[Case]:
    h, w = (2 * int(torch.randint(2, 5, (), generator=gen)) for _ in range(2))
    dh, dw = 2, 4 + 2 * int(torch.randint(0, 3, (), generator=gen))
    skip = torch.randn(2, 3, h + dh, w + dw, generator=gen)
    up = torch.randn(2, 2, h, w, generator=gen)
    return [
        Case(
            f"random features: a skip of {h + dh} x {w + dw} px, up-sampled {h} x {w} px", skip, up
        )
    ]


CROP_AND_CONCAT = Exercise(
    name="crop_and_concat",
    chapter=CHAPTER,
    number=3,
    task=(
        "write crop_and_concat(skip, up): the centre of the skip connection's (N, C1, H1, W1) map "
        "cropped to the (H2, W2) of the up-sampled (N, C2, H2, W2) features, then both "
        "concatenated along the channels, skip first."
    ),
    points=1,
    reference=crop_and_concat_reference,
    public_cases=_crop_public,
    hidden_cases=_crop_hidden,
    mistakes=CROP_MISTAKES,
)


# --- 4. The weight map ----------------------------------------------------------------------------


def weight_map_reference(
    instances: Tensor, w_c: Tensor, w0: float = 10.0, sigma: float = 5.0
) -> Tensor:
    """``w_c + w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` on background, by ``data.unet_weight_map``."""
    border_plus_one = data.unet_weight_map(instances, w0=w0, sigma=sigma, class_weights=None)
    return w_c + border_plus_one - 1


def _d1_d2(instances: Tensor) -> tuple[Tensor, Tensor]:
    """Distances of every pixel to the nearest and second-nearest cell (inf without such)."""
    ids = [int(i) for i in instances.unique() if i > 0]
    dist = torch.stack([metrics.distance_transform_edt(instances != k) for k in ids]).double()
    dist = torch.cat([dist, torch.full((2, *instances.shape), torch.inf, dtype=dist.dtype)])
    d1, d2 = dist.sort(0).values[:2]
    return d1, d2


def _weights(
    combine: Callable[[Tensor, Tensor, float], Tensor],
    w_c: str = "given",
    background_only: bool = True,
) -> Callable[..., Tensor]:
    """Weight maps whose border term is ``w0 exp(-combine(d1, d2, sigma))``, for the mistakes."""

    def weights(instances: Tensor, w_c_map: Tensor, w0: float = 10.0, sigma: float = 5.0) -> Tensor:
        d1, d2 = _d1_d2(instances)
        border = w0 * torch.exp(-combine(d1, d2, sigma))
        if background_only:
            border = torch.where(instances == 0, border, 0.0)
        if w_c == "given":
            return w_c_map.double() + border
        return border + (1.0 if w_c == "one" else 0.0)

    return weights


def _paper(d1: Tensor, d2: Tensor, sigma: float) -> Tensor:
    return (d1 + d2) ** 2 / (2 * sigma**2)


WEIGHT_MAP_MISTAKES = (
    Mistake(
        "lacks the class-balance term w_c: without it every pixel away from the gaps weighs 0, so "
        "the loss ignores the cells and most of the background. w(x) = w_c(x) + the border term",
        _weights(_paper, w_c="none"),
    ),
    Mistake(
        "adds 1 instead of the given w_c: the class-balance map is part of the weight, "
        "w(x) = w_c(x) + w0 exp(...)",
        _weights(_paper, w_c="one"),
    ),
    Mistake(
        "ignores the given w_c and balances the classes itself: add the w_c you are given (a "
        "course may weigh its classes differently, as this check does)",
        lambda instances, w_c, w0=10.0, sigma=5.0: weight_map_reference(
            instances, data.class_balance_weights(instances), w0, sigma
        ),
    ),
    Mistake(
        "puts the border term on the cells too: it belongs to the background pixels only (the "
        "gaps between touching cells that the net must learn to keep open)",
        _weights(_paper, background_only=False),
    ),
    Mistake(
        "uses the nearest cell twice (d2 = d1): d2 is the distance to the second-nearest cell, "
        "which is what makes the term large only between two cells",
        _weights(lambda d1, d2, sigma: (2 * d1) ** 2 / (2 * sigma**2)),
    ),
    Mistake(
        "squares the distances one by one, d1² + d2²: the paper squares their sum, (d1 + d2)²",
        _weights(lambda d1, d2, sigma: (d1**2 + d2**2) / (2 * sigma**2)),
    ),
    Mistake(
        "divides by σ² instead of 2σ²: the border term is w0 exp(-(d1 + d2)² / (2σ²))",
        _weights(lambda d1, d2, sigma: (d1 + d2) ** 2 / sigma**2),
    ),
)


def _cells(shape: tuple[int, int], *boxes: tuple[int, int, int, int]) -> Tensor:
    """An instance map with cell k + 1 in ``boxes[k] = (top, left, height, width)``."""
    instances = torch.zeros(shape, dtype=torch.long)
    for k, (top, left, height, width) in enumerate(boxes):
        instances[top : top + height, left : left + width] = k + 1
    return instances


def _weight_map_public() -> list[Case]:
    touching = _cells((10, 14), (1, 1, 4, 5), (1, 8, 4, 5), (7, 2, 3, 6))
    fixed = torch.where(touching > 0, 1.0, 0.3)
    single = _cells((8, 8), (2, 2, 4, 3))
    return [
        Case(
            "three cells in a 10 x 14 image (gaps of 2 px), w_c = 0.3 on background and 1 on "
            "cells, w0 = 10, σ = 3",
            touching,
            fixed,
            sigma=3.0,
        ),
        Case("the same cells and w_c, w0 = 5, σ = 5 (the default)", touching, fixed, w0=5.0),
        Case(
            "a single cell in an 8 x 8 image, balanced w_c",
            single,
            data.class_balance_weights(single),
        ),
    ]


def _weight_map_hidden(gen: torch.Generator) -> list[Case]:
    gap = int(torch.randint(1, 4, (), generator=gen))
    width = int(torch.randint(3, 6, (), generator=gen))
    instances = _cells((12, 16), (1, 1, 5, width), (1, 1 + width + gap, 5, 4), (8, 3, 3, 9))
    w_c = 0.2 + 0.8 * torch.rand(12, 16, generator=gen, dtype=torch.float64)
    sigma = 2.0 + 4 * float(torch.rand((), generator=gen))
    return [
        Case(
            f"three cells, a gap of {gap} px, random w_c, w0 = 8, σ = {sigma:.2f}",
            instances,
            w_c,
            w0=8.0,
            sigma=sigma,
        ),
        Case("a single cell, random w_c", _cells((9, 9), (3, 2, 4, 5)), w_c[:9, :9]),
    ]


WEIGHT_MAP = Exercise(
    name="weight_map",
    chapter=CHAPTER,
    number=4,
    task=(
        "write weight_map(instances, w_c, w0=10.0, sigma=5.0): U-Net's weight "
        "w_c + w0 exp(-(d1 + d2)² / (2σ²)) of every pixel of an (H, W) instance map (0 background, "
        "1..K cells), the border term on background pixels only, d1 and d2 the distances to the "
        "nearest and second-nearest cell (the term vanishes with fewer than two cells)."
    ),
    points=2,
    reference=weight_map_reference,
    public_cases=_weight_map_public,
    hidden_cases=_weight_map_hidden,
    mistakes=WEIGHT_MAP_MISTAKES,
)

register(UNET_OUTPUT_SIZE, MIRROR_BORDER, CROP_AND_CONCAT, WEIGHT_MAP)
