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

The hardness-weighted Dice loss is not offered: in this scene every structure pixel is predicted
alike, so its weights are equal on the structure and cancel in the Dice ratio (it would draw the
Dice curves again, whatever its lambda).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from course_lib.losses import (
    binary_cross_entropy,
    dice_loss,
    focal_loss,
    jaccard_loss,
    tversky_loss,
)
from course_lib.ops.checks import check_int
from course_lib.widgets._base import TITLE, InteractiveFigure, slider, toggle_row

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
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    tversky_alpha: float = 0.3
    smoothing: float = 1e-5


def _per_image(loss: torch.Tensor) -> torch.Tensor:
    """Per-image value of a loss computed with ``reduction="none"``: mean over all but the batch."""
    return loss.reshape(loss.shape[0], -1).mean(dim=1)


def _bce(x: torch.Tensor, g: torch.Tensor, s: Setting) -> torch.Tensor:
    return _per_image(binary_cross_entropy(x, g, reduction="none"))


def _focal(x: torch.Tensor, g: torch.Tensor, s: Setting) -> torch.Tensor:
    loss = focal_loss(x, g, alpha=s.focal_alpha, gamma=s.focal_gamma, reduction="none")
    return _per_image(loss)


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
    alpha, beta = s.tversky_alpha, 1 - s.tversky_alpha
    tp = sums["I"]
    denominator = tp + alpha * (sums["P"] - tp) + beta * (sums["G"] - tp) + s.smoothing
    d_denominator = s.t + alpha * (1 - s.t) - beta * s.t
    return -(s.t * denominator - (tp + s.smoothing) * d_denominator) / denominator**2


LossFn = Callable[[torch.Tensor, torch.Tensor, Setting], torch.Tensor]
ClosedFn = Callable[[torch.Tensor, dict[str, torch.Tensor], Setting], torch.Tensor]

