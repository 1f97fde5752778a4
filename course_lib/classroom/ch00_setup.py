"""Graded exercises of chapter 00, the course's own tools: the class-balance term of the weight
map, the Dice-against-threshold curve of the threshold explorer, and random crops seeded through
``runtime`` so that ``COURSE_SEED`` shifts them.

The references are the package's own functions (``data.class_balance_weights``,
``widgets.threshold_explorer.dice_by_threshold``, ``runtime.generator``); each mistake is one a
learner makes with these tools.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from course_lib import data, runtime
from course_lib.classroom.exercise import Case, Exercise, Mistake, register
from course_lib.widgets.threshold_explorer import dice_by_threshold

Tensor = torch.Tensor
CHAPTER = "00_setup"
Box = tuple[int, int, int, int, int]
"""A rectangle in a batch of masks: ``(image, top, left, height, width)``."""


def _rectangles(shape: tuple[int, int, int], *boxes: Box) -> Tensor:
    """An (N, H, W) long mask with ones in each box ``(image, top, left, height, width)``."""
    mask = torch.zeros(shape, dtype=torch.long)
    for image, top, left, height, width in boxes:
        mask[image, top : top + height, left : left + width] = 1
    return mask


# --- 1. The class-balance term w_c of the weight map ----------------------------------------------


def balance_weights_reference(mask: Tensor) -> Tensor:
    """``w_c`` of every pixel, per image: by ``data.class_balance_weights``."""
    return data.class_balance_weights(mask)


def _inverse_frequencies(mask: Tensor, per_image: bool = True) -> tuple[Tensor, Tensor]:
    """``(1 / f_background, 1 / f_cell)``, per image (shaped to broadcast) or over the batch."""
    fg = (mask > 0).double()
    f_fg = fg.mean(dim=(-2, -1), keepdim=True) if per_image else fg.mean()
    return 1 / (1 - f_fg), 1 / f_fg


def _from_class_weights(mask: Tensor, w_bg: Tensor, w_fg: Tensor) -> Tensor:
    return torch.where(mask > 0, w_fg, w_bg).float()


def _normalised(per_image: bool, by: str = "max") -> Callable[[Tensor], Tensor]:
    """``(1/f_c) / max_k(1/f_k)`` (or ``/ sum_k``), written without guarding a missing class."""

    def weights(mask: Tensor) -> Tensor:
        inv_bg, inv_fg = _inverse_frequencies(mask, per_image)
        scale = torch.maximum(inv_bg, inv_fg) if by == "max" else inv_bg + inv_fg
        return _from_class_weights(mask, inv_bg / scale, inv_fg / scale)

    return weights


def _frequencies(mask: Tensor) -> Tensor:
    fg = (mask > 0).double()
    f_fg = fg.mean(dim=(-2, -1), keepdim=True)
    scale = torch.maximum(f_fg, 1 - f_fg)
    return _from_class_weights(mask, (1 - f_fg) / scale, f_fg / scale)


def _raw_inverse(mask: Tensor) -> Tensor:
    inv_bg, inv_fg = _inverse_frequencies(mask)
    return _from_class_weights(mask, inv_bg, inv_fg)


BALANCE_MISTAKES = (
    Mistake(
        "counts the class frequencies over the whole batch: w_c balances each image by its own "
        "frequencies (take the means over the last two axes, H and W)",
        _normalised(per_image=False),
    ),
    Mistake(
        "weighs each class by its frequency, so the common class (the background) weighs most: "
        "balancing weighs a class by its inverse frequency 1 / f_c",
        _frequencies,
    ),
    Mistake(
        "uses the raw inverse frequencies 1 / f_c: divide them by their largest value, so that "
        "the rarer class weighs 1 and the other f_rare / f_common (then w0 = 10 keeps its meaning "
        "on top of w_c <= 1)",
        _raw_inverse,
    ),
    Mistake(
        "divides the inverse frequencies by their sum; the course divides by their largest value, "
        "so that the rarer class weighs exactly 1",
        _normalised(per_image=True, by="sum"),
    ),
    Mistake(
        "breaks on an image with one class only: the missing class has frequency 0, its inverse "
        "is inf, and dividing by that largest value gives 0 (or NaN). An image with a single "
        "class weighs 1 everywhere",
        _normalised(per_image=True),
    ),
)


def _balance_public() -> list[Case]:
    two = _rectangles((2, 6, 8), (0, 1, 1, 3, 4), (1, 0, 0, 6, 6))
    with_empty = _rectangles((3, 4, 5), (0, 1, 1, 2, 2))
    with_empty[2] = 1  # one image all cell, one all background
    return [
        Case(
            "two 6 x 8 images, cells on 12 of 48 pixels and on 36 of 48",
            two,
        ),
        Case("three 4 x 5 images: a small cell, no cell at all, all cell", with_empty),
    ]


def _random_box(gen: torch.Generator, image: int, shape: tuple[int, int]) -> Box:
    top, left = (int(torch.randint(0, s // 2, (), generator=gen)) for s in shape)
    height = int(torch.randint(1, shape[0] - top, (), generator=gen))
    width = int(torch.randint(1, shape[1] - left, (), generator=gen))
    return image, top, left, height, width


def _balance_hidden(gen: torch.Generator) -> list[Case]:
    shape = (3, 9, 11)
    boxes = [_random_box(gen, i, (9, 11)) for i in range(3)]
    boxes[2] = (2, 0, 0, 9, 8)  # cells on most of the last image: the background is rarer there
    masks = _rectangles(shape, *boxes)
    with_empty = masks.clone()
    with_empty[1] = 0
    return [Case("three random 9 x 11 masks", masks), Case("the same, one image empty", with_empty)]


BALANCE_WEIGHTS = Exercise(
    name="balance_weights",
    chapter=CHAPTER,
    number=1,
    task=(
        "write balance_weights(mask): for an (N, H, W) 0/1 mask, the class-balance weight w_c of "
        "every pixel, per image: (1 / f_c) / max_k (1 / f_k), f_c the fraction of the image's "
        "pixels in the pixel's class, and 1 everywhere on an image with one class only."
    ),
    points=2,
    reference=balance_weights_reference,
    public_cases=_balance_public,
    hidden_cases=_balance_hidden,
    mistakes=BALANCE_MISTAKES,
)


# --- 2. Dice against the threshold ----------------------------------------------------------------


def dice_curve_reference(probabilities: Tensor, target: Tensor, thresholds: Tensor) -> Tensor:
    """Dice of ``probabilities > t`` for every ``t``: by the explorer's ``dice_by_threshold``."""
    return dice_by_threshold(probabilities, target, thresholds)


