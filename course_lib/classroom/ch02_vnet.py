"""Graded exercises of chapter 02, V-Net: the Dice coefficient with V-Net's squared denominator,
what autograd keeps for a max-pooling and for a strided convolution, the receptive field of a
stack of layers, and where the sliding windows go.

The references are the package's (``losses.dice_loss``, ``inference.sliding_window.window_starts``),
a measurement (``models.vnet.saved_tensor_bytes`` on real layers), or a closed form where the
chapter's solution iterates (the receptive field).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from course_lib import losses
from course_lib.classroom.exercise import Case, Exercise, Mistake, register
from course_lib.inference.sliding_window import window_starts
from course_lib.models.vnet import saved_tensor_bytes

Tensor = torch.Tensor
CHAPTER = "02_vnet"


# --- 1. The Dice coefficient, plain and squared ---------------------------------------------------


def soft_dice_reference(p: Tensor, g: Tensor, squared: bool = False) -> Tensor:
    """``2 Σ p g / (Σ p + Σ g)``, or V-Net's ``/ (Σ p² + Σ g²)``: 1 - ``losses.dice_loss``."""
    loss = losses.dice_loss(
        p.reshape(1, 1, 1, -1),
        g.reshape(1, 1, 1, -1).to(p.dtype),
        activation="none",
        squared=squared,
        smooth_nr=0.0,
        smooth_dr=0.0,
    )
    return 1 - loss


def _dice(denominator: Callable[[Tensor, Tensor, bool], Tensor]) -> Callable[..., Tensor]:
    def dice(p: Tensor, g: Tensor, squared: bool = False) -> Tensor:
        return 2 * (p * g).sum() / denominator(p, g, squared)

    return dice


SOFT_DICE_MISTAKES = (
    Mistake(
        "always uses the plain denominator Σ p + Σ g (|A| + |B|); with squared=True V-Net's "
        "denominator is Σ p² + Σ g² (|A|² + |B|², paper eq. 1)",
        _dice(lambda p, g, squared: p.sum() + g.sum()),
    ),
    Mistake(
        "always uses V-Net's squared denominator Σ p² + Σ g²; with squared=False the plain one is "
        "Σ p + Σ g",
        _dice(lambda p, g, squared: (p**2).sum() + (g**2).sum()),
    ),
    Mistake(
        "squares the sums, (Σ p)² + (Σ g)²: V-Net sums the squares, Σ p² + Σ g² (the squared "
        "norms |A|² of the prediction and the target)",
        _dice(lambda p, g, squared: p.sum() ** 2 + g.sum() ** 2 if squared else p.sum() + g.sum()),
    ),
    Mistake(
        "is the Dice loss 1 - D; the exercise asks for the coefficient D, which V-Net maximises",
        lambda p, g, squared=False: 1 - soft_dice_reference(p, g, squared),
    ),
)

_DICE_P = torch.tensor([[0.9, 0.6, 0.2, 0.05], [0.7, 0.4, 0.3, 0.1]], dtype=torch.float64)
_DICE_G = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)


def _dice_public() -> list[Case]:
    label = (
        "a 2 x 4 map p = [[.9, .6, .2, .05], [.7, .4, .3, .1]], g = [[1, 1, 0, 0], [1, 0, 0, 0]]"
    )
    return [
        Case(f"{label}, squared=False", _DICE_P, _DICE_G),
        Case(f"{label}, squared=True", _DICE_P, _DICE_G, squared=True),
    ]


def _dice_hidden(gen: torch.Generator) -> list[Case]:
    p = torch.rand(3, 4, 5, generator=gen, dtype=torch.float64)
    g = (torch.rand(3, 4, 5, generator=gen) > 0.7).double()
    g[0, 0, 0] = 1.0  # never an empty target
    return [
        Case("a random 3 x 4 x 5 volume, squared=True", p, g, squared=True),
        Case("the same volume, squared=False", p, g, squared=False),
    ]


SOFT_DICE = Exercise(
    name="soft_dice",
    chapter=CHAPTER,
    number=1,
    task=(
        "write soft_dice(p, g, squared=False): the soft Dice coefficient 2 Σ p g / (Σ p + Σ g) "
        "of probabilities p and a 0/1 target g (sums over every element), or with squared=True "
        "V-Net's 2 Σ p g / (Σ p² + Σ g²)."
    ),
    points=1,
    reference=soft_dice_reference,
    public_cases=_dice_public,
    hidden_cases=_dice_hidden,
    mistakes=SOFT_DICE_MISTAKES,
)


