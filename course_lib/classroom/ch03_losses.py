"""Graded exercises of chapter 03, losses: the Dice gradient, focal loss from log-sigmoid, Tversky.

Each reference is computed another way than the chapter's solution (autograd, or the package's
loss), so that the two check each other; each mistake is one students make, or the notes made.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from course_lib import losses
from course_lib.classroom.exercise import Case, Exercise, Mistake, register

Tensor = torch.Tensor
CHAPTER = "03_losses"


# --- 1. The gradient of the soft Dice coefficient -------------------------------------------------


def dice_gradient_reference(p: Tensor, g: Tensor) -> Tensor:
    """∂D/∂p of the soft Dice coefficient ``D = 2 Σ p g / (Σ p + Σ g)``, by autograd."""
    p = p.detach().double().requires_grad_(True)
    d = 2 * (p * g).sum() / (p.sum() + g.sum())
    (grad,) = torch.autograd.grad(d, p)
    return grad


def _dice_terms(p: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    return (p * g).sum(), p.sum() + g.sum()


def _no_square(p: Tensor, g: Tensor) -> Tensor:
    i, s = _dice_terms(p, g)
    return 2 * g / s - 2 * i / s


def _no_second_term(p: Tensor, g: Tensor) -> Tensor:
    _, s = _dice_terms(p, g)
    return 2 * g / s


def _plus_second_term(p: Tensor, g: Tensor) -> Tensor:
    i, s = _dice_terms(p, g)
    return 2 * g / s + 2 * i / s**2


def _notes_one_pixel(p: Tensor, g: Tensor) -> Tensor:
    return (g**2 + 2 * p * g) / (p + g) ** 2


DICE_MISTAKES = (
    Mistake(
        "lacks the square of the denominator: the quotient rule gives d/dp_i (2I/S) = "
        "2 g_i / S - 2 I / S², with I = Σ p g and S = Σ p + Σ g",
        _no_square,
    ),
    Mistake(
        "keeps only 2 g_i / S: the denominator S = Σ p + Σ g depends on p_i too, which adds the "
        "quotient rule's second term - 2 I / S²",
        _no_second_term,
    ),
    Mistake(
        "adds the quotient rule's second term instead of subtracting it: 2 g_i / S - 2 I / S²",
        _plus_second_term,
    ),
    Mistake(
        "is the gradient of the Dice loss 1 - D; the exercise asks for the coefficient D",
        lambda p, g: -dice_gradient_reference(p, g),
    ),
    Mistake(
        "is the notes' one-pixel formula (g² + 2pg)/(p + g)², which is wrong even for one pixel "
        "(section 3's errata) and ignores the other pixels of the image",
        _notes_one_pixel,
    ),
)


def _dice_public() -> list[Case]:
    p = torch.tensor([[0.9, 0.6, 0.2], [0.7, 0.1, 0.3]], dtype=torch.float64)
    g = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    return [
        Case(
            "a 2 x 3 image with p = [[.9, .6, .2], [.7, .1, .3]] and g = [[1, 1, 0], [1, 0, 0]]",
            p,
            g,
        ),
        Case(
            "one pixel, p = 0.3, g = 1",
            torch.tensor([0.3], dtype=torch.float64),
            torch.ones(1, dtype=torch.float64),
        ),
    ]


def _dice_hidden(gen: torch.Generator) -> list[Case]:
    p = torch.rand(6, 7, generator=gen, dtype=torch.float64).clamp(0.01, 0.99)
    g = (torch.rand(6, 7, generator=gen) > 0.6).double()
    g[0, 0] = 1.0  # never an empty target
    soft = torch.rand(16, generator=gen, dtype=torch.float64)
    return [
        Case("a random 6 x 7 image", p, g),
        Case(
            "a soft target (g in [0, 1])", torch.rand(16, generator=gen, dtype=torch.float64), soft
        ),
    ]


DICE_GRADIENT = Exercise(
    name="dice_gradient",
    chapter=CHAPTER,
    number=1,
    task=(
        "write dice_gradient(p, g), the gradient with respect to every p_i of the soft Dice "
        "coefficient D = 2 Σ p g / (Σ p + Σ g) of a whole image, as a tensor shaped like p."
    ),
    points=2,
    reference=dice_gradient_reference,
    public_cases=_dice_public,
    hidden_cases=_dice_hidden,
    mistakes=DICE_MISTAKES,
)


# --- 2. The focal loss from log-sigmoid -----------------------------------------------------------


def focal_loss_reference(x: Tensor, t: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Per-element sigmoid focal loss, by ``course_lib.losses.focal_loss``."""
    shape = x.shape
    loss = losses.focal_loss(
        x.reshape(1, 1, 1, -1),
        t.reshape(1, 1, 1, -1).to(x.dtype),
        alpha=alpha,
        gamma=gamma,
        reduction="none",
    )
    return loss.reshape(shape)