LOSSES: dict[str, tuple[str, LossFn, ClosedFn | None]] = {
    "bce": ("BCE", _bce, _bce_closed),
    "focal": ("focal", _focal, None),
    "dice": ("Dice", _overlap(dice_loss), _dice_closed),
    "dice_squared": (
        "Dice (squared sums)",
        _overlap(dice_loss, lambda s: {"squared": True}),
        _dice_squared_closed,
    ),
    "jaccard": ("Jaccard", _overlap(jaccard_loss), _jaccard_closed),
    # alpha weighs the false positives, beta = 1 - alpha the false negatives
    "tversky": (
        "Tversky",
        _overlap(tversky_loss, lambda s: {"alpha": s.tversky_alpha, "beta": 1 - s.tversky_alpha}),
        _tversky_closed,
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


PARAMETERS: dict[str, frozenset[str]] = {
    "focal_alpha": frozenset({"focal"}),
    "focal_gamma": frozenset({"focal"}),
    "tversky_alpha": frozenset({"tversky"}),
    "smoothing": frozenset({"dice", "dice_squared", "jaccard", "tversky"}),
}
"""Each loss parameter of :class:`Setting` and the losses that use it (its control shows only
when one of them is selected)."""

_MARGINS = {
    "left": 0.075,
    "right": 0.99,
    "bottom": 0.12,
    "top": 0.85,
    "wspace": 0.2,
    "hspace": 0.6,
}
_LINTHRESH = {"p": 1e-4, "logit": 1e-5}
"""Linear range of the symmetric-log gradient axes (a Dice gradient at p = 1 is exactly 0)."""
_CLOSED_STYLE: dict[str, Any] = {"color": "k", "ls": (0, (2, 3)), "lw": 1}


def _symlog_ticks(ax: Axes, linthresh: float) -> None:
    """At most three labelled decades each side of 0 (each tick label costs drawing time)."""
    low, high = ax.get_ylim()
    top = math.log10(max(abs(low), abs(high), linthresh))
    decades = range(round(math.log10(linthresh)), math.floor(top) + 1)
    kept = list(decades)[:: max(1, math.ceil(len(decades) / 3))]
    ticks = [
        0.0,
        *(10.0**k for k in kept if 10.0**k <= high),
        *(-(10.0**k) for k in kept if -(10.0**k) >= low),
    ]
    ax.yaxis.set_major_locator(FixedLocator(sorted(ticks)))


class _LossFigure:
    """The explorer's figure. Axes, ticks and one line per loss and panel are made once and
    updated on each draw: making them costs more than drawing them, and the explorer redraws on
    every move of a control."""

    def __init__(self, n_pixels: int) -> None:
        self.n_pixels = n_pixels
        self.figure = Figure(figsize=(9.2, 3.4))
        (self.ax_loss, self.ax_p), (self.ax_x, self.ax_size) = self.figure.subplots(
            2, 2, gridspec_kw=_MARGINS
        )
        self.ax_p.set_yscale("symlog", linthresh=_LINTHRESH["p"])
        self.ax_x.set_yscale("symlog", linthresh=_LINTHRESH["logit"])
        self.ax_size.set(xscale="log", yscale="log")
        self.ax_p.set_title("dL/dp, gradient w.r.t. one pixel's probability", **TITLE)
        self.ax_x.set_title("dL/dx, gradient w.r.t. its logit", **TITLE)
        self.ax_size.set_xlabel("structure size (pixels)", fontsize=8, labelpad=1)
        for ax in self.figure.axes:
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_minor_locator(NullLocator())
                if axis.get_scale() != "linear":  # plain numbers: log labels are slow to draw
                    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.tick_params(labelsize=7)
        self.lines: dict[tuple[str, str], Line2D] = {}
        for i, (name, (label, _, closed)) in enumerate(LOSSES.items()):
            style = {"color": f"C{i}", "label": label}
            self.lines[name, "loss"] = self.ax_loss.plot([], [], **style)[0]
            self.lines[name, "grad_p"] = self.ax_p.plot([], [], **style)[0]
            self.lines[name, "grad_logit"] = self.ax_x.plot([], [], **style)[0]
            self.lines[name, "size"] = self.ax_size.plot([], [], marker=".", ms=3, **style)[0]
            if closed is not None:
                self.lines[name, "closed_p"] = self.ax_p.plot([], [], **_CLOSED_STYLE)[0]
                self.lines[name, "closed_logit"] = self.ax_x.plot([], [], **_CLOSED_STYLE)[0]
        self.markers = [ax.axvline(0.0, color="0.5", lw=0.8) for ax in self.figure.axes]
        # Moving p moves the markers and the size panel only: they are redrawn on each draw,
        # over the other panels as last drawn (see figure_png).
        for artist in (*self.markers[:3], self.ax_size):
            artist.set_animated(True)
        self.legend_for: tuple[str, ...] | None = None
        self.drawn: tuple[tuple[str, ...], str, Setting] | None = None

    def __call__(
        self,
        losses: Sequence[str],
        x_axis: str,
        p: float,
        t: float,
        fg_size: int,
        focal_alpha: float,
        focal_gamma: float,
        tversky_alpha: float,
        smoothing: float,
    ) -> Figure:
        setting = Setting(
            t, fg_size, self.n_pixels, focal_alpha, focal_gamma, tversky_alpha, smoothing
        )
        if (tuple(losses), x_axis, setting) != self.drawn:  # the curves do not depend on p
            self._curves(losses, x_axis, setting)
        self._sizes(losses, p, setting)
        current = p if x_axis == "probability" else math.log(p / (1 - p))
        for marker, at in zip(self.markers, (current, current, current, fg_size), strict=True):
            marker.set_xdata([at, at])
        return self.figure

    def _curves(self, losses: Sequence[str], x_axis: str, setting: Setting) -> None:
        """The loss and its gradients against the prediction (three panels)."""
        logit_grid = torch.linspace(-LOGIT_RANGE, LOGIT_RANGE, 141, dtype=torch.float64)
        p_grid = logit_grid.sigmoid()
        horizontal = p_grid if x_axis == "probability" else logit_grid
        for (_, key), line in self.lines.items():
            if key != "size":
                line.set_visible(False)
        for name in losses:
            for key, values in loss_gradients(name, p_grid, setting).items():
                if (name, key) in self.lines:
                    self.lines[name, key].set_data(horizontal, values)
                    self.lines[name, key].set_visible(True)
        x_label = "prediction p of the structure" if x_axis == "probability" else "its logit x"
        for ax in (self.ax_loss, self.ax_p, self.ax_x):
            ax.set_xlabel(x_label, fontsize=8, labelpad=1)
            ax.relim(visible_only=True)
            ax.autoscale_view()
        self.ax_loss.set_title(
            f"loss of the image (target t = {setting.t:g} on the structure)", **TITLE
        )
        _symlog_ticks(self.ax_p, _LINTHRESH["p"])
        _symlog_ticks(self.ax_x, _LINTHRESH["logit"])
        self._legend(tuple(losses))
        self.drawn = (tuple(losses), x_axis, setting)

    def _sizes(self, losses: Sequence[str], p: float, setting: Setting) -> None:
        """|dL/dx| at the prediction ``p`` against the structure's size (the fourth panel)."""
        sizes = torch.unique(
            torch.logspace(0, math.log10(self.n_pixels / 2), 24, dtype=torch.float64).round()
        )
        for name in LOSSES:
            line = self.lines[name, "size"]
            line.set_visible(name in losses)
            if name in losses:
                gradients = loss_gradients(name, torch.full_like(sizes, p), setting, sizes)
                line.set_data(sizes, gradients["grad_logit"].abs())
        self.ax_size.set_title(f"|dL/dx| at p = {p:g} against the structure's size", **TITLE)
        self.ax_size.relim(visible_only=True)
        self.ax_size.autoscale_view()

    def _legend(self, losses: tuple[str, ...]) -> None:
        if losses == self.legend_for:
            return
        for legend in self.figure.legends:
            legend.remove()
        self.legend_for = losses
        if losses:
            handles = [self.lines[name, "loss"] for name in LOSSES if name in losses]
            labels = [LOSSES[name][0] for name in LOSSES if name in losses]
            self.figure.legend(
                [*handles, Line2D([], [], **_CLOSED_STYLE)],
                [*labels, "closed form"],
                loc="upper center",
                ncol=len(handles) + 1,
                fontsize=8,
                frameon=False,
                bbox_to_anchor=(0.5, 1.0),
            )


_SEVERAL = (
    "<div style='font-size:85%;opacity:0.65;line-height:1.2'>losses: Ctrl-click (⌘-click on"
    "<br>a Mac) to pick several</div>"
)


def loss_explorer(
    losses: Sequence[str] = ("bce", "dice", "focal"), *, n_pixels: int = 400
) -> InteractiveFigure:
    """The loss-gradient explorer: pick losses, move the prediction, target, size and parameters.

    Each loss parameter has its own control, shown only while a loss that uses it is selected
    (:data:`PARAMETERS`).

    Parameters
    ----------
    losses
        Keys of :data:`LOSSES` selected at the start.
    n_pixels
        Pixels in the image (the structure's size goes up to half of it).

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
    check_int("n_pixels", n_pixels, minimum=4)
    default = Setting(n_pixels=n_pixels, fg_size=min(20, n_pixels // 2))
    column = ipywidgets.Layout(flex="1 1 25em", min_width="25em")
    controls: dict[str, ipywidgets.ValueWidget] = {
        "losses": ipywidgets.SelectMultiple(
            options=[(label, name) for name, (label, _, _) in LOSSES.items()],
            value=tuple(losses),
            rows=len(LOSSES),
            tooltip="losses",
            layout=ipywidgets.Layout(width="11.5em"),
        ),
        "x_axis": ipywidgets.ToggleButtons(
            options=["probability", "logit"],
            description="x axis",
            style={"description_width": "10em", "button_width": "7.5em"},
            layout=toggle_row(),
        ),
        "p": slider(ipywidgets.FloatSlider, "prediction p", 0.3, 0.01, 0.99, step=0.01),
        "t": slider(ipywidgets.FloatSlider, "target t", default.t, 0.0, 1.0, step=0.05),
        "fg_size": slider(
            ipywidgets.IntSlider, "structure size (px)", default.fg_size, 1, n_pixels // 2
        ),
        "focal_alpha": slider(
            ipywidgets.FloatSlider,
            "focal class weight α",
            default.focal_alpha,
            0.0,
            1.0,
            step=0.05,
        ),
        "focal_gamma": slider(
            ipywidgets.FloatSlider, "focal focusing γ", default.focal_gamma, 0.0, 5.0, step=0.25
        ),
        "tversky_alpha": slider(
            ipywidgets.FloatSlider,
            "Tversky FP weight α",
            default.tversky_alpha,
            0.0,
            1.0,
            step=0.05,
        ),
        "smoothing": slider(
            ipywidgets.FloatLogSlider,
            "Dice smoothing s",
            default.smoothing,
            -5,
            1,
            step=0.5,
            readout_format=".1e",
            range_text="1e-05 to 10",
        ),
    }

    def show_parameters(_change: object = None) -> None:
        selected = set(controls["losses"].value)
        for name, users in PARAMETERS.items():
            controls[name].layout.display = None if users & selected else "none"

    controls["losses"].observe(show_parameters, names="value")
    show_parameters()
    panel = ipywidgets.HBox(
        [
            ipywidgets.VBox(
                [ipywidgets.Label("losses"), controls["losses"], ipywidgets.HTML(_SEVERAL)]
            ),
            ipywidgets.VBox([controls[n] for n in ("x_axis", "p", "t", "fg_size")], layout=column),
            ipywidgets.VBox([controls[n] for n in PARAMETERS], layout=column),
        ],
        layout=ipywidgets.Layout(flex_flow="row wrap", grid_gap="0 0.8em"),
    )

    return InteractiveFigure(_LossFigure(n_pixels), controls, panel=panel)
