"""Graded exercises of chapter 07, the 3D U-Net and sparse annotation: the paper's parameter count,
the voxel weights of the weighted softmax loss (0 where nobody annotated), and the loss itself.

The references: the parameter count layer by layer (the test suite checks it against
``paper_parameter_count`` of ``UNet3D``), a one-hot product for the weights, and
``losses.cross_entropy(weight=..., ignore_index=-1)`` for the loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from course_lib import losses
from course_lib.classroom.exercise import Case, Exercise, Mistake, register
from course_lib.data import UNLABELED

Tensor = torch.Tensor
CHAPTER = "07_unet3d_sparse"


# --- 1. The paper's parameter count ---------------------------------------------------------------


def _count(
    conv_bias: bool = True,
    up_bias: bool = False,
    skips: bool = True,
    up: str = "keep",
    head: bool = True,
    norm_params: int = 0,
) -> Callable[..., int]:
    """The count of the 3D U-Net with one term changed, for the known mistakes.

    ``norm_params`` is how many parameters each batch-norm channel adds (1 for γ, 2 for γ and β).
    """

    def conv(c_in: int, c_out: int, k: int = 27) -> int:
        return c_in * c_out * k + (c_out if conv_bias else 0) + norm_params * c_out

    def paper_parameters(
        in_channels: int, num_classes: int, base_channels: int = 64, depth: int = 3
    ) -> int:
        total, c = 0, in_channels
        for level in range(depth + 1):
            width = base_channels * 2**level
            total += conv(c, width // 2) + conv(width // 2, width)
            c = width
        for level in reversed(range(depth)):
            width, below = base_channels * 2**level, base_channels * 2 ** (level + 1)
            up_out = below if up == "keep" else width
            total += below * up_out * 8 + (up_out if up_bias else 0)
            total += conv(up_out + (width if skips else 0), width) + conv(width, width)
        if head:
            total += base_channels * num_classes + num_classes
        return total

    return paper_parameters


def paper_parameters_reference(
    in_channels: int, num_classes: int, base_channels: int = 64, depth: int = 3
) -> int:
    """The count of ``models.unet3d``'s docstring, layer by layer. Building the net, even on the
    meta device, takes seconds, so the test suite checks this against ``paper_parameter_count``
    of real ``UNet3D``s instead of every check doing it."""
    return _count()(in_channels, num_classes, base_channels, depth)


PARAMETER_MISTAKES = (
    Mistake(
        "counts a bias for every up-convolution: the paper counts the up-convolutions' weights "
        "only (19,069,955 for the paper's net)",
        _count(up_bias=True),
    ),
    Mistake(
        "counts what PyTorch's UNet3D holds (batch norm's scale γ and the up-convolutions' "
        "biases too); the paper counts each convolution's weights and one bias per output "
        "channel, the up-convolutions without bias, and nothing for batch norm",
        _count(norm_params=1, up_bias=True),
    ),
    Mistake(
        "counts batch norm's γ and β on top of the convolution biases: the paper counts nothing "
        "for batch norm (β plays the bias's part)",
        _count(norm_params=2),
    ),
    Mistake(
        "leaves out the biases of the convolutions: each 3x3x3 convolution has one per output "
        "channel",
        _count(conv_bias=False),
    ),
    Mistake(
        "forgets the skip connections: the first convolution of each synthesis level reads the "
        "up-convolution's channels and the analysis features concatenated (512 + 256 = 768)",
        _count(skips=False),
    ),
    Mistake(
        "halves the channels in the up-convolutions, as U-Net does; the 3D U-Net's keep them "
        "(512 -> 512, then 512 + 256 -> 256)",
        _count(up="halve"),
    ),
    Mistake(
        "forgets the 1x1x1 convolution that gives the class scores (its weights and biases)",
        _count(head=False),
    ),
)


def _parameters_public() -> list[Case]:
    return [
        Case("the paper's net: 3 input channels, 3 classes", 3, 3),
        Case("1 input channel, 2 classes, base_channels=16, depth=2", 1, 2, 16, 2),
    ]


def _parameters_hidden(gen: torch.Generator) -> list[Case]:
    def pick(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (), generator=gen))

    cases = []
    for i in range(2):
        c_in, k, base, depth = pick(1, 4), pick(2, 5), 8 * pick(1, 6), pick(1, 4)
        cases.append(
            Case(
                f"net {i + 1}: {c_in} input channels, {k} classes, base_channels={base}, "
                f"depth={depth}",
                c_in,
                k,
                base,
                depth,
            )
        )
    return cases


PAPER_PARAMETERS = Exercise(
    name="paper_parameters",
    chapter=CHAPTER,
    number=1,
    task=(
        "write paper_parameters(in_channels, num_classes, base_channels=64, depth=3), the "
        "3D U-Net's parameter count as Cicek et al. count it (19,069,955 for 3 channels and 3 "
        "classes), from the architecture alone."
    ),
    points=2,
    reference=paper_parameters_reference,
    public_cases=_parameters_public,
    hidden_cases=_parameters_hidden,
    mistakes=PARAMETER_MISTAKES,
    rtol=0.0,
    atol=0.0,
)


# --- 2. The voxel weights: class weight where annotated, 0 elsewhere ------------------------------


def voxel_weights_reference(labels: Tensor, class_weights: Tensor) -> Tensor:
    """``class_weights[y]`` where annotated, 0 on ``UNLABELED`` voxels, as a one-hot product."""
    annotated = labels != UNLABELED
    one_hot = F.one_hot(labels * annotated, len(class_weights)).to(class_weights.dtype)
    return (one_hot @ class_weights) * annotated


VOXEL_WEIGHT_MISTAKES = (
    Mistake(
        "indexes class_weights with the label -1 of the unlabelled voxels, which Python reads as "
        "the last class: unannotated voxels then weigh as much as the rarest class. Set their "
        "weight to 0 (torch.where(labels == -1, 0, ...))",
        lambda labels, class_weights: class_weights[labels],
    ),
    Mistake(
        "gives the unlabelled voxels the background's weight: that is the shortcut "
        "'unlabelled = background' of section 7; nobody annotated them, so they weigh 0",
        lambda labels, class_weights: class_weights[labels.clamp(min=0)],
    ),
    Mistake(
        "gives the unlabelled voxels weight 1: they must weigh 0, so that they send no gradient",
        lambda labels, class_weights: torch.where(
            labels == UNLABELED,
            torch.ones((), dtype=class_weights.dtype),
            class_weights[labels.clamp(min=0)],
        ),
    ),
    Mistake(
        "gives every annotated voxel weight 1: use the weight of its class, class_weights[label]",
        lambda labels, class_weights: (labels != UNLABELED).to(class_weights.dtype),
    ),
)

_WEIGHTS = torch.tensor([0.4, 1.5, 6.0], dtype=torch.float64)


def _weights_public() -> list[Case]:
    labels = torch.tensor([[[0, 1, -1], [2, -1, 0]], [[-1, -1, 1], [0, 0, 2]]])
    return [
        Case(
            "a 2 x 2 x 3 volume, labels [[[0, 1, -1], [2, -1, 0]], [[-1, -1, 1], [0, 0, 2]]], "
            "class weights [0.4, 1.5, 6.0]",
            labels,
            _WEIGHTS,
        )
    ]


def _random_sparse_labels(gen: torch.Generator, shape: tuple[int, ...], classes: int) -> Tensor:
    labels = torch.randint(classes, shape, generator=gen)
    labels[torch.rand(shape, generator=gen) < 0.5] = UNLABELED
    flat = labels.view(-1)
    flat[: classes + 1] = torch.arange(-1, classes)  # every class, and some unlabelled voxels
    return labels


def _weights_hidden(gen: torch.Generator) -> list[Case]:
    weights = 0.2 + 5 * torch.rand(4, generator=gen, dtype=torch.float64)
    return [
        Case(
            "a random 3 x 4 x 5 volume, 4 classes",
            _random_sparse_labels(gen, (3, 4, 5), 4),
            weights,
        )
    ]


VOXEL_WEIGHTS = Exercise(
    name="voxel_weights",
    chapter=CHAPTER,
    number=2,
    task=(
        "write voxel_weights(labels, class_weights): the weight of every voxel, the weight of its "
        "class where it is annotated and 0 where its label is -1 (unlabelled), shaped like labels."
    ),
    points=2,
    reference=voxel_weights_reference,
    public_cases=_weights_public,
    hidden_cases=_weights_hidden,
    mistakes=VOXEL_WEIGHT_MISTAKES,
)


# --- 3. The weighted softmax loss of sparse annotation --------------------------------------------


def sparse_cross_entropy_reference(logits: Tensor, labels: Tensor, class_weights: Tensor) -> Tensor:
    """By ``losses.cross_entropy(weight=class_weights, ignore_index=-1)``: 0 when nothing is
    annotated."""
    return losses.cross_entropy(logits, labels, weight=class_weights, ignore_index=UNLABELED)


def _terms(
    logits: Tensor, labels: Tensor, class_weights: Tensor, dim: int = 1
) -> tuple[Tensor, Tensor]:
    """(w_i, -log p_{i, y_i}) of every voxel."""
    log_p = F.log_softmax(logits, dim=dim)
    nll = -log_p.gather(1, labels.clamp(min=0).unsqueeze(1)).squeeze(1)
    return voxel_weights_reference(labels, class_weights), nll


def _divided_by(normaliser: str) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    def loss(logits: Tensor, labels: Tensor, class_weights: Tensor) -> Tensor:
        w, nll = _terms(logits, labels, class_weights)
        total = (w * nll).sum()
        n = {
            "annotated": int((labels != UNLABELED).sum()),
            "all": labels.numel(),
            "one": 1,
        }[normaliser]
        return total / n if n else total * 0

    return loss


def _over_last_axis(logits: Tensor, labels: Tensor, class_weights: Tensor) -> Tensor:
    w, nll = _terms(logits, labels, class_weights, dim=-1)
    return (w * nll).sum() / w.sum() if w.sum() > 0 else (w * nll).sum()


SPARSE_LOSS_MISTAKES = (
    Mistake(
        "divides by the number of annotated voxels: the weighted mean divides by the sum of the "
        "weights, Σ w_i (-log p_i) / Σ w_i, as F.cross_entropy does with class weights",
        _divided_by("annotated"),
    ),
    Mistake(
        "averages over every voxel, the unlabelled ones too: they must not count, neither in the "
        "sum nor in the denominator; divide by the sum of the weights",
        _divided_by("all"),
    ),
    Mistake(
        "sums the weighted losses without dividing by the sum of the weights: the loss then grows "
        "with the number of annotated voxels",
        _divided_by("one"),
    ),
    Mistake(
        "takes the softmax over the last axis; the classes are axis 1 of the logits (N, C, ...)",
        _over_last_axis,
    ),
    Mistake(
        "is NaN when no voxel is annotated (0 / 0); a volume without annotation has nothing to "
        "teach: return 0 there (and so a zero gradient)",
        lambda logits, labels, class_weights: F.cross_entropy(
            logits, labels, weight=class_weights, ignore_index=UNLABELED
        ),
    ),
)


def _sparse_loss_public() -> list[Case]:
    logits = torch.tensor(
        [
            [[2.0, -1.0, 0.5, 0.0], [0.3, 1.2, -0.7, 2.2]],
            [[-0.5, 0.8, 1.5, -1.0], [1.1, -0.2, 0.4, 0.0]],
            [[0.1, 0.0, -2.0, 1.0], [-1.0, 0.6, 0.9, -0.3]],
        ],
        dtype=torch.float64,
    )[None]  # (1, 3 classes, 2, 4)
    labels = torch.tensor([[[0, -1, 2, -1], [1, -1, 0, 0]]])
    return [
        Case(
            "a 2 x 4 slice with three unlabelled voxels, 3 classes, weights [0.4, 1.5, 6.0]",
            logits,
            labels,
            _WEIGHTS,
        ),
        Case(
            "the same slice with nothing annotated",
            logits,
            torch.full_like(labels, UNLABELED),
            _WEIGHTS,
        ),
    ]


def _sparse_loss_hidden(gen: torch.Generator) -> list[Case]:
    logits = 2 * torch.randn(2, 4, 3, 4, 5, generator=gen, dtype=torch.float64)
    weights = 0.2 + 5 * torch.rand(4, generator=gen, dtype=torch.float64)
    labels = _random_sparse_labels(gen, (2, 3, 4, 5), 4)
    return [
        Case("a random batch of two 3 x 4 x 5 volumes, 4 classes", logits, labels, weights),
        Case(
            "the same batch with nothing annotated",
            logits,
            torch.full_like(labels, UNLABELED),
            weights,
        ),
    ]


SPARSE_CROSS_ENTROPY = Exercise(
    name="sparse_cross_entropy",
    chapter=CHAPTER,
    number=3,
    task=(
        "write sparse_cross_entropy(logits, labels, class_weights): the weighted softmax "
        "cross-entropy Σ w_i (-log p_{i, y_i}) / Σ w_i of logits (N, C, ...) and labels (N, ...), "
        "with w_i from voxel_weights (0 where the label is -1), and 0 when nothing is annotated."
    ),
    points=2,
    reference=sparse_cross_entropy_reference,
    public_cases=_sparse_loss_public,
    hidden_cases=_sparse_loss_hidden,
    mistakes=SPARSE_LOSS_MISTAKES,
)

register(PAPER_PARAMETERS, VOXEL_WEIGHTS, SPARSE_CROSS_ENTROPY)