def _focal_from_probabilities(
    log_p: Callable[[Tensor], Tensor], alpha_on: str = "t", focus: str = "1-pt"
) -> Callable[..., Tensor]:
    """Focal losses written from p (some of them wrong), for the known mistakes."""

    def loss(x: Tensor, t: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
        p = torch.sigmoid(x)
        p_t = t * p + (1 - t) * (1 - p)
        log_pt = t * log_p(x) + (1 - t) * log_p(-x)
        a = {
            "t": t * alpha + (1 - t) * (1 - alpha),
            "swapped": t * (1 - alpha) + (1 - t) * alpha,
            "all": torch.full_like(x, alpha),
            "none": torch.ones_like(x),
        }[alpha_on]
        factor = {"1-pt": 1 - p_t, "pt": p_t, "1-p": 1 - p, "1": torch.ones_like(x)}[focus]
        return -a * factor**gamma * log_pt

    return loss


def _log_of_sigmoid(x: Tensor) -> Tensor:
    return torch.log(torch.sigmoid(x))


def _log_of_pt(clip: float = 0.0) -> Callable[..., Tensor]:
    """The focal loss as the notes write it: the log of p_t computed from p = sigmoid(x), with p
    clipped to [clip, 1 - clip]."""

    def loss(x: Tensor, t: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
        p = torch.sigmoid(x).clamp(clip, 1 - clip)
        p_t = t * p + (1 - t) * (1 - p)
        a = t * alpha + (1 - t) * (1 - alpha)
        return -a * (1 - p_t) ** gamma * torch.log(p_t)

    return loss


LOG_OF_PROBABILITY = (
    "takes the log of a probability (log(sigmoid(x)), log(1 - p) or log(p_t)): at a logit of "
    "±1e4 the probability rounds to 0 and its log is -inf, so a confidently wrong pixel gets an "
    "infinite loss (and NaN gradients). Compute log p = F.logsigmoid(x) and "
    "log(1 - p) = F.logsigmoid(-x) from the logits"
)

FOCAL_MISTAKES = (
    Mistake(LOG_OF_PROBABILITY, _log_of_pt()),
    Mistake(LOG_OF_PROBABILITY, _focal_from_probabilities(_log_of_sigmoid)),
    Mistake(
        "clips p to [1e-3, 0.999] as the notes do: beyond the clip the loss stops growing and "
        "its gradient is 0, exactly for the confidently wrong pixels; take log p from "
        "F.logsigmoid(x) instead of clipping",
        _log_of_pt(clip=1e-3),
    ),
    Mistake(
        "swaps α and 1 - α: α_t is α on the positives (t = 1) and 1 - α on the negatives "
        "(Lin et al. 2017, eq. 5)",
        _focal_from_probabilities(F.logsigmoid, alpha_on="swapped"),
    ),
    Mistake(
        "weighs every pixel by α: the negatives (t = 0) take 1 - α",
        _focal_from_probabilities(F.logsigmoid, alpha_on="all"),
    ),
    Mistake(
        "has no α_t at all: multiply by α on the positives and 1 - α on the negatives",
        _focal_from_probabilities(F.logsigmoid, alpha_on="none"),
    ),
    Mistake(
        "uses p_t^γ instead of (1 - p_t)^γ: the factor must shrink the easy pixels, whose p_t "
        "is near 1",
        _focal_from_probabilities(F.logsigmoid, focus="pt"),
    ),
    Mistake(
        "uses (1 - p)^γ on every pixel: the factor is (1 - p_t)^γ, with p_t the probability of "
        "the true class (1 - p on the negatives)",
        _focal_from_probabilities(F.logsigmoid, focus="1-p"),
    ),
    Mistake(
        "has no focusing factor (1 - p_t)^γ: it is the α-weighted cross-entropy",
        _focal_from_probabilities(F.logsigmoid, focus="1"),
    ),
)

_FOCAL_LOGITS = torch.tensor([-3.0, -0.5, 0.0, 1.5, 4.0, -2.0, 0.7, 2.5], dtype=torch.float64)
_FOCAL_TARGETS = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)


def _focal_public() -> list[Case]:
    extreme = torch.tensor([-1e4, -20.0, 20.0, 1e4], dtype=torch.float64)
    return [
        Case("eight pixels with moderate logits, α = 0.25, γ = 2", _FOCAL_LOGITS, _FOCAL_TARGETS),
        Case(
            "the same pixels with α = 0.6, γ = 0.5",
            _FOCAL_LOGITS,
            _FOCAL_TARGETS,
            alpha=0.6,
            gamma=0.5,
        ),
        Case(
            "confidently wrong pixels, logits [-1e4, -20, 20, 1e4] with targets [1, 1, 0, 0]",
            extreme,
            torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64),
        ),
    ]


