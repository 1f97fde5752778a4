"""Graded exercises of chapter 04, the Hausdorff distance: one-way masks, directed surface
distances from a distance transform, HD95 in its two conventions, ASSD with spacing.

The references are ``course_lib.metrics`` (banded distance transforms and exact fall-backs), the
chapter's solutions build the same numbers from ``distance_transform_edt`` and ``mask_surface``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib import metrics
from course_lib.classroom.exercise import Case, Exercise, Mistake, register

Tensor = torch.Tensor
Spacing = tuple[float, float]
CHAPTER = "04_hausdorff"


def _rectangle(shape: tuple[int, int], top: int, left: int, height: int, width: int) -> Tensor:
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[top : top + height, left : left + width] = True
    return mask


def _directed_hd(a: Tensor, b: Tensor) -> float:
    return float(metrics.hausdorff_distance(a, b, directed=True))


def _spacing_mistakes(reference: Callable[..., Tensor]) -> tuple[Mistake, Mistake]:
    """The two ways to get the spacing wrong, in an answer that ``reference`` computes right."""
    return (
        Mistake(
            "ignores the spacing: the distances must come in its unit (mm), not in pixels "
            "(distance_transform_edt takes spacing=)",
            lambda a, b, spacing=(1.0, 1.0), **kwargs: reference(a, b, (1.0, 1.0), **kwargs),
        ),
        Mistake(
            "uses the spacing in reverse order: spacing[0] is the size along the first axis "
            "(rows), spacing[1] along the second (columns)",
            lambda a, b, spacing=(1.0, 1.0), **kwargs: reference(a, b, spacing[::-1], **kwargs),
        ),
    )


# --- 1. Two masks with h(A, B) = 0 < HD(A, B) -----------------------------------------------------


def one_way_masks_reference() -> tuple[Tensor, Tensor]:
    """A square, and the same square with a second one beside it: h(a, b) = 0, h(b, a) > 0."""
    a = _rectangle((16, 24), 3, 2, 6, 6)
    return a, a | _rectangle((16, 24), 4, 14, 5, 5)


def _inside() -> tuple[Tensor, Tensor]:
    return _rectangle((16, 16), 5, 5, 4, 4), _rectangle((16, 16), 2, 2, 10, 10)


def _swapped() -> tuple[Tensor, Tensor]:
    a, b = one_way_masks_reference()
    return b, a


def _identical() -> tuple[Tensor, Tensor]:
    a = _rectangle((16, 16), 4, 4, 6, 6)
    return a, a.clone()


def _one_empty() -> tuple[Tensor, Tensor]:
    return torch.zeros(16, 16, dtype=torch.bool), _rectangle((16, 16), 4, 4, 6, 6)


EMPTY = Mistake(
    "has an empty mask: the distance from or to an empty surface is inf here, and the point is "
    "two real shapes; give both masks some pixels",
    _one_empty,
)
INSIDE = Mistake(
    "puts a inside b: the Hausdorff distance compares surfaces, and the surface of a runs "
    "through b's inside, away from b's surface, so h(a, b) > 0. Every surface pixel of a must "
    "lie on b's surface",
    _inside,
)
SWAPPED = Mistake(
    "has the roles swapped: h(b, a) = 0 but h(a, b) > 0; the exercise asks for h(a, b) = 0",
    _swapped,
)
IDENTICAL = Mistake(
    "gives two masks with the same surface: then HD(a, b) = 0 too; b needs surface pixels far "
    "from a's",
    _identical,
)


def _judge_one_way(masks: object) -> str | None:
    if not (isinstance(masks, (tuple, list)) and len(masks) == 2):
        return "return a tuple (a, b) of two masks"
    a, b = masks
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)) or a.shape != b.shape or a.ndim != 2:
        return "a and b must be 2D tensors of the same shape (bool masks)"
    a, b = a.bool(), b.bool()
    if not (a.any() and b.any()):
        return f"your answer {EMPTY.diagnosis}"
    h_ab, h_ba = _directed_hd(a, b), _directed_hd(b, a)
    if h_ab == 0 and h_ba > 0:
        return None
    if h_ab == 0:
        return f"your answer {IDENTICAL.diagnosis}"
    if h_ba == 0:
        return f"your answer {SWAPPED.diagnosis}"
    if bool((a & ~b).sum() == 0):
        return f"your answer {INSIDE.diagnosis}"
    return f"h(a, b) = {h_ab:.3g}: some surface pixel of a is that far from b's surface"


ONE_WAY_MASKS = Exercise(
    name="one_way_masks",
    chapter=CHAPTER,
    number=1,
    task=(
        "write one_way_masks(), returning two 2D bool masks (a, b) of the same shape, both "
        "non-empty, with h(a, b) = 0 but HD(a, b) > 0."
    ),
    points=1,
    reference=one_way_masks_reference,
    public_cases=lambda: [Case("your two masks")],
    hidden_cases=lambda gen: [Case("your two masks")],
    mistakes=(EMPTY, INSIDE, SWAPPED, IDENTICAL),
    judge=_judge_one_way,
)


# --- 2. Directed surface distances from a distance transform --------------------------------------


def directed_surface_distances_reference(
    a: Tensor, b: Tensor, spacing: Spacing = (1.0, 1.0)
) -> Tensor:
    """d(x, ∂b) for every surface pixel x of a, row-major, by ``metrics.surface_distances``."""
    return metrics.surface_distances(a, b, spacing=spacing)[0][0]


def _to_mask_not_surface(a: Tensor, b: Tensor, spacing: Spacing = (1.0, 1.0)) -> Tensor:
    field = metrics.distance_transform_edt(~b.bool(), spacing=spacing)
    return field[metrics.mask_surface(a)]


def _at_every_pixel(a: Tensor, b: Tensor, spacing: Spacing = (1.0, 1.0)) -> Tensor:
    field = metrics.distance_transform_edt(~metrics.mask_surface(b), spacing=spacing)
    return field[a.bool()]


DIRECTED_MISTAKES = (
    Mistake(
        "measures the distance to the mask b, not to its surface: the distance transform of ~b "
        "is 0 wherever a lies inside b. Take the transform of ~mask_surface(b)",
        _to_mask_not_surface,
    ),
    Mistake(
        "reads the distances at every pixel of a: keep only its surface pixels, mask_surface(a)",
        _at_every_pixel,
    ),
    Mistake(
        "goes the other way, from b's surface to a's: the first argument is where the distances "
        "start",
        lambda a, b, spacing=(1.0, 1.0): directed_surface_distances_reference(b, a, spacing),
    ),
    *_spacing_mistakes(directed_surface_distances_reference),
)


def _overlapping_pair(shape: tuple[int, int] = (20, 28)) -> tuple[Tensor, Tensor]:
    """b: a 9 x 12 rectangle; a: a 7 x 8 rectangle half inside it, sticking out to the right."""
    return _rectangle(shape, 6, 12, 7, 8), _rectangle(shape, 4, 4, 9, 12)


def _directed_public() -> list[Case]:
    a, b = _overlapping_pair()
    return [
        Case(
            "a rectangle a half inside a rectangle b, spacing (2.0, 0.5)", a, b, spacing=(2.0, 0.5)
        ),
        Case("the same masks, spacing (1.0, 1.0)", a, b),
    ]


def _random_rectangle(gen: torch.Generator, shape: tuple[int, int]) -> Tensor:
    top, left = (int(torch.randint(1, s // 2, (), generator=gen)) for s in shape)
    height = int(torch.randint(3, shape[0] - top, (), generator=gen))
    width = int(torch.randint(3, shape[1] - left, (), generator=gen))
    return _rectangle(shape, top, left, height, width)


def _random_spacing(gen: torch.Generator) -> Spacing:
    rows, cols = (0.4 + 2.6 * torch.rand(2, generator=gen, dtype=torch.float64)).tolist()
    return rows, cols


def _random_pair(gen: torch.Generator) -> tuple[Tensor, Tensor]:
    shape = (24, 32)
    return _random_rectangle(gen, shape) | _random_rectangle(gen, shape), _random_rectangle(
        gen, shape
    )


def _directed_hidden(gen: torch.Generator) -> list[Case]:
    cases = []
    for i in range(3):
        a, b = _random_pair(gen)
        spacing = _random_spacing(gen)
        cases.append(
            Case(
                f"random masks {i + 1}, spacing ({spacing[0]:.3f}, {spacing[1]:.3f})",
                a,
                b,
                spacing=spacing,
            )
        )
    return cases


DIRECTED_SURFACE_DISTANCES = Exercise(
    name="directed_surface_distances",
    chapter=CHAPTER,
    number=2,
    task=(
        "write directed_surface_distances(a, b, spacing=(1.0, 1.0)): for every surface pixel of "
        "mask a (row-major order), its distance to the nearest surface pixel of b, in the unit "
        "of spacing, from one distance transform (metrics.distance_transform_edt and "
        "metrics.mask_surface)."
    ),
    points=2,
    reference=directed_surface_distances_reference,
    public_cases=_directed_public,
    hidden_cases=_directed_hidden,
    mistakes=DIRECTED_MISTAKES,
)


# --- 3. HD95 in its two conventions ---------------------------------------------------------------


def hd95_reference(
    a: Tensor, b: Tensor, spacing: Spacing = (1.0, 1.0), mode: str = "max"
) -> Tensor:
    """HD95 by ``metrics.hausdorff_distance(percentile=95, mode=mode)``."""
    return metrics.hausdorff_distance(a, b, percentile=95, spacing=spacing, mode=mode)  # type: ignore[arg-type]


def _both(a: Tensor, b: Tensor, spacing: Spacing) -> tuple[Tensor, Tensor]:
    return directed_surface_distances_reference(
        a, b, spacing
    ), directed_surface_distances_reference(b, a, spacing)


def _always_pooled(
    a: Tensor, b: Tensor, spacing: Spacing = (1.0, 1.0), mode: str = "max"
) -> Tensor:
    return torch.quantile(torch.cat(_both(a, b, spacing)), 0.95)


def _always_max(a: Tensor, b: Tensor, spacing: Spacing = (1.0, 1.0), mode: str = "max") -> Tensor:
    d_ab, d_ba = _both(a, b, spacing)
    return torch.maximum(torch.quantile(d_ab, 0.95), torch.quantile(d_ba, 0.95))


HD95_MISTAKES = (
    Mistake(
        "pools both surfaces before taking the 95th percentile: that is medpy's convention "
        "(mode='pooled'); mode='max' (MONAI's) takes the larger of the two directed 95th "
        "percentiles",
        _always_pooled,
    ),
    Mistake(
        "takes the larger of the two directed 95th percentiles (MONAI's convention) where "
        "mode='pooled' asks for one 95th percentile of both sets of distances pooled (medpy's)",
        _always_max,
    ),
    Mistake(
        "takes the maximum, which is the Hausdorff distance itself; HD95 replaces it by the "
        "95th percentile (torch.quantile(d, 0.95))",
        lambda a, b, spacing=(1.0, 1.0), mode="max": metrics.hausdorff_distance(
            a, b, spacing=spacing
        ),
    ),
    Mistake(
        "uses only one direction, the distances from a's surface to b's: HD95 is symmetric, "
        "it needs the distances from b's surface to a's as well",
        lambda a, b, spacing=(1.0, 1.0), mode="max": torch.quantile(
            directed_surface_distances_reference(a, b, spacing), 0.95
        ),
    ),
    *_spacing_mistakes(hd95_reference),
)


def _square_and_blob(shape: tuple[int, int] = (48, 48)) -> tuple[Tensor, Tensor]:
    """The chapter's case: a square target, a prediction with a small blob far away (~4 % of its
    surface), where the two conventions disagree."""
    target = _rectangle(shape, 4, 4, 24, 24)
    return target | _rectangle(shape, 40, 40, 3, 3), target


def _shifted_pair(shape: tuple[int, int] = (40, 40)) -> tuple[Tensor, Tensor]:
    """a: a rectangle; b: a shifted rectangle with a far square, so that the distances from b's
    surface, not those from a's, decide the directed percentiles."""
    b = _rectangle(shape, 6, 6, 20, 14) | _rectangle(shape, 30, 30, 6, 6)
    return _rectangle(shape, 8, 9, 18, 16), b


