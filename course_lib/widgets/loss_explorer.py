"""The loss-gradient explorer: how each loss and its gradient respond to one pixel's prediction.

The scene is a one-dimensional image of ``n_pixels`` pixels (one sigmoid channel). A foreground
structure of ``fg_size`` pixels has target ``t``; every structure pixel is predicted with
probability ``p``; the background has target 0 and is predicted confidently right. We move the
prediction of *one* structure pixel and ask autograd for the loss of the whole image and its
gradient with respect to that pixel's probability and logit. Where a closed form exists it is
drawn over the autograd curve (dashed).

What to see: the gradient of the mean BCE w.r.t. a logit is ``(p - t) / n_pixels``, bounded and
independent of the structure's size; the Dice gradient is proportional to ``1 / (sum p + sum t)``
and explodes as the structure shrinks (move ``fg_size`` to 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets
import torch
from matplotlib.figure import Figure

from course_lib.losses import (
    binary_cross_entropy,
    dice_loss,
    focal_loss,
    hardness_weighted_dice_loss,
    jaccard_loss,
    tversky_loss,
)
from course_lib.widgets._base import InteractiveFigure

BACKGROUND_LOGIT = -12.0
"""The background is predicted right with p = sigmoid(-12) = 6e-6, so it barely enters the sums."""
LOGIT_RANGE = 7.0
"""The sweep covers logits -7..7, i.e. p from 0.0009 to 0.9991."""


@dataclass(frozen=True)
class Setting:
    """The scene and loss parameters the explorer draws (the values of its controls)."""

    t: float = 1.0
    fg_size: int = 20
    n_pixels: int = 400
    alpha: float = 0.25
    gamma: float = 2.0
    smoothing: float = 1e-5
    lam: float = 0.6


def _per_image(loss: torch.Tensor) -> torch.Tensor:
    """Per-image value of a loss computed with ``reduction="none"``: mean over all but the batch."""
    return loss.reshape(loss.shape[0], -1).mean(dim=1)


def _bce(x: torch.Tensor, g: torch.Tensor, s: Setting) -> torch.Tensor:
    return _per_image(binary_cross_entropy(x, g, reduction="none"))


def _focal(x: torch.Tensor, g: torch.Tensor, s: Setting) -> torch.Tensor:
    return _per_image(focal_loss(x, g, alpha=s.alpha, gamma=s.gamma, reduction="none"))


def _overlap(
    fn: Callable[..., torch.Tensor],
    parameters: Callable[[Setting], dict[str, object]] = lambda s: {},
) -> Callable[[torch.Tensor, torch.Tensor, Setting], torch.Tensor]:
    """A Dice-type loss per image, with the explorer's smoothing and its own ``parameters``."""

    def loss(x: torch.Tensor, g: torch.Tensor, s: Setting) -> torch.Tensor:
        smoothing = {"smooth_nr": s.smoothing, "smooth_dr": s.smoothing}
        kwargs = {"activation": "sigmoid", "reduction": "none", **smoothing, **parameters(s)}
        return _per_image(fn(x, g, **kwargs))

    return loss


# Closed forms of dL/dp_j for the moved pixel j (target t_j = t), from the image's sums.
def _bce_closed(p: torch.Tensor, sums: dict[str, torch.Tensor], s: Setting) -> torch.Tensor:
    return (p - s.t) / (p * (1 - p) * s.n_pixels)


def _dice_closed(p: torch.Tensor, sums: dict[str, torch.Tensor], s: Setting) -> torch.Tensor:
    denominator = sums["P"] + sums["G"] + s.smoothing
    return -(2 * s.t * denominator - (2 * sums["I"] + s.smoothing)) / denominator**2


def _dice_squared_closed(
    p: torch.Tensor, sums: dict[str, torch.Tensor], s: Setting
) -> torch.Tensor:
    denominator = sums["P2"] + sums["G2"] + s.smoothing
    return -(2 * s.t * denominator - (2 * sums["I"] + s.smoothing) * 2 * p) / denominator**2


def _jaccard_closed(p: torch.Tensor, sums: dict[str, torch.Tensor], s: Setting) -> torch.Tensor:
    union2 = 2 * (sums["P"] + sums["G"] - sums["I"]) + s.smoothing
    d_union2 = 2 * (1 - s.t)
    return -(2 * s.t * union2 - (2 * sums["I"] + s.smoothing) * d_union2) / union2**2


def _tversky_closed(p: torch.Tensor, sums: dict[str, torch.Tensor], s: Setting) -> torch.Tensor:
    alpha, beta = s.alpha, 1 - s.alpha
    tp = sums["I"]
    denominator = tp + alpha * (sums["P"] - tp) + beta * (sums["G"] - tp) + s.smoothing
    d_denominator = s.t + alpha * (1 - s.t) - beta * s.t
    return -(s.t * denominator - (tp + s.smoothing) * d_denominator) / denominator**2