def _focal_hidden(gen: torch.Generator) -> list[Case]:
    x = 6 * torch.randn(5, 9, generator=gen, dtype=torch.float64)
    t = (torch.rand(5, 9, generator=gen) > 0.5).double()
    alpha = float(torch.rand((), generator=gen)) * 0.8 + 0.1
    far = torch.tensor([-5e3, -50.0, 60.0, 3e3], dtype=torch.float64)
    return [
        Case(f"a random 5 x 9 map, α = {alpha:.3f}, γ = 3", x, t, alpha=alpha, gamma=3.0),
        Case(
            "extreme logits, α = 0.25, γ = 2",
            far,
            torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64),
        ),
    ]


FOCAL_LOSS = Exercise(
    name="focal_loss_from_logits",
    chapter=CHAPTER,
    number=2,
    task=(
        "write focal_loss_from_logits(x, t, alpha=0.25, gamma=2.0), the sigmoid focal loss "
        "-α_t (1 - p_t)^γ log p_t of every element (no mean), with the logs computed from the "
        "logits by F.logsigmoid so that it stays finite for any logit."
    ),
    points=2,
    reference=focal_loss_reference,
    public_cases=_focal_public,
    hidden_cases=_focal_hidden,
    mistakes=FOCAL_MISTAKES,
)


# --- 3. The Tversky index, α on the false positives -----------------------------------------------


def tversky_index_reference(p: Tensor, g: Tensor, alpha: float, beta: float) -> Tensor:
    """``TP / (TP + α FP + β FN)`` with soft counts, as 1 - ``course_lib.losses.tversky_loss``."""
    loss = losses.tversky_loss(
        p.reshape(1, 1, 1, -1),
        g.reshape(1, 1, 1, -1).to(p.dtype),
        alpha=alpha,
        beta=beta,
        activation="none",
        smooth_nr=0.0,
        smooth_dr=0.0,
    )
    return 1 - loss


def _counts(p: Tensor, g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return (p * g).sum(), (p * (1 - g)).sum(), ((1 - p) * g).sum()


def _tversky_swapped(p: Tensor, g: Tensor, alpha: float, beta: float) -> Tensor:
    tp, fp, fn = _counts(p, g)
    return tp / (tp + beta * fp + alpha * fn)


def _dice_instead(p: Tensor, g: Tensor, alpha: float, beta: float) -> Tensor:
    tp, fp, fn = _counts(p, g)
    return 2 * tp / (2 * tp + fp + fn)


def _thresholded(p: Tensor, g: Tensor, alpha: float, beta: float) -> Tensor:
    return tversky_index_reference((p > 0.5).to(p.dtype), g, alpha, beta)


TVERSKY_MISTAKES = (
    Mistake(
        "puts α on the false negatives and β on the false positives, as the notes' code does; "
        "the Tversky paper, MONAI and segmentation_models_pytorch weigh the false positives by α "
        "and the false negatives by β (β > α buys recall)",
        _tversky_swapped,
    ),
    Mistake(
        "is the Tversky loss 1 - TP / (TP + α FP + β FN); the exercise asks for the index",
        lambda p, g, alpha, beta: 1 - tversky_index_reference(p, g, alpha, beta),
    ),
    Mistake(
        "is the Dice coefficient, the index at α = β = 0.5: use the α and β you are given",
        _dice_instead,
    ),
    Mistake(
        "thresholds p at 0.5: the soft index counts TP = Σ p g, FP = Σ p (1 - g) and "
        "FN = Σ (1 - p) g with the probabilities themselves",
        _thresholded,
    ),
)

_TVERSKY_P = torch.tensor([0.9, 0.8, 0.4, 0.3, 0.6, 0.1, 0.2, 0.05], dtype=torch.float64)
_TVERSKY_G = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)


def _tversky_public() -> list[Case]:
    return [
        Case("eight pixels, α = 0.3, β = 0.7", _TVERSKY_P, _TVERSKY_G, alpha=0.3, beta=0.7),
        Case("the same pixels, α = 0.8, β = 0.2", _TVERSKY_P, _TVERSKY_G, alpha=0.8, beta=0.2),
    ]


def _tversky_hidden(gen: torch.Generator) -> list[Case]:
    p = torch.rand(4, 6, generator=gen, dtype=torch.float64)
    g = (torch.rand(4, 6, generator=gen) > 0.5).double()
    g[0, 0] = 1.0
    alpha = float(torch.rand((), generator=gen)) * 0.3 + 0.05
    return [
        Case(
            f"a random 4 x 6 map, α = {alpha:.3f}, β = {1 - alpha:.3f}",
            p,
            g,
            alpha=alpha,
            beta=1 - alpha,
        )
    ]


TVERSKY_INDEX = Exercise(
    name="tversky_index",
    chapter=CHAPTER,
    number=3,
    task=(
        "write tversky_index(p, g, alpha, beta), the soft Tversky index TP / (TP + α FP + β FN) "
        "of probabilities p and a 0/1 target g, with α on the false positives and β on the "
        "false negatives."
    ),
    points=2,
    reference=tversky_index_reference,
    public_cases=_tversky_public,
    hidden_cases=_tversky_hidden,
    mistakes=TVERSKY_MISTAKES,
)

register(DICE_GRADIENT, FOCAL_LOSS, TVERSKY_INDEX)