def _masks(probabilities: Tensor, thresholds: Tensor, above: bool = True) -> Tensor:
    p, t = probabilities.unsqueeze(0), thresholds.view(-1, 1, 1)
    return p > t if above else p < t


def _overlap_curve(kind: str, above: bool = True) -> Callable[..., Tensor]:
    """Curves of other overlap measures (or of the reversed masks), for the known mistakes."""

    def curve(probabilities: Tensor, target: Tensor, thresholds: Tensor) -> Tensor:
        pred = _masks(probabilities, thresholds, above).double()
        g = target.bool().double().expand_as(pred)
        tp = (pred * g).sum((1, 2))
        size_p, size_g = pred.sum((1, 2)), g.sum((1, 2))
        if kind == "iou":
            return tp / (size_p + size_g - tp)
        if kind == "accuracy":
            return (pred == g).double().mean((1, 2))
        if kind == "with background":
            tn = ((1 - pred) * (1 - g)).sum((1, 2))
            background = 2 * tn / ((1 - pred).sum((1, 2)) + (1 - g).sum((1, 2)))
            return (2 * tp / (size_p + size_g) + background) / 2
        return 2 * tp / (size_p + size_g)

    return curve


def _soft_dice(probabilities: Tensor, target: Tensor, thresholds: Tensor) -> Tensor:
    p, g = probabilities.double(), target.double()
    return (2 * (p * g).sum() / (p.sum() + g.sum())).expand(len(thresholds))