LossFn = Callable[[torch.Tensor, torch.Tensor, Setting], torch.Tensor]
ClosedFn = Callable[[torch.Tensor, dict[str, torch.Tensor], Setting], torch.Tensor]

LOSSES: dict[str, tuple[str, LossFn, ClosedFn | None]] = {
    "bce": ("BCE", _bce, _bce_closed),
    "focal": ("focal (alpha, gamma)", _focal, None),
    "dice": ("Dice", _overlap(dice_loss), _dice_closed),
    "dice_squared": (
        "Dice, squared denominator",
        _overlap(dice_loss, lambda s: {"squared": True}),
        _dice_squared_closed,
    ),
    "jaccard": ("Jaccard", _overlap(jaccard_loss), _jaccard_closed),
    # alpha weighs the false positives, beta = 1 - alpha the false negatives
    "tversky": (
        "Tversky (alpha, 1 - alpha)",
        _overlap(tversky_loss, lambda s: {"alpha": s.alpha, "beta": 1 - s.alpha}),
        _tversky_closed,
    ),
    "hardness_dice": (
        "hardness-weighted Dice (lambda)",
        _overlap(hardness_weighted_dice_loss, lambda s: {"hardness_lambda": s.lam}),
        None,
    ),
}
"""name: (label, per-image loss of (logits, target, setting), closed-form dL/dp or None)."""