# --- 2. What a down-sampling keeps for the backward pass ------------------------------------------


def saved_bytes_reference(channels: int, shape: Sequence[int], mode: str) -> int:
    """Bytes autograd keeps from one 2x2x2 down-sampling of a float32 ``(1, channels, *shape)``
    input, measured by ``saved_tensor_bytes`` on ``MaxPool3d(2)`` or a stride-2 ``Conv3d``."""
    x = torch.zeros(1, channels, *shape, requires_grad=True)
    layer: nn.Module = (
        nn.MaxPool3d(2)
        if mode == "maxpool"
        else nn.Conv3d(channels, 2 * channels, kernel_size=2, stride=2)
    )
    return sum(saved_tensor_bytes(layer, x).values())


def _saved(
    pool: Callable[[int, int], int], strided: Callable[[int, int], int]
) -> Callable[..., int]:
    """``mode -> pool(n, c)`` or ``strided(n, c)``, n the input's voxels, c its channels."""

    def saved(channels: int, shape: Sequence[int], mode: str) -> int:
        n = channels * math.prod(shape)
        return pool(n, channels) if mode == "maxpool" else strided(n, channels)

    return saved


def _right_pool(n: int, c: int) -> int:
    return 4 * n + 8 * (n // 8)


def _right_strided(n: int, c: int) -> int:
    return 4 * n


SAVED_BYTES_MISTAKES = (
    Mistake(
        "gives the strided convolution the max-pooling's memory: a convolution's backward pass "
        "needs its input (for the weight gradient) but no switches, since nothing was selected",
        _saved(_right_pool, _right_pool),
    ),
    Mistake(
        "stores the switches in 4 bytes: PyTorch keeps the argmax indices of a max-pooling as "
        "int64, 8 bytes each",
        _saved(lambda n, c: 4 * n + 4 * (n // 8), _right_strided),
    ),
    Mistake(
        "keeps one switch per input voxel: there is one per output voxel (the index of the "
        "maximum of its 2x2x2 window), an eighth of the input's voxels",
        _saved(lambda n, c: 4 * n + 8 * n, _right_strided),
    ),
    Mistake(
        "forgets the input of the max-pooling: PyTorch keeps it too (float32, 4 bytes a voxel), "
        "besides the switches",
        _saved(lambda n, c: 8 * (n // 8), _right_strided),
    ),
    Mistake(
        "counts the convolution's weights: they are parameters, kept whether or not anything is "
        "saved for the backward pass; count only what the layer's forward pass stores",
        _saved(_right_pool, lambda n, c: 4 * n + 4 * (2 * c * c * 8)),
    ),
    Mistake(
        "counts the outputs instead of the inputs: the backward pass of a max-pooling or a "
        "convolution needs the layer's input (and, for the pooling, the switches)",
        _saved(lambda n, c: 4 * (n // 8) + 8 * (n // 8), lambda n, c: 4 * 2 * (n // 8)),
    ),
)


def _saved_public() -> list[Case]:
    return [
        Case("4 channels of 8 x 8 x 8 voxels, mode='maxpool'", 4, (8, 8, 8), "maxpool"),
        Case("4 channels of 8 x 8 x 8 voxels, mode='strided'", 4, (8, 8, 8), "strided"),
        Case("3 channels of 4 x 6 x 10 voxels, mode='maxpool'", 3, (4, 6, 10), "maxpool"),
    ]


def _saved_hidden(gen: torch.Generator) -> list[Case]:
    channels = int(torch.randint(2, 7, (), generator=gen))
    shape = tuple(2 * int(torch.randint(1, 6, (), generator=gen)) for _ in range(3))
    text = f"{channels} channels of {' x '.join(map(str, shape))} voxels"
    return [
        Case(f"{text}, mode={mode!r}", channels, shape, mode) for mode in ("strided", "maxpool")
    ]


SAVED_BYTES = Exercise(
    name="saved_bytes",
    chapter=CHAPTER,
    number=2,
    task=(
        "write saved_bytes(channels, shape, mode): the bytes autograd keeps for the backward pass "
        "of one 2x2x2 down-sampling of a float32 input (1, channels, D, H, W), shape = (D, H, W), "
        "mode 'maxpool' (MaxPool3d(2)) or 'strided' (a 2x2x2 convolution with stride 2), "
        "parameters not counted."
    ),
    points=2,
    reference=saved_bytes_reference,
    public_cases=_saved_public,
    hidden_cases=_saved_hidden,
    mistakes=SAVED_BYTES_MISTAKES,
)


# --- 3. The receptive field of a stack of layers --------------------------------------------------

Layers = Sequence[tuple[int, int]]


def receptive_field_reference(layers: Layers) -> tuple[int, ...]:
    """After layer ``l``: ``1 + Σ_{m <= l} (k_m - 1) Π_{j < m} s_j``, each term on its own."""
    fields = []
    for last in range(len(layers)):
        fields.append(
            1
            + sum(
                (k - 1) * math.prod(s for _, s in layers[:m])
                for m, (k, _) in enumerate(layers[: last + 1])
            )
        )
    return tuple(fields)


def _field(
    start: int = 1, grow: Callable[[int], int] = lambda k: k - 1, own_stride: bool = False
) -> Callable[[Layers], tuple[int, ...]]:
    """The usual recursion, ``field += grow(k) * jump; jump *= s``, with one step changed."""

    def fields(layers: Layers) -> tuple[int, ...]:
        field, jump, out = start, 1, []
        for k, s in layers:
            if own_stride:
                jump *= s
            field += grow(k) * jump
            if not own_stride:
                jump *= s
            out.append(field)
        return tuple(out)

    return fields


def _no_strides(layers: Layers) -> tuple[int, ...]:
    return _field()([(k, 1) for k, _ in layers])


RECEPTIVE_FIELD_MISTAKES = (
    Mistake(
        "ignores the strides: after a stride-2 layer every step on the next layer's grid spans 2 "
        "input pixels, so a kernel of size k adds (k - 1) × jump, the jump being the product of "
        "the strides before it",
        _no_strides,
    ),
    Mistake(
        "multiplies the jump by a layer's stride before adding its kernel: a layer's kernel "
        "steps on its input's grid, so its own stride only affects the layers after it",
        _field(own_stride=True),
    ),
    Mistake(
        "starts from 0: before any layer an output pixel sees 1 input pixel (itself), so the "
        "field starts at 1",
        _field(start=0),
    ),
    Mistake(
        "adds k × jump per layer: a kernel of size k widens the field by k - 1 (one pixel was "
        "seen already), so one 5x5x5 convolution sees 5 voxels, not 6",
        _field(grow=lambda k: k),
    ),
)

# V-Net's compression path: one 5x5x5 conv, then per stage a 2x2x2 stride-2 conv and its convs
VNET_COMPRESSION = [(5, 1)] + [
    layer for convs in (2, 3, 3, 3) for layer in [(2, 2)] + [(5, 1)] * convs
]


def _field_public() -> list[Case]:
    unet = [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2), (3, 1), (3, 1)]
    return [
        Case(
            "two U-Net levels: [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2), (3, 1), (3, 1)]",
            unet,
        ),
        Case(
            "V-Net's compression path (paper Table 1: 5, 22, 72, 172, 372 after the stages)",
            VNET_COMPRESSION,
        ),
    ]


def _field_hidden(gen: torch.Generator) -> list[Case]:
    layers = []
    for _ in range(int(torch.randint(5, 9, (), generator=gen))):
        kernel = int(torch.randint(2, 8, (), generator=gen))
        stride = int(torch.randint(1, 4, (), generator=gen))
        layers.append((kernel, stride))
    layers[1] = (layers[1][0], 2)  # a stride before the last layers, so strides matter
    return [Case(f"random layers {layers}", layers)]


RECEPTIVE_FIELD = Exercise(
    name="receptive_field",
    chapter=CHAPTER,
    number=3,
    task=(
        "write receptive_field(layers): for a list of (kernel_size, stride) layers applied in "
        "order, the receptive field (pixels per side) of one output pixel after each layer, as a "
        "list of ints."
    ),
    points=1,
    reference=receptive_field_reference,
    public_cases=_field_public,
    hidden_cases=_field_hidden,
    mistakes=RECEPTIVE_FIELD_MISTAKES,
)


# --- 4. Where the sliding windows go --------------------------------------------------------------


def window_positions_reference(size: int, patch: int, overlap: float) -> tuple[int, ...]:
    """nnU-Net's window starts, by ``sliding_window.window_starts``."""
    return tuple(window_starts(size, patch, overlap))


Starts = Callable[[int, int, float], tuple[int, ...]]


def _spread(
    count: Callable[[int, int, float], int], rounding: Callable[[float], int] = round
) -> Starts:
    """``count(size, patch, overlap)`` windows spread evenly over ``[0, size - patch]``."""

    def starts(size: int, patch: int, overlap: float) -> tuple[int, ...]:
        n = count(size, patch, overlap)
        if n <= 1:
            return (0,)
        step = (size - patch) / (n - 1)
        return tuple(rounding(step * i) for i in range(n))

    return starts


def _count(size: int, patch: int, overlap: float) -> int:
    return math.ceil((size - patch) / ((1 - overlap) * patch)) + 1


def _fixed_step(move_last_back: bool) -> Starts:
    """Windows every ``int((1 - overlap) patch)`` from 0, the last moved back or not (MONAI)."""

    def starts(size: int, patch: int, overlap: float) -> tuple[int, ...]:
        step = max(1, int((1 - overlap) * patch))
        out = list(range(0, size - patch + 1, step))
        if move_last_back and out[-1] != size - patch:
            out.append(size - patch)
        return tuple(out)

    return starts


WINDOW_MISTAKES = (
    Mistake(
        "places the windows as MONAI does, a fixed step from 0 and the last one moved back to the "
        "end; nnU-Net spreads its n windows evenly from 0 to size - patch",
        _fixed_step(move_last_back=True),
    ),
    Mistake(
        "steps by a fixed step from 0 and stops before the end: the last voxels of the axis are "
        "never predicted. The last window must start at size - patch",
        _fixed_step(move_last_back=False),
    ),
    Mistake(
        "takes overlap × patch as the step: the step is the part of a window that is *not* shared, "
        "(1 - overlap) × patch",
        _spread(lambda size, patch, overlap: _count(size, patch, 1 - overlap)),
    ),
    Mistake(
        "has one window too few: ceil((size - patch) / step) counts the steps, and n = steps + 1 "
        "windows (the first window needs no step)",
        _spread(lambda size, patch, overlap: _count(size, patch, overlap) - 1),
    ),
    Mistake(
        "truncates the starts (int()); round them to the nearest integer, as nnU-Net does",
        _spread(_count, rounding=int),
    ),
)


def _window_public() -> list[Case]:
    return [
        Case("an axis of 21 voxels, patch 8, overlap 0.5", 21, 8, 0.5),
        Case("an axis of 100 voxels, patch 32, overlap 0.25", 100, 32, 0.25),
        Case("an axis of 64 voxels, patch 64, overlap 0.5 (one window)", 64, 64, 0.5),
    ]


def _window_hidden(gen: torch.Generator) -> list[Case]:
    """Random axes whose starts have no fractional part of exactly .5 (rounding conventions
    differ there) and on which every mistake gives other starts."""
    cases: list[Case] = []
    while len(cases) < 2:
        patch = int(torch.randint(8, 40, (), generator=gen))
        size = patch + int(torch.randint(patch // 2, 3 * patch, (), generator=gen))
        overlap = (0.25, 0.5, 0.75)[int(torch.randint(0, 3, (), generator=gen))]
        n = _count(size, patch, overlap)
        step = (size - patch) / (n - 1)
        want = window_positions_reference(size, patch, overlap)
        if any(abs(step * i % 1 - 0.5) < 1e-9 for i in range(n)) or any(
            m.compute(size, patch, overlap) == want for m in WINDOW_MISTAKES
        ):
            continue
        cases.append(
            Case(f"an axis of {size}, patch {patch}, overlap {overlap}", size, patch, overlap)
        )
    return cases


WINDOW_POSITIONS = Exercise(
    name="window_positions",
    chapter=CHAPTER,
    number=4,
    task=(
        "write window_positions(size, patch, overlap): the start of every sliding window along "
        "an axis of size voxels, as nnU-Net places them: n = ceil((size - patch) / ((1 - overlap) "
        "patch)) + 1 windows spread evenly from 0 to size - patch, starts rounded to the nearest "
        "integer, as a list of ints."
    ),
    points=1,
    reference=window_positions_reference,
    public_cases=_window_public,
    hidden_cases=_window_hidden,
    mistakes=WINDOW_MISTAKES,
)

register(SOFT_DICE, SAVED_BYTES, RECEPTIVE_FIELD, WINDOW_POSITIONS)