DICE_CURVE_MISTAKES = (
    Mistake(
        "is the IoU (Jaccard index) |P ∧ G| / |P ∨ G|; the Dice coefficient is "
        "2 |P ∧ G| / (|P| + |G|)",
        _overlap_curve("iou"),
    ),
    Mistake(
        "is the pixel accuracy: it counts the background, which is most of the image, so it stays "
        "high even when the cells are missed. Dice counts only the foreground: 2 TP / (2 TP + FP "
        "+ FN)",
        _overlap_curve("accuracy"),
    ),
    Mistake(
        "thresholds the wrong way: a pixel is foreground where its probability is above the "
        "threshold, probabilities > t",
        _overlap_curve("dice", above=False),
    ),
    Mistake(
        "averages the Dice of the cells and the Dice of the background; the curve is the Dice of "
        "the foreground (the cells) only",
        _overlap_curve("with background"),
    ),
    Mistake(
        "is the soft Dice of the probabilities themselves, the same for every threshold: threshold "
        "first (probabilities > t), then compare the mask with the target",
        _soft_dice,
    ),
)

_CURVE_THRESHOLDS = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9], dtype=torch.float64)


def _curve_public() -> list[Case]:
    target = torch.zeros(6, 8, dtype=torch.bool)
    target[1:5, 2:6] = True
    rows = torch.linspace(-1.0, 1.0, 6).view(-1, 1)
    cols = torch.linspace(-1.0, 1.0, 8).view(1, -1)
    logits = 3 * target.double() - 1.5 + 2.2 * torch.sin(7 * rows + 5 * cols).double()
    return [
        Case(
            "a 4 x 4 square cell in a 6 x 8 image, a noisy prediction, thresholds "
            "[0.1, 0.3, 0.5, 0.7, 0.9]",
            torch.sigmoid(logits),
            target,
            _CURVE_THRESHOLDS,
        )
    ]


def _curve_hidden(gen: torch.Generator) -> list[Case]:
    target = _rectangles((1, 10, 12), _random_box(gen, 0, (10, 12)))[0].bool()
    target[0, 0] = True  # never empty, never full
    target[-1, -1] = False
    noise = 1.5 * torch.randn(10, 12, generator=gen, dtype=torch.float64)
    probabilities = torch.sigmoid(3 * target.double() - 1.5 + noise)
    thresholds = torch.linspace(0.05, 0.95, 11, dtype=torch.float64)
    return [Case("a random mask and prediction, 11 thresholds", probabilities, target, thresholds)]


DICE_CURVE = Exercise(
    name="dice_curve",
    chapter=CHAPTER,
    number=2,
    task=(
        "write dice_curve(probabilities, target, thresholds): for each threshold t, the Dice "
        "coefficient of the mask probabilities > t against the (H, W) target mask, as a 1D "
        "tensor with one value per threshold."
    ),
    points=2,
    reference=dice_curve_reference,
    public_cases=_curve_public,
    hidden_cases=_curve_hidden,
    mistakes=DICE_CURVE_MISTAKES,
)


# --- 3. Random crops, seeded through runtime ------------------------------------------------------


@contextmanager
def course_seed(shift: int) -> Iterator[None]:
    """``COURSE_SEED`` set to ``shift`` inside the block (and restored after it)."""
    before = os.environ.get(runtime.SEED_ENV)
    os.environ[runtime.SEED_ENV] = str(shift)
    try:
        yield
    finally:
        if before is None:
            del os.environ[runtime.SEED_ENV]
        else:
            os.environ[runtime.SEED_ENV] = before


GLOBAL_SEED = 20_150_518
"""The state of torch's global generator during a :class:`SeededCase` (then restored): an answer
that draws from it gives the same numbers every time, so the check can recognise it."""