def _scene(
    x_moved: torch.Tensor, p_rest: torch.Tensor, sizes: torch.Tensor, s: Setting
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets ``(B, 1, n_pixels, 1)``: pixel 0 has logit ``x_moved``, the other
    structure pixels probability ``p_rest``, the background ``BACKGROUND_LOGIT``."""
    index = torch.arange(s.n_pixels, dtype=torch.float64)
    inside = index < sizes[:, None]
    rest = torch.where(inside, torch.logit(p_rest)[:, None], torch.tensor(BACKGROUND_LOGIT))
    logits = torch.cat([x_moved[:, None], rest[:, 1:]], dim=1)
    target = s.t * inside.to(torch.float64)
    return logits[:, None, :, None], target[:, None, :, None]


def loss_gradients(
    name: str, p: torch.Tensor, setting: Setting, sizes: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Loss of the image and its gradients w.r.t. the moved pixel, for each prediction in ``p``.

    Parameters
    ----------
    name
        A key of :data:`LOSSES`.
    p
        Probabilities (B,) of the structure pixels (float64, in (0, 1)).
    setting
        The scene and loss parameters.
    sizes
        Structure size of each of the B images; default ``setting.fg_size`` for all.

    Returns
    -------
    dict
        ``loss``, ``grad_p`` and ``grad_logit`` by autograd, and ``closed_p`` / ``closed_logit``
        (``closed_logit = closed_p * p (1 - p)``, the chain rule) where a closed form exists.
        Each is (B,).
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}")
    _, loss_fn, closed_fn = LOSSES[name]
    p = p.detach().to(torch.float64)
    if sizes is None:
        sizes = torch.full_like(p, float(setting.fg_size))
    out: dict[str, torch.Tensor] = {}
    for variable in ("p", "logit"):
        leaf = (p if variable == "p" else torch.logit(p)).clone().requires_grad_(True)
        x_moved = torch.logit(leaf) if variable == "p" else leaf
        logits, target = _scene(x_moved, p, sizes, setting)
        loss = loss_fn(logits, target, setting)
        (out[f"grad_{variable}"],) = torch.autograd.grad(loss.sum(), leaf)
        out["loss"] = loss.detach()
    if closed_fn is not None:
        probs = logits.detach().sigmoid()
        sums = {
            "I": (probs * target).sum(dim=(1, 2, 3)),
            "P": probs.sum(dim=(1, 2, 3)),
            "G": target.sum(dim=(1, 2, 3)),
            "P2": (probs**2).sum(dim=(1, 2, 3)),
            "G2": (target**2).sum(dim=(1, 2, 3)),
        }
        out["closed_p"] = closed_fn(p, sums, setting)
        out["closed_logit"] = out["closed_p"] * p * (1 - p)
    return out


def _draw(
    losses: Sequence[str],
    x_axis: str,
    p: float,
    t: float,
    fg_size: int,
    alpha: float,
    gamma: float,
    smoothing: float,
    lam: float,
    n_pixels: int,
) -> Figure:
    setting = Setting(t, fg_size, n_pixels, alpha, gamma, smoothing, lam)
    logit_grid = torch.linspace(-LOGIT_RANGE, LOGIT_RANGE, 141, dtype=torch.float64)
    p_grid = logit_grid.sigmoid()
    horizontal = p_grid if x_axis == "probability" else logit_grid
    current = p if x_axis == "probability" else float(torch.logit(torch.tensor(p)))
    sizes = torch.unique(torch.logspace(0, torch.log10(torch.tensor(n_pixels / 2)), 24).round())

    fig = Figure(figsize=(11, 7.5), layout="constrained")
    ax_loss, ax_p, ax_x, ax_size = fig.subplots(2, 2).flat
    colours = {name: f"C{i}" for i, name in enumerate(LOSSES)}
    for name in losses:
        label, colour = LOSSES[name][0], colours[name]
        curves = loss_gradients(name, p_grid, setting)
        ax_loss.plot(horizontal, curves["loss"], color=colour, label=label)
        for ax, key in ((ax_p, "p"), (ax_x, "logit")):
            ax.plot(horizontal, curves[f"grad_{key}"], color=colour, label=f"{label} (autograd)")
            if f"closed_{key}" in curves:
                ax.plot(horizontal, curves[f"closed_{key}"], color="k", ls=(0, (2, 3)), lw=1)
        by_size = loss_gradients(name, torch.full_like(sizes, p), setting, sizes)
        ax_size.loglog(sizes, by_size["grad_logit"].abs(), color=colour, marker=".", label=label)

    axis_label = "prediction p of one structure pixel" if x_axis == "probability" else "its logit x"
    for ax in (ax_loss, ax_p, ax_x):
        ax.axvline(current, color="0.5", lw=0.8)
        ax.set_xlabel(axis_label)
    ax_p.set_yscale("symlog", linthresh=1e-4)
    ax_x.set_yscale("symlog", linthresh=1e-5)
    ax_loss.set(ylabel="loss of the image", title=f"loss (target t = {t:g} on the structure)")
    ax_p.set(ylabel="dL/dp", title="gradient w.r.t. the probability (dashed: closed form)")
    ax_x.set(ylabel="dL/dx", title="gradient w.r.t. the logit (dashed: closed form)")
    ax_size.axvline(fg_size, color="0.5", lw=0.8)
    ax_size.set(
        xlabel="structure size (pixels)",
        ylabel=f"|dL/dx| at p = {p:g}",
        title="Dice-type: ~1 / (sum p + sum t); BCE: (p - t) / N",
    )
    if losses:
        ax_loss.legend(fontsize=8)
        ax_size.legend(fontsize=8)
    fig.suptitle(
        f"One pixel of a {fg_size}-pixel structure in a {n_pixels}-pixel image "
        f"(alpha={alpha:g}, gamma={gamma:g}, smoothing={smoothing:g}, lambda={lam:g})"
    )
    return fig


def loss_explorer(
    losses: Sequence[str] = ("bce", "dice", "focal"), *, n_pixels: int = 400
) -> InteractiveFigure:
    """The loss-gradient explorer: pick losses, move the prediction, target, size and parameters.

    Parameters
    ----------
    losses
        Keys of :data:`LOSSES` selected at the start.
    n_pixels
        Pixels in the image (the foreground slider goes up to half of it).

    Returns
    -------
    InteractiveFigure
        ``.show()`` in a notebook; ``.update(fg_size=1, ...)`` redraws without a browser.

    Examples
    --------
    >>> explorer = loss_explorer(("bce", "dice"))
    >>> figure = explorer.update(fg_size=2, p=0.3)
    >>> len(figure.axes)
    4
    """
    unknown = set(losses) - set(LOSSES)
    if unknown:
        raise ValueError(f"unknown loss(es) {sorted(unknown)}; choose from {sorted(LOSSES)}")
    if not isinstance(n_pixels, int) or n_pixels < 4:
        raise ValueError(f"n_pixels must be an int >= 4, got {n_pixels!r}")
    options = [(label, name) for name, (label, _, _) in LOSSES.items()]
    controls = {
        "losses": ipywidgets.SelectMultiple(options=options, value=tuple(losses), rows=7),
        "x_axis": ipywidgets.ToggleButtons(options=["probability", "logit"], description="x axis"),
        "p": ipywidgets.FloatSlider(value=0.3, min=0.01, max=0.99, step=0.01, description="p"),
        "t": ipywidgets.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="t"),
        "fg_size": ipywidgets.IntSlider(
            value=min(20, n_pixels // 2), min=1, max=n_pixels // 2, description="fg size"
        ),
        "alpha": ipywidgets.FloatSlider(value=0.25, min=0.0, max=1.0, step=0.05, description="α"),
        "gamma": ipywidgets.FloatSlider(value=2.0, min=0.0, max=5.0, step=0.25, description="γ"),
        "smoothing": ipywidgets.FloatLogSlider(
            value=1e-5, base=10, min=-5, max=1, step=0.5, description="smoothing"
        ),
        "lam": ipywidgets.FloatSlider(value=0.6, min=0.0, max=1.0, step=0.05, description="λ"),
    }

    def draw(**values: object) -> Figure:
        return _draw(n_pixels=n_pixels, **values)  # type: ignore[arg-type]

    return InteractiveFigure(draw, controls)
