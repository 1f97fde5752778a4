"""Graded exercises of chapter 06, nnU-Net's heuristics: the target spacing with its anisotropy
exception, which axes each pooling halves, and CT normalisation from foreground statistics.

The references are ``course_lib.nnunet`` (``fullres_target_spacing``, ``pool_and_conv_props``,
``normalize_channel`` with ``weighted_intensity_statistics``), written in NumPy after nnU-Net v2's
planner; the chapter's solutions compute the same numbers in torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from course_lib.classroom.exercise import Case, Exercise, Mistake, register
from course_lib.nnunet.fingerprint import weighted_intensity_statistics
from course_lib.nnunet.planning import (
    FEATUREMAP_MIN_EDGE_LENGTH,
    fullres_target_spacing,
    pool_and_conv_props,
)
from course_lib.nnunet.preprocessing import normalize_channel
from course_lib.nnunet.resampling import ANISO_THRESHOLD

Tensor = torch.Tensor
CHAPTER = "06_nnunet"


# --- 1. The target spacing, with the anisotropy exception -----------------------------------------


def target_spacing_reference(spacings: Tensor, sizes: Tensor) -> Tensor:
    """The ``3d_fullres`` target spacing, by ``nnunet.planning.fullres_target_spacing``."""
    return torch.from_numpy(fullres_target_spacing(spacings.numpy(), sizes.numpy()))


def _target(
    centre: Callable[[Tensor], Tensor] = lambda v: torch.quantile(v, 0.5, dim=0),
    exception: bool = True,
    needs_small_size: bool = True,
    low: Callable[[Tensor], Tensor] = lambda v: torch.quantile(v, 0.1),
    floor: bool = True,
    coarse_axis: int | None = None,
) -> Callable[[Tensor, Tensor], Tensor]:
    """Target spacings computed the torch way, with one step changed, for the known mistakes."""

    def target_spacing(spacings: Tensor, sizes: Tensor) -> Tensor:
        target = centre(spacings.double())
        size = torch.quantile(sizes.double(), 0.5, dim=0)
        worst = int(target.argmax()) if coarse_axis is None else coarse_axis
        others = [a for a in range(len(target)) if a != worst]
        finest_other = float(target[others].max())
        anisotropic = float(target[worst]) > ANISO_THRESHOLD * finest_other
        if needs_small_size:
            anisotropic &= float(size[worst]) * ANISO_THRESHOLD < float(size[others].min())
        if exception and anisotropic:
            value = float(low(spacings[:, worst].double()))
            if floor and value < finest_other:
                value = finest_other + 1e-5
            target[worst] = value
        return target

    return target_spacing


TARGET_MISTAKES = (
    Mistake(
        "takes the mean spacing per axis; nnU-Net takes the median, which one odd scan cannot "
        "drag away",
        _target(centre=lambda v: v.mean(dim=0)),
    ),
    Mistake(
        "assumes the coarse axis is the first one: it is the axis with the largest median "
        "spacing, wherever it is",
        _target(coarse_axis=0),
    ),
    Mistake(
        "keeps the median along the coarse axis of a strongly anisotropic dataset: when its "
        "median spacing is more than 3x every other AND its median size is under a third of every "
        "other, nnU-Net takes the 10th percentile of that axis's spacings instead",
        _target(exception=False),
    ),
    Mistake(
        "applies the anisotropy exception on the spacings alone: nnU-Net also asks that the coarse "
        "axis has few voxels (its median size times 3 below every other median size)",
        _target(needs_small_size=False),
    ),
    Mistake(
        "lets the 10th percentile fall below the other axes' spacing: the coarse axis must stay "
        "the coarsest, so nnU-Net raises it to just above the largest other target spacing",
        _target(floor=False),
    ),
    Mistake(
        "takes the finest spacing along the coarse axis (its minimum); nnU-Net takes the 10th "
        "percentile (torch.quantile(v, 0.1), linear interpolation)",
        _target(low=lambda v: v.min()),
    ),
)


def _table(*rows: Sequence[float]) -> Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def _target_public() -> list[Case]:
    thick = _table(
        [4.0, 0.8, 0.8], [5.0, 0.7, 0.7], [1.5, 0.9, 0.9], [5.0, 0.8, 0.8], [4.5, 0.75, 0.75]
    )
    thick_sizes = _table(
        [30, 256, 256], [24, 240, 240], [90, 260, 260], [26, 250, 250], [28, 256, 256]
    )
    return [
        Case(
            "five near-isotropic CT scans",
            _table(
                [1.0, 0.8, 0.8], [1.5, 0.7, 0.7], [1.2, 0.9, 0.9], [1.1, 0.6, 0.6], [3.0, 0.8, 0.8]
            ),
            _table(
                [200, 256, 256], [150, 240, 240], [160, 260, 260], [180, 250, 250], [90, 256, 256]
            ),
        ),
        Case("five thick-slice MR scans, the slices along axis 0", thick, thick_sizes),
        Case(
            "the same scans stored with the slices along axis 2",
            thick[:, [1, 2, 0]],
            thick_sizes[:, [1, 2, 0]],
        ),
        Case(
            "thick slices (4 mm against 1 mm) but as many slices as pixels per row",
            _table([3.5, 1.0, 1.0], [4.0, 1.0, 1.0], [5.5, 1.0, 1.0]),
            _table([120, 200, 200], [110, 180, 180], [100, 190, 190]),
        ),
        Case(
            "ten scans, two of them with 0.5 mm slices, the others 4 mm",
            _table(*([[0.5, 1.0, 1.0]] * 2 + [[4.0, 1.0, 1.0]] * 8)),
            _table(*([[160, 200, 200]] * 2 + [[20, 200, 200]] * 8)),
        ),
    ]


def _target_hidden(gen: torch.Generator) -> list[Case]:
    def uniform(low: float, high: float, *shape: int) -> Tensor:
        return low + (high - low) * torch.rand(*shape, generator=gen, dtype=torch.float64)

    n = 7
    inplane = uniform(0.6, 1.0, n)
    spacings = torch.stack([uniform(3.5, 6.0, n), inplane, inplane], dim=1)
    sizes = torch.stack([uniform(15, 40, n), uniform(200, 300, n), uniform(200, 300, n)], dim=1)
    sizes = sizes.round()
    near = torch.stack([uniform(0.8, 2.0, n), inplane, inplane], dim=1)
    mixed = spacings.clone()
    mixed[:2, 0] = uniform(0.3, 0.5, 2)  # two thin-slice scans: the 10th percentile is floored
    slices_last = [1, 2, 0]
    return [
        Case("seven random thick-slice scans", spacings, sizes),
        Case(
            "the same scans with the slices last", spacings[:, slices_last], sizes[:, slices_last]
        ),
        Case("seven random near-isotropic scans", near, sizes[:, [1, 1, 2]]),
        Case("seven thick-slice scans, two of them thin", mixed, sizes),
        Case("thick slices, as many as pixels per row", spacings, sizes[:, [1, 1, 2]]),
    ]


TARGET_SPACING = Exercise(
    name="target_spacing",
    chapter=CHAPTER,
    number=1,
    task=(
        "write target_spacing(spacings, sizes): from one row of spacings (mm) and one row of "
        "sizes (voxels) per scan, nnU-Net's 3d_fullres target spacing: the median per axis, "
        "except along a strongly anisotropic coarse axis, which takes the 10th percentile of its "
        "spacings (kept above the other axes' spacing)."
    ),
    points=2,
    reference=target_spacing_reference,
    public_cases=_target_public,
    hidden_cases=_target_hidden,
    mistakes=TARGET_MISTAKES,
)


# --- 2. Which axes each pooling halves ------------------------------------------------------------


Strides = tuple[tuple[int, ...], ...]


def pooling_strides_reference(spacing: Sequence[float], patch_size: Sequence[int]) -> Strides:
    """The stride of every pooling, by ``nnunet.planning.pool_and_conv_props`` (whose first
    stage, all ones, is no pooling)."""
    return pool_and_conv_props(spacing, patch_size).strides[1:]


def _pooling(
    double_spacing: bool = True,
    finest_of_all: bool = False,
    single_axis_rule: bool = True,
    at_most_twice: bool = False,
    isotropic: bool = False,
) -> Callable[[Sequence[float], Sequence[int]], Strides]:
    """nnU-Net's pooling loop with one rule changed, for the known mistakes."""
    smallest = FEATUREMAP_MIN_EDGE_LENGTH

    def pooling_strides(spacing: Sequence[float], patch_size: Sequence[int]) -> Strides:
        current = [1.0] * len(spacing) if isotropic else [float(s) for s in spacing]
        size = [float(p) for p in patch_size]
        strides = []
        while True:
            axes = [a for a in range(len(size)) if size[a] >= 2 * smallest]
            if not axes:
                break
            finest = min(current) if finest_of_all else min(current[a] for a in axes)
            ratio_ok = (lambda r: r <= 2) if at_most_twice else (lambda r: r < 2)
            axes = [a for a in axes if ratio_ok(current[a] / finest)]
            if not axes:
                break
            if single_axis_rule and len(axes) == 1 and size[axes[0]] < 3 * smallest:
                break
            for a in axes:
                size[a] = float(np.ceil(size[a] / 2))
                if double_spacing:
                    current[a] *= 2
            strides.append(tuple(2 if a in axes else 1 for a in range(len(size))))
        return tuple(strides)

    return pooling_strides