class SeededCase(Case):
    """A case whose calls run with ``COURSE_SEED`` set, as a learner's run with a shifted seed, and
    with torch's global generator in a fixed state that is restored afterwards."""

    def __init__(self, label: str, shift: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(label, *args, **kwargs)
        self.shift = shift

    def call(self, fn: Callable[..., Any]) -> Any:
        with course_seed(self.shift), torch.random.fork_rng(devices=[]):
            torch.manual_seed(GLOBAL_SEED)
            return super().call(fn)


def _crops_at(image: Tensor, crop: int, corners: Tensor) -> Tensor:
    return torch.stack([image[r : r + crop, c : c + crop] for r, c in corners.tolist()])


def _crops_from(
    gen_of: Callable[[int], torch.Generator | None], off_by_one: int = 0, rows_first: bool = False
) -> Callable[..., Tensor]:
    """Random crops whose corners come from ``gen_of(base)``, for the reference and mistakes."""

    def crops(image: Tensor, crop: int, n: int, base: int = 0) -> Tensor:
        high = image.shape[-1] - crop + 1 - off_by_one
        gen = gen_of(base)
        if rows_first:
            corners = torch.randint(high, (2, n), generator=gen).T
        else:
            corners = torch.randint(high, (n, 2), generator=gen)
        return _crops_at(image, crop, corners)

    return crops


def random_crops_reference(image: Tensor, crop: int, n: int, base: int = 0) -> Tensor:
    """Crops at the corners ``torch.randint(size - crop + 1, (n, 2))`` of ``runtime.generator``."""
    return _crops_from(runtime.generator)(image, crop, n, base)


CROPS_MISTAKES = (
    Mistake(
        "never draws the last position: torch.randint's high is exclusive, so corners from 0 to "
        "size - crop (the crop touching the bottom or right border) need high = size - crop + 1",
        _crops_from(runtime.generator, off_by_one=1),
    ),
    Mistake(
        "ignores COURSE_SEED: torch.Generator().manual_seed(base) gives the same crops whatever "
        "seed shift the learner chose; runtime.generator(base) seeds with runtime.seed(base), "
        "which COURSE_SEED shifts",
        _crops_from(lambda base: torch.Generator().manual_seed(base)),
    ),
    Mistake(
        "ignores base: every call draws from runtime.generator(0), so two streams of crops that "
        "should differ (training and validation, say) are the same; pass base on",
        _crops_from(lambda base: runtime.generator(0)),
    ),
    Mistake(
        "draws from torch's global generator: its state depends on everything that ran before, "
        "so rerunning a cell gives other crops, and COURSE_SEED does not shift them; pass "
        "generator=runtime.generator(base) to torch.randint",
        _crops_from(lambda base: None),
    ),
    Mistake(
        "draws a (2, n) tensor of corners (all rows, then all columns); the exercise draws one "
        "(row, column) pair per crop, torch.randint(high, (n, 2), generator=...)",
        _crops_from(runtime.generator, rows_first=True),
    ),
)


def _crops_public() -> list[Case]:
    image = torch.arange(100, dtype=torch.float32).reshape(10, 10)
    return [
        SeededCase(
            "a 10 x 10 image (pixel value 10 row + column), 4 crops of 3 x 3, base 5, "
            "COURSE_SEED=3",
            3,
            image,
            3,
            4,
            base=5,
        ),
        SeededCase(
            "the same image, 6 crops of 8 x 8 (3 positions per axis), base 2, COURSE_SEED=1",
            1,
            image,
            8,
            6,
            base=2,
        ),
    ]


def _crops_hidden(gen: torch.Generator) -> list[Case]:
    shift, base = (int(torch.randint(1, 1000, (), generator=gen)) for _ in range(2))
    size = int(torch.randint(9, 15, (), generator=gen))
    image = torch.arange(size * size, dtype=torch.float32).reshape(size, size)
    return [
        SeededCase(
            f"a {size} x {size} image, 8 crops of 4 x 4, base {base}, COURSE_SEED={shift}",
            shift,
            image,
            4,
            8,
            base=base,
        )
    ]


RANDOM_CROPS = Exercise(
    name="random_crops",
    chapter=CHAPTER,
    number=3,
    task=(
        "write random_crops(image, crop, n, base=0): n crops of crop x crop pixels of a square "
        "(S, S) image, stacked into (n, crop, crop), at corners drawn by one call "
        "torch.randint(high, (n, 2), generator=runtime.generator(base)) covering every position "
        "a crop can take (column 0 the row, column 1 the column of the top-left corner)."
    ),
    points=1,
    reference=random_crops_reference,
    public_cases=_crops_public,
    hidden_cases=_crops_hidden,
    mistakes=CROPS_MISTAKES,
)

register(BALANCE_WEIGHTS, DICE_CURVE, RANDOM_CROPS)