def _hd95_public() -> list[Case]:
    blob, target = _square_and_blob()
    a, b = _shifted_pair()
    return [
        Case("a square and a far blob, mode='max'", blob, target),
        Case("two shifted shapes, spacing (1.5, 0.7), mode='max'", a, b, spacing=(1.5, 0.7)),
        Case("a square and a far blob, mode='pooled'", blob, target, mode="pooled"),
        Case(
            "two shifted shapes, spacing (1.5, 0.7), mode='pooled'",
            a,
            b,
            spacing=(1.5, 0.7),
            mode="pooled",
        ),
    ]


def _random_blob_pair(gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """A random square target and the same square plus a small far blob, drawn until the two
    HD95 conventions differ by more than a pixel (so the hidden cases tell them apart)."""
    shape = (40, 40)
    for _ in range(200):
        side, blob, top, left, gap = (
            int(torch.randint(low, high, (), generator=gen))
            for low, high in ((12, 24), (2, 6), (1, 6), (1, 6), (1, 4))
        )
        target = _rectangle(shape, top, left, side, side)
        pred = target | _rectangle(shape, 40 - blob - gap, 40 - blob - gap, blob, blob)
        max_mode, pooled = (hd95_reference(pred, target, mode=m) for m in ("max", "pooled"))
        if float(max_mode - pooled) > 1:
            return pred, target
    raise RuntimeError("no square-and-blob case separates the HD95 conventions")


def _hd95_hidden(gen: torch.Generator) -> list[Case]:
    cases = []
    for i, mode in enumerate(("max", "pooled", "max", "pooled")):
        a, b = _random_blob_pair(gen) if i < 2 else _random_pair(gen)
        spacing = _random_spacing(gen) if i >= 2 else (1.0, 1.0)
        cases.append(Case(f"random masks {i + 1}, mode={mode!r}", a, b, spacing=spacing, mode=mode))
    return cases


HD95 = Exercise(
    name="hd95",
    chapter=CHAPTER,
    number=3,
    task=(
        "write hd95(a, b, spacing=(1.0, 1.0), mode='max'): the 95th-percentile Hausdorff "
        "distance from your directed distances, either the larger of the two directed 95th "
        "percentiles (mode='max', MONAI) or the 95th percentile of both sets pooled "
        "(mode='pooled', medpy)."
    ),
    points=2,
    reference=hd95_reference,
    public_cases=_hd95_public,
    hidden_cases=_hd95_hidden,
    mistakes=HD95_MISTAKES,
)


# --- 4. ASSD with spacing -------------------------------------------------------------------------


def assd_reference(a: Tensor, b: Tensor, spacing: Spacing = (1.0, 1.0)) -> Tensor:
    """ASSD by ``metrics.average_surface_distance``."""
    return metrics.average_surface_distance(a, b, spacing=spacing)


ASSD_MISTAKES = (
    Mistake(
        "averages the two directed means, as medpy up to 0.4 did: that weighs a small surface "
        "as much as a large one. ASSD is the mean of both sets of distances pooled",
        lambda a, b, spacing=(1.0, 1.0): sum(d.mean() for d in _both(a, b, spacing)) / 2,
    ),
    Mistake(
        "uses only the distances from a's surface to b's (that is the one-way ASD); ASSD pools "
        "both directions",
        lambda a, b, spacing=(1.0, 1.0): directed_surface_distances_reference(a, b, spacing).mean(),
    ),
    *_spacing_mistakes(assd_reference),
)


def _assd_public() -> list[Case]:
    blob, target = _square_and_blob()
    a, b = _shifted_pair()
    return [
        Case("a square and a far blob, spacing (1.0, 1.0)", blob, target),
        Case("two shifted shapes, spacing (2.5, 0.8)", a, b, spacing=(2.5, 0.8)),
    ]


def _assd_hidden(gen: torch.Generator) -> list[Case]:
    cases = []
    for i in range(3):
        a, b = _random_pair(gen)
        cases.append(Case(f"random masks {i + 1}", a, b, spacing=_random_spacing(gen)))
    return cases


ASSD = Exercise(
    name="assd",
    chapter=CHAPTER,
    number=4,
    task=(
        "write assd(a, b, spacing=(1.0, 1.0)), the average symmetric surface distance: the "
        "mean of the distances of both directions pooled, in the unit of spacing."
    ),
    points=2,
    reference=assd_reference,
    public_cases=_assd_public,
    hidden_cases=_assd_hidden,
    mistakes=ASSD_MISTAKES,
)

register(ONE_WAY_MASKS, DIRECTED_SURFACE_DISTANCES, HD95, ASSD)