POOLING_MISTAKES = (
    Mistake(
        "pools an axis whose spacing is exactly twice the finest: nnU-Net's rule is strict, "
        "spacing / finest < 2",
        _pooling(at_most_twice=True),
    ),
    Mistake(
        "pools the axes as if the voxels were cubes: nnU-Net pools an axis only while its "
        "spacing is under twice the finest, so a thick-slice axis waits until the fine axes have "
        "caught up in mm",
        _pooling(isotropic=True),
    ),
    Mistake(
        "never doubles the spacing of an axis it pools: after a pooling the axis's voxels are "
        "twice as large, which is how the fine axes catch up with the coarse one",
        _pooling(double_spacing=False),
    ),
    Mistake(
        "compares with the finest spacing of all axes, including those already too small to "
        "pool: compare only among the axes whose feature map is still at least 8 voxels, so that "
        "the coarse axis can go on once the fine ones have stopped",
        _pooling(finest_of_all=True),
    ),
    Mistake(
        "pools a single remaining axis down to a feature map of 4 voxels: when only one axis is "
        "left, nnU-Net pools it only while it has at least 12 voxels (3 x 4)",
        _pooling(single_axis_rule=False),
    ),
)


_POOLING_TEMPLATES = (
    ((3.0, 0.8, 0.8), (40, 160, 160)),
    ((5.0, 0.5, 0.5), (64, 256, 256)),
    ((2.0, 1.0, 1.0), (128, 128, 128)),
    ((1.0, 4.0, 4.0), (128, 24, 24)),
    ((1.0, 1.0, 1.0), (160, 80, 10)),
)


