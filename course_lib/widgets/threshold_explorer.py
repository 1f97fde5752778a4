"""Threshold a probability map and watch the mask and its Dice change (chapter 00's widget tour).

A segmentation net outputs probabilities; the mask it is judged by comes from a threshold. 0.5 is
the usual choice, TernausNet (chapter 05) uses 0.3, and the best value depends on how calibrated
the net is. This widget shows the trade-off: lower thresholds grow the mask (more false
positives), higher ones shrink it (more false negatives).
"""

from __future__ import annotations

import ipywidgets
import torch
from matplotlib.figure import Figure

from course_lib.metrics import dice_score
from course_lib.viz import label_overlay
from course_lib.widgets._base import TITLE, InteractiveFigure, slider

THRESHOLDS = torch.linspace(0.02, 0.98, 49)
"""The thresholds at which the Dice curve is drawn."""


def dice_by_threshold(
    probabilities: torch.Tensor, target: torch.Tensor, thresholds: torch.Tensor = THRESHOLDS
) -> torch.Tensor:
    """Dice of ``probabilities > t`` against ``target`` for every ``t`` in ``thresholds``, at once.

    ``probabilities`` and ``target`` are ``(H, W)``; the result has one value per threshold.
    """
    if probabilities.shape != target.shape or probabilities.ndim != 2:
        raise ValueError(
            "probabilities and target must be 2D maps of one shape, got "
            f"{tuple(probabilities.shape)} and {tuple(target.shape)}"
        )
    thresholds = thresholds.to(probabilities.device)
    masks = probabilities.unsqueeze(0) > thresholds.view(-1, 1, 1)
    return dice_score(masks, target.bool().expand_as(masks), spatial_dims=2)


def threshold_explorer(
    probabilities: torch.Tensor, target: torch.Tensor, *, threshold: float = 0.5
) -> InteractiveFigure:
    """A slider over the threshold: the probability map, the mask it gives, and Dice vs threshold.

    Parameters
    ----------
    probabilities : Tensor
        ``(H, W)`` foreground probabilities in [0, 1].
    target : Tensor
        ``(H, W)`` ground-truth mask.
    threshold : float
        Where the slider starts.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
    if probabilities.numel() and not (0 <= probabilities.min() and probabilities.max() <= 1):
        raise ValueError("probabilities must lie in [0, 1]; apply a sigmoid or softmax first")
    curve = dice_by_threshold(probabilities, target).cpu()
    probs, truth = probabilities.detach().cpu(), target.cpu()

    fig = Figure(figsize=(9.2, 3.0))
    ax_p, ax_m, ax_c = fig.subplots(
        1, 3, gridspec_kw={"left": 0.01, "right": 0.985, "bottom": 0.15, "top": 0.83}
    )
    fig.suptitle(
        "A lower threshold grows the mask (white: the true outline), a higher one shrinks it"
    )
    ax_p.imshow(probs.numpy(), cmap="magma", vmin=0, vmax=1)
    ax_p.set_title("predicted probability", **TITLE)
    # 1 (green) marks the mask; the true outline is drawn in white to compare.
    mask_image = ax_m.imshow(label_overlay(probs, (probs > threshold).long()))
    outline = ax_m.contour(truth.numpy(), levels=[0.5], colors="white", linewidths=0.8)
    for ax in (ax_p, ax_m):
        ax.set_axis_off()
    ax_c.plot(THRESHOLDS.numpy(), curve.numpy(), color="black")
    marker = ax_c.axvline(threshold, color="tab:green")
    ax_c.set_xlabel("threshold", fontsize=9, labelpad=1)
    ax_c.set_ylabel("Dice", fontsize=9, labelpad=1)
    ax_c.set(ylim=(0, 1.02))
    ax_c.set_title("Dice against threshold", **TITLE)
    ax_c.tick_params(labelsize=8)
    ax_m.set_title("", **TITLE)
    # what the slider changes (and the outline, drawn over the mask) is redrawn on each move;
    # the rest of the figure is drawn once (see figure_png)
    for artist in (mask_image, outline, marker, ax_m.title):
        artist.set_animated(True)

    def draw(threshold: float) -> Figure:
        mask = probs > threshold
        dice = dice_score(mask, truth.bool()).item()
        mask_image.set_data(label_overlay(probs, mask.long()))
        marker.set_xdata([threshold, threshold])
        ax_m.title.set_text(f"mask at threshold {threshold:.2f}: Dice {dice:.3f}")
        return fig

    control = slider(
        ipywidgets.FloatSlider, "threshold", threshold, 0.0, 1.0, step=0.01, width="46em"
    )
    return InteractiveFigure(draw, {"threshold": control})
