"""Graded exercises of chapter 05, improving the U-Net and TernausNet: dropout in training and in
evaluation, one step of batch normalisation, squeeze-and-excitation, and TernausNet's loss.

The references are PyTorch's own layers (``F.batch_norm``) or the package's
(``blocks.se.SqueezeExcitation``, ``losses.bce_minus_log_jaccard``), except for dropout, whose
random mask the exercise takes as an argument (``u``) so that an answer can be checked.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from course_lib import losses
from course_lib.blocks.se import SqueezeExcitation
from course_lib.classroom.exercise import Case, Exercise, Mistake, register

Tensor = torch.Tensor
CHAPTER = "05_improvements_ternausnet"


# --- 1. Dropout, in training and in evaluation ----------------------------------------------------


def inverted_dropout_reference(x: Tensor, u: Tensor, p: float, training: bool) -> Tensor:
    """``x / (1 - p)`` where ``u >= p`` and 0 elsewhere while training; ``x`` in evaluation."""
    if not training:
        return x.clone()
    keep = (u >= p).to(x.dtype)
    return x * keep / (1 - p)


def _dropout(
    in_eval: bool = False,
    train_scale: Callable[[float], float] = lambda p: 1 / (1 - p),
    eval_scale: Callable[[float], float] = lambda p: 1.0,
    keep_below: bool = False,
) -> Callable[..., Tensor]:
    """Dropouts that differ from the reference in one way, for the known mistakes."""

    def dropout(x: Tensor, u: Tensor, p: float, training: bool) -> Tensor:
        keep = ((u < p) if keep_below else (u >= p)).to(x.dtype)
        if training:
            return x * keep * train_scale(p)
        return x * keep * train_scale(p) if in_eval else x * eval_scale(p)

    return dropout


DROPOUT_MISTAKES = (
    Mistake(
        "drops in evaluation mode too: model.eval() switches dropout off, so that a prediction is "
        "deterministic and uses the whole net; in evaluation dropout returns x unchanged",
        _dropout(in_eval=True),
    ),
    Mistake(
        "does not scale the kept values: while training, divide them by 1 - p, so that the "
        "expected output equals x and nothing needs to change in evaluation",
        _dropout(train_scale=lambda p: 1.0),
    ),
    Mistake(
        "is the original dropout (Srivastava et al. 2014), scaling by 1 - p in evaluation; "
        "PyTorch's nn.Dropout and the exercise use inverted dropout: divide by 1 - p while "
        "training, and leave x alone in evaluation",
        _dropout(train_scale=lambda p: 1.0, eval_scale=lambda p: 1 - p),
    ),
    Mistake(
        "keeps the elements with u < p, a fraction p of them: p is the probability of dropping "
        "an element, so keep those with u >= p",
        _dropout(keep_below=True),
    ),
    Mistake(
        "divides by p: the kept fraction is 1 - p, so divide by 1 - p",
        _dropout(train_scale=lambda p: 1 / p),
    ),
)

_DROPOUT_X = torch.tensor(
    [[1.0, -2.0, 3.0, 0.5, -1.5], [2.5, 4.0, -0.5, 1.0, -3.0]], dtype=torch.float64
)
_DROPOUT_U = torch.tensor(
    [[0.05, 0.62, 0.31, 0.93, 0.48], [0.77, 0.12, 0.55, 0.36, 0.84]], dtype=torch.float64
)


def _dropout_public() -> list[Case]:
    return [
        Case("a 2 x 5 tensor, p = 0.4, training=False", _DROPOUT_X, _DROPOUT_U, 0.4, False),
        Case("the same tensor, p = 0.4, training=True", _DROPOUT_X, _DROPOUT_U, 0.4, True),
    ]


def _dropout_hidden(gen: torch.Generator) -> list[Case]:
    x = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    u = torch.rand(4, 6, generator=gen, dtype=torch.float64)
    p = 0.2 + 0.25 * float(torch.rand((), generator=gen))  # never 0.5, where 1 - p = p
    u[0, :2] = torch.tensor([p / 2, (1 + p) / 2])  # one element dropped, one kept, at least
    return [
        Case(f"a random 4 x 6 tensor, p = {p:.3f}, training=False", x, u, p, False),
        Case(f"the same, p = {p:.3f}, training=True", x, u, p, True),
    ]


INVERTED_DROPOUT = Exercise(
    name="inverted_dropout",
    chapter=CHAPTER,
    number=1,
    task=(
        "write inverted_dropout(x, u, p, training): while training, 0 where the uniform noise "
        "u < p and x / (1 - p) elsewhere; in evaluation (training=False), x unchanged."
    ),
    points=1,
    reference=inverted_dropout_reference,
    public_cases=_dropout_public,
    hidden_cases=_dropout_hidden,
    mistakes=DROPOUT_MISTAKES,
)


# --- 2. One step of batch normalisation -----------------------------------------------------------

Stats = tuple[Tensor, Tensor, Tensor]


def batch_norm_step_reference(
    x: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Stats:
    """``(y, new running mean, new running variance)``, by ``F.batch_norm`` (no affine)."""
    mean, var = running_mean.clone(), running_var.clone()
    y = F.batch_norm(x, mean, var, training=training, momentum=momentum, eps=eps)
    return y, mean, var


def _batch_norm(
    normalise_with: str = "own mode",
    axes: tuple[int, ...] = (0, 2, 3),
    normalise_unbiased: bool = False,
    running_unbiased: bool = True,
    momentum_on_batch: bool = True,
    update_in_eval: bool = False,
) -> Callable[..., Stats]:
    """Batch norms that differ from PyTorch's in one way, for the known mistakes.

    ``normalise_with``: ``"own mode"`` (batch statistics while training, running ones in
    evaluation), ``"batch"`` (always) or ``"running"`` (always).
    """

    def step(
        x: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        training: bool,
        momentum: float = 0.1,
        eps: float = 1e-5,
    ) -> Stats:
        def shaped(t: Tensor) -> Tensor:
            return t.reshape(1, -1, 1, 1)

        mean = x.mean(dim=(0, 2, 3))
        n = x.numel() // x.shape[1]
        biased = x.var(dim=(0, 2, 3), correction=0)
        use_batch = normalise_with == "batch" or (normalise_with == "own mode" and training)
        if use_batch:
            m = x.mean(dim=axes, keepdim=True)
            v = x.var(dim=axes, correction=int(normalise_unbiased), keepdim=True)
        else:
            m, v = shaped(running_mean), shaped(running_var)
        y = (x - m) / torch.sqrt(v + eps)
        new_mean, new_var = running_mean.clone(), running_var.clone()
        if training or update_in_eval:
            var = biased * n / (n - 1) if running_unbiased else biased
            a, b = (1 - momentum, momentum) if momentum_on_batch else (momentum, 1 - momentum)
            new_mean, new_var = a * running_mean + b * mean, a * running_var + b * var
        return y, new_mean, new_var

    return step


BATCH_NORM_MISTAKES = (
    Mistake(
        "normalises with the running statistics while training: in training mode batch norm "
        "uses the batch's own mean and variance (and updates the running ones from them)",
        _batch_norm(normalise_with="running"),
    ),
    Mistake(
        "normalises every image by its own statistics: that is instance normalisation. Batch "
        "norm takes one mean and variance per channel over the batch and all pixels (axes 0, 2, 3)",
        _batch_norm(axes=(2, 3)),
    ),
    Mistake(
        "normalises with the unbiased variance: batch norm divides by the biased one "
        "(sum of squares / n); only the running variance is updated with the unbiased one",
        _batch_norm(normalise_unbiased=True),
    ),
    Mistake(
        "updates the running variance with the biased batch variance: PyTorch updates it with "
        "the unbiased one (sum of squares / (n - 1))",
        _batch_norm(running_unbiased=False),
    ),
    Mistake(
        "weighs the running statistics the other way round: PyTorch's momentum is the weight of "
        "the new batch, running = (1 - momentum) running + momentum batch (Keras and TensorFlow "
        "call the other weight momentum)",
        _batch_norm(momentum_on_batch=False),
    ),
    Mistake(
        "normalises with the batch's statistics in evaluation mode: after model.eval() batch norm "
        "uses the running averages, so that a prediction does not depend on the other images of "
        "the batch",
        _batch_norm(normalise_with="batch"),
    ),
    Mistake(
        "updates the running statistics in evaluation mode: they change only while training "
        "(model.train()); evaluation leaves them as they are",
        _batch_norm(update_in_eval=True),
    ),
)


def _batch_norm_inputs() -> tuple[Tensor, Tensor, Tensor]:
    x = torch.arange(24, dtype=torch.float64).reshape(3, 2, 2, 2)
    x = (x * 7 % 11 - 4.0) * torch.tensor([1.0, 0.5], dtype=torch.float64).view(1, 2, 1, 1)
    return x, torch.tensor([0.5, -1.0], dtype=torch.float64), torch.tensor([2.0, 0.5]).double()


def _batch_norm_public() -> list[Case]:
    x, mean, var = _batch_norm_inputs()
    return [
        Case(
            "3 images of 2 channels, 2 x 2 px, running mean [0.5, -1], variance [2, 0.5], "
            "training=True",
            x,
            mean,
            var,
            True,
        ),
        Case("the same, training=False", x, mean, var, False),
        Case("the same, training=True, momentum=0.3", x, mean, var, True, momentum=0.3),
    ]


def _batch_norm_hidden(gen: torch.Generator) -> list[Case]:
    x = 2 * torch.randn(4, 3, 3, 2, generator=gen, dtype=torch.float64) + 1
    mean = torch.randn(3, generator=gen, dtype=torch.float64)
    var = 0.5 + torch.rand(3, generator=gen, dtype=torch.float64)
    momentum = 0.05 + 0.3 * float(torch.rand((), generator=gen))
    return [
        Case(
            f"a random batch, momentum {momentum:.3f}, training=True",
            x,
            mean,
            var,
            True,
            momentum=momentum,
        ),
        Case("the same, training=False", x, mean, var, False),
    ]


BATCH_NORM_STEP = Exercise(
    name="batch_norm_step",
    chapter=CHAPTER,
    number=2,
    task=(
        "write batch_norm_step(x, running_mean, running_var, training, momentum=0.1, eps=1e-5): "
        "batch normalisation of an (N, C, H, W) batch without the learned scale and shift, as "
        "PyTorch's nn.BatchNorm2d computes it, returning (y, new running mean, new running var)."
    ),
    points=2,
    reference=batch_norm_step_reference,
    public_cases=_batch_norm_public,
    hidden_cases=_batch_norm_hidden,
    mistakes=BATCH_NORM_MISTAKES,
)


# --- 3. Squeeze-and-excitation --------------------------------------------------------------------


def squeeze_excitation_reference(
    x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor
) -> Tensor:
    """``x * sigmoid(W2 relu(W1 mean(x) + b1) + b2)``, by ``blocks.se.SqueezeExcitation``."""
    channels, hidden = w1.shape[1], w1.shape[0]
    se = SqueezeExcitation(channels, reduction=channels // hidden).to(x.dtype)
    se.excitation.load_state_dict({"0.weight": w1, "0.bias": b1, "2.weight": w2, "2.bias": b2})
    with torch.no_grad():
        return se(x)


def _se(
    squeeze: Callable[[Tensor], Tensor] = lambda x: x.mean(dim=(2, 3)),
    hidden: Callable[[Tensor], Tensor] = torch.relu,
    gate: Callable[[Tensor], Tensor] = torch.sigmoid,
    combine: Callable[[Tensor, Tensor], Tensor] = torch.mul,
) -> Callable[..., Tensor]:
    """SE blocks with one step changed, for the known mistakes."""

    def se(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
        s = gate(F.linear(hidden(F.linear(squeeze(x), w1, b1)), w2, b2))
        return combine(x, s[:, :, None, None])

    return se


SE_MISTAKES = (
    Mistake(
        "squeezes with the maximum: SE squeezes each channel to its global average "
        "(Hu et al., Sec. 3.1), x.mean over the pixels",
        _se(squeeze=lambda x: x.amax(dim=(2, 3))),
    ),
    Mistake(
        "gates with a softmax over the channels, so that the gates compete and sum to 1; SE gives "
        "each channel its own gate in (0, 1) with a sigmoid",
        _se(gate=lambda z: torch.softmax(z, dim=1)),
    ),
    Mistake(
        "has no ReLU between the two layers: W2 relu(W1 z + b1) + b2, else the two layers are one "
        "linear map",
        _se(hidden=lambda z: z),
    ),
    Mistake(
        "adds the gates to x: SE rescales each channel, x * s",
        _se(combine=torch.add),
    ),
    Mistake(
        "returns the gates s, shape (N, C), not the rescaled features x * s",
        _se(combine=lambda x, s: s[:, :, 0, 0]),
    ),
)


def _se_inputs(gen: torch.Generator, n: int, channels: int, hidden: int) -> tuple[Tensor, ...]:
    x = torch.randn(n, channels, 3, 4, generator=gen, dtype=torch.float64)
    x[:, :, 0, 0] += 3.0  # a bright pixel per channel: its maximum is far from its mean
    w1 = torch.randn(hidden, channels, generator=gen, dtype=torch.float64)
    b1 = 0.1 * torch.randn(hidden, generator=gen, dtype=torch.float64)
    w2 = torch.randn(channels, hidden, generator=gen, dtype=torch.float64)
    b2 = 0.1 * torch.randn(channels, generator=gen, dtype=torch.float64)
    return x, w1, b1, w2, b2


def _se_public() -> list[Case]:
    inputs = _se_inputs(torch.Generator().manual_seed(5), 2, 8, 2)
    return [Case("2 maps of 8 channels, 3 x 4 px, 2 hidden units (r = 4)", *inputs)]


def _se_hidden(gen: torch.Generator) -> list[Case]:
    hidden = int(torch.randint(2, 4, (), generator=gen))
    channels = hidden * int(torch.randint(2, 5, (), generator=gen))
    inputs = _se_inputs(gen, 3, channels, hidden)
    return [Case(f"3 random maps of {channels} channels, {hidden} hidden units", *inputs)]


SQUEEZE_EXCITATION = Exercise(
    name="squeeze_excitation",
    chapter=CHAPTER,
    number=3,
    task=(
        "write squeeze_excitation(x, w1, b1, w2, b2): squeeze-and-excitation of an (N, C, H, W) "
        "map, each channel scaled by its gate s = sigmoid(w2 relu(w1 z + b1) + b2), z the "
        "channels' means over the pixels."
    ),
    points=1,
    reference=squeeze_excitation_reference,
    public_cases=_se_public,
    hidden_cases=_se_hidden,
    mistakes=SE_MISTAKES,
)


# --- 4. TernausNet's loss -------------------------------------------------------------------------


def ternaus_loss_reference(logits: Tensor, target: Tensor) -> Tensor:
    """BCE - log J over all elements, by ``losses.bce_minus_log_jaccard``."""
    return losses.bce_minus_log_jaccard(
        logits.reshape(1, 1, 1, -1), target.reshape(1, 1, 1, -1).to(logits.dtype)
    )


def _bce(logits: Tensor, target: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


def _soft_jaccard(logits: Tensor, target: Tensor) -> Tensor:
    p, g = torch.sigmoid(logits), target.to(logits.dtype)
    intersection = (p * g).sum()
    return intersection / (p.sum() + g.sum() - intersection)


def _soft_dice(logits: Tensor, target: Tensor) -> Tensor:
    p, g = torch.sigmoid(logits), target.to(logits.dtype)
    return 2 * (p * g).sum() / (p.sum() + g.sum())


def _log_of_sigmoid_bce(logits: Tensor, target: Tensor) -> Tensor:
    p, g = torch.sigmoid(logits), target.to(logits.dtype)
    return -(g * torch.log(p) + (1 - g) * torch.log(1 - p)).mean()


TERNAUS_MISTAKES = (
    Mistake(
        "subtracts J, not log J: TernausNet's loss is BCE - log J, whose pull grows without bound "
        "as the overlap vanishes (the gradient of -log J is that of -J divided by J)",
        lambda x, t: _bce(x, t) - _soft_jaccard(x, t),
    ),
    Mistake(
        "adds the Jaccard loss 1 - J; TernausNet subtracts log J: BCE - log J",
        lambda x, t: _bce(x, t) + 1 - _soft_jaccard(x, t),
    ),
    Mistake(
        "uses the Dice coefficient 2 Σ p g / (Σ p + Σ g) where TernausNet takes the Jaccard index "
        "J = Σ p g / (Σ p + Σ g - Σ p g)",
        lambda x, t: _bce(x, t) - torch.log(_soft_dice(x, t)),
    ),
    Mistake(
        "sums the cross-entropy over the pixels: TernausNet averages it, so that BCE and -log J "
        "have comparable sizes whatever the image size",
        lambda x, t: _bce(x, t) * x.numel() - torch.log(_soft_jaccard(x, t)),
    ),
    Mistake(
        "takes the log of sigmoid probabilities: at a logit of 50 the probability rounds to 1 and "
        "log(1 - p) is -inf, so one confidently wrong pixel makes the loss infinite. Use "
        "F.binary_cross_entropy_with_logits (chapter 03, log-sigmoid)",
        lambda x, t: _log_of_sigmoid_bce(x, t) - torch.log(_soft_jaccard(x, t)),
    ),
    Mistake(
        "computes the BCE from probabilities with F.binary_cross_entropy, which clamps each log at "
        "-100: a confidently wrong pixel costs 100 whatever its logit. Use "
        "F.binary_cross_entropy_with_logits on the logits",
        lambda x, t: (
            F.binary_cross_entropy(torch.sigmoid(x), t.to(x.dtype)) - torch.log(_soft_jaccard(x, t))
        ),
    ),
)

_TERNAUS_LOGITS = torch.tensor(
    [[2.0, -1.0, 0.5, 3.0], [-2.5, 1.5, -0.3, -4.0]], dtype=torch.float64
)
_TERNAUS_TARGET = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]], dtype=torch.float64)


def _ternaus_public() -> list[Case]:
    extreme = _TERNAUS_LOGITS.clone()
    extreme[0, 1] = 200.0  # a background pixel the net is certain is foreground
    return [
        Case("a 2 x 4 map of moderate logits", _TERNAUS_LOGITS, _TERNAUS_TARGET),
        Case(
            "the same with one confidently wrong pixel (logit 200, target 0)",
            extreme,
            _TERNAUS_TARGET,
        ),
    ]


def _ternaus_hidden(gen: torch.Generator) -> list[Case]:
    x = 3 * torch.randn(2, 5, 6, generator=gen, dtype=torch.float64)
    t = (torch.rand(2, 5, 6, generator=gen) > 0.5).double()
    t[0, 0, :2] = torch.tensor([0.0, 1.0])
    far = x.clone()
    far[0, 0, :2] = torch.tensor([300.0, -300.0])  # both confidently wrong
    return [
        Case("random logits and targets, 2 x 5 x 6", x, t),
        Case("the same, two wrong by far", far, t),
    ]


TERNAUS_LOSS = Exercise(
    name="ternaus_loss",
    chapter=CHAPTER,
    number=4,
    task=(
        "write ternaus_loss(logits, target): TernausNet's loss BCE - log J, the binary "
        "cross-entropy of the logits averaged over all elements minus the log of the soft "
        "Jaccard index J = Σ p t / (Σ p + Σ t - Σ p t) of p = sigmoid(logits), finite for any "
        "logit."
    ),
    points=2,
    reference=ternaus_loss_reference,
    public_cases=_ternaus_public,
    hidden_cases=_ternaus_hidden,
    mistakes=TERNAUS_MISTAKES,
)

register(INVERTED_DROPOUT, BATCH_NORM_STEP, SQUEEZE_EXCITATION, TERNAUS_LOSS)