def _pooling_case(spacing: Sequence[float], patch_size: Sequence[int]) -> Case:
    shown = ", ".join(f"{s:g}" for s in spacing)
    return Case(f"spacing ({shown}) mm, patch {tuple(patch_size)}", spacing, patch_size)


def _pooling_public() -> list[Case]:
    return [_pooling_case(*template) for template in _POOLING_TEMPLATES]


def _pooling_hidden(gen: torch.Generator) -> list[Case]:
    """The public cases in another unit and axis order: scaling every spacing by one factor does
    not change the poolings, permuting the axes permutes them (dyadic factors keep the ratios
    exact)."""
    cases = []
    for spacing, patch in _POOLING_TEMPLATES:
        factor = (0.5, 0.625, 0.75, 1.25, 1.5)[int(torch.randint(5, (), generator=gen))]
        order = torch.randperm(3, generator=gen).tolist()
        cases.append(
            _pooling_case(tuple(factor * spacing[a] for a in order), tuple(patch[a] for a in order))
        )
    return cases


POOLING_STRIDES = Exercise(
    name="pooling_strides",
    chapter=CHAPTER,
    number=2,
    task=(
        "write pooling_strides(spacing, patch_size): the stride of each of nnU-Net's poolings, "
        "a tuple with one (2 or 1 per axis) tuple per pooling, where each pooling halves the "
        "axes whose feature map has at least 8 voxels and whose current spacing is under twice "
        "the finest among them (a lone axis needs 12), and doubles their spacing."
    ),
    points=2,
    reference=pooling_strides_reference,
    public_cases=_pooling_public,
    hidden_cases=_pooling_hidden,
    mistakes=POOLING_MISTAKES,
    rtol=0.0,
    atol=0.0,
)


# --- 3. CT normalisation from the foreground's statistics ----------------------------------------


def ct_normalize_reference(image: Tensor, foreground: Tensor) -> Tensor:
    """nnU-Net's ``CTNormalization`` with the fingerprint's foreground statistics, by
    ``nnunet.preprocessing.normalize_channel``."""
    values, counts = np.unique(foreground.numpy(), return_counts=True)
    stats = weighted_intensity_statistics(values, counts)
    return torch.from_numpy(
        normalize_channel(image.numpy(), "CTNormalization", intensity_properties=stats)
    )


def _ct(
    stats_of: str = "foreground",
    bounds_of: str = "foreground",
    clip: bool = True,
    unbiased: bool = False,
    quantiles: tuple[float, float] = (0.005, 0.995),
) -> Callable[[Tensor, Tensor], Tensor]:
    """CT normalisations with one step changed, for the known mistakes."""

    def ct_normalize(image: Tensor, foreground: Tensor) -> Tensor:
        source = foreground if bounds_of == "foreground" else image
        low, high = torch.quantile(source.double(), torch.tensor(quantiles, dtype=torch.float64))
        sample = {
            "foreground": foreground,
            "image": image,
            "clipped": foreground.clamp(low, high),
        }[stats_of].double()
        mean, std = sample.mean(), sample.std(unbiased=unbiased)
        x = image.double()
        if clip:
            x = x.clamp(low, high)
        return (x - mean) / std

    return ct_normalize


CT_MISTAKES = (
    Mistake(
        "z-scores the image with its own mean and standard deviation, nnU-Net's scheme for MR; "
        "for CT it uses the statistics of the foreground voxels of the whole training set, so "
        "that a Hounsfield unit means the same in every scan",
        _ct(stats_of="image", bounds_of="image", clip=False),
    ),
    Mistake(
        "does not clip: clip the image to the 0.5th and 99.5th percentiles of the foreground "
        "intensities first, so that bone, metal and air do not dominate",
        _ct(clip=False),
    ),
    Mistake(
        "clips to the percentiles of the image; nnU-Net takes them from the foreground "
        "intensities of the training set, like the mean and the standard deviation",
        _ct(bounds_of="image"),
    ),
    Mistake(
        "clips to the 5th and 95th percentiles: 0.5 % and 99.5 % are the quantiles 0.005 and 0.995",
        _ct(quantiles=(0.05, 0.95)),
    ),
    Mistake(
        "takes the mean and the standard deviation of the clipped foreground; nnU-Net's "
        "fingerprint computes them on the foreground intensities as they are",
        _ct(stats_of="clipped"),
    ),
    Mistake(
        "divides by the sample standard deviation (torch.std's default, n - 1 in the "
        "denominator); nnU-Net uses the population one, np.std: torch.std(x, unbiased=False)",
        _ct(unbiased=True),
    ),
)

_CT_FOREGROUND = torch.tensor(
    [30.0, 42.0, 55.0, 61.0, 48.0, 70.0, 35.0, 52.0, 45.0, 58.0, 38.0, 66.0, 300.0, -40.0, 50.0],
    dtype=torch.float64,
)


def _ct_public() -> list[Case]:
    image = torch.tensor(
        [[-1000.0, -500.0, -100.0, 0.0], [20.0, 40.0, 60.0, 80.0], [150.0, 400.0, 1200.0, 3000.0]],
        dtype=torch.float64,
    )
    return [
        Case(
            "a 3 x 4 CT image from air (-1000 HU) to metal (3000 HU), 15 foreground intensities "
            "of the training set",
            image,
            _CT_FOREGROUND,
        ),
        Case(
            "an image of soft tissue only (0 to 90 HU), the same foreground",
            torch.linspace(0.0, 90.0, 10, dtype=torch.float64),
            _CT_FOREGROUND,
        ),
    ]


def _ct_hidden(gen: torch.Generator) -> list[Case]:
    foreground = (40 + 15 * torch.randn(60, generator=gen, dtype=torch.float64)).round()
    foreground[:3] = torch.tensor([-80.0, 250.0, 400.0])  # a few outliers to clip
    image = (-1000 + 2500 * torch.rand(6, 8, generator=gen, dtype=torch.float64)).round()
    tissue = (60 * torch.rand(12, generator=gen, dtype=torch.float64)).round()
    return [
        Case("a random 6 x 8 CT image, 60 foreground intensities", image, foreground),
        Case("random soft-tissue intensities, the same foreground", tissue, foreground),
    ]


CT_NORMALIZE = Exercise(
    name="ct_normalize",
    chapter=CHAPTER,
    number=3,
    task=(
        "write ct_normalize(image, foreground): nnU-Net's CT normalisation, which clips the "
        "image to the 0.5th and 99.5th percentiles of the training set's foreground intensities "
        "and z-scores it with their mean and (population) standard deviation."
    ),
    points=2,
    reference=ct_normalize_reference,
    public_cases=_ct_public,
    hidden_cases=_ct_hidden,
    mistakes=CT_MISTAKES,
)

register(TARGET_SPACING, POOLING_STRIDES, CT_NORMALIZE)
