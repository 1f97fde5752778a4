"""Slice viewer for volumes: pick an axis and a slice, overlay the label, the prediction or both.

The factory :func:`volume_viewer` returns an :class:`~course_lib.widgets.InteractiveFigure`: call
``.show()`` in a notebook to move the controls, or ``.update(axis=..., index=...)`` to get a
redrawn figure without a browser (tests, notebook asserts). Axes are in millimetres, so the slices
of an anisotropic volume look as coarse as they are; classes keep the course's colours
(:data:`course_lib.viz.CLASS_COLORS`).

Examples
--------
>>> import torch
>>> image = torch.rand(8, 16, 16)
>>> label = (image > 0.9).long()
>>> viewer = volume_viewer(image, label, spacing=(3.0, 1.0, 1.0))
>>> fig = viewer.update(axis=1, index=4, overlay="label")
>>> fig.axes[0].get_title()
'coronal slice y = 4 (4.0 mm): label'
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets
import numpy as np
import torch
from matplotlib.figure import Figure

from course_lib.viz import label_overlay
from course_lib.widgets._base import InteractiveFigure

AXES = (("axial", "z"), ("coronal", "y"), ("sagittal", "x"))
"""The plane cut across each array axis of a ``(D, H, W)`` volume, and that axis's letter."""


def _as_volume(name: str, x: torch.Tensor | np.ndarray | None, shape: tuple | None) -> np.ndarray:
    """``x`` as a 3D numpy array (a leading channel of 1 squeezed), checked against ``shape``."""
    if x is None:
        raise ValueError(f"{name} is required")
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or (shape is not None and arr.shape != shape):
        expected = "(D, H, W) or (1, D, H, W)" if shape is None else f"shape {shape}"
        raise ValueError(f"{name} must be a volume of {expected}, got shape {arr.shape}")
    return arr


def _busiest_slice(label: np.ndarray) -> int:
    """The axial slice with the most labelled voxels (the middle one if nothing is labelled)."""
    counts = (label > 0).sum(axis=(1, 2))
    return int(counts.argmax()) if counts.any() else label.shape[0] // 2


def volume_viewer(
    image: torch.Tensor | np.ndarray,
    label: torch.Tensor | np.ndarray | None = None,
    prediction: torch.Tensor | np.ndarray | None = None,
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    window: tuple[float, float] | None = None,
    title: str | None = None,
) -> InteractiveFigure:
    """An interactive slice view of a ``(D, H, W)`` volume with optional label and prediction.

    Controls: ``axis`` (0 axial, 1 coronal, 2 sagittal), ``index`` (the slice; its range follows
    the axis, so ``update`` takes ``axis`` before ``index``), ``overlay`` (``"none"``, and
    ``"label"``, ``"prediction"``, ``"both"`` as far as given; ``"both"`` draws them side by side)
    and ``alpha`` (overlay opacity).

    Parameters
    ----------
    image
        ``(D, H, W)`` or ``(1, D, H, W)`` intensities.
    label, prediction
        Integer class maps of the same shape (0 is background and is not tinted).
    spacing
        Voxel size in mm along (z, y, x).
    window
        Intensity range shown; default the 0.5-99.5 percentiles of the volume.
    title
        Figure title; default says what the overlay shows.

    Returns
    -------
    InteractiveFigure
        Starts at the axial slice with the most labelled voxels.
    """
    img = _as_volume("image", image, None).astype(np.float64)
    lab = None if label is None else _as_volume("label", label, img.shape)
    pred = None if prediction is None else _as_volume("prediction", prediction, img.shape)
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(
            f"spacing must be three positive voxel sizes (z, y, x) in mm, got {spacing}"
        )
    lo, hi = np.percentile(img, [0.5, 99.5]) if window is None else window
    maps = {"label": lab, "prediction": pred}
    overlays = ["none"] + [name for name, m in maps.items() if m is not None]
    if lab is not None and pred is not None:
        overlays.append("both")

    def draw(axis: int, index: int, overlay: str, alpha: float) -> Figure:
        plane_name, letter = AXES[axis]
        cut = [slice(None)] * 3
        cut[axis] = slice(index, index + 1)
        rows, cols = (s for a, s in enumerate(zip(img.shape, spacing, strict=True)) if a != axis)
        extent = (0.0, cols[0] * cols[1], rows[0] * rows[1], 0.0)  # mm, origin at the top left
        plane = np.clip(img[tuple(cut)].squeeze(axis), lo, hi)
        shown = ["label", "prediction"] if overlay == "both" else [overlay]
        fig = Figure(figsize=(4.6 * len(shown), 4.4), layout="constrained")
        axes = fig.subplots(1, len(shown), squeeze=False)[0]
        others = [other for a, (_, other) in enumerate(AXES) if a != axis]
        for ax, name in zip(axes, shown, strict=True):
            overlay_map = maps.get(name)
            data = (
                plane
                if overlay_map is None
                else label_overlay(plane, overlay_map[tuple(cut)].squeeze(axis), alpha=alpha)
            )
            ax.imshow(data, cmap="gray", extent=extent, interpolation="nearest")
            ax.set_title(
                f"{plane_name} slice {letter} = {index} ({index * spacing[axis]:.1f} mm): {name}",
                fontsize=9,
            )
            ax.set_xlabel(f"{others[1]} (mm)", fontsize=8)
            ax.set_ylabel(f"{others[0]} (mm)", fontsize=8)
            ax.tick_params(labelsize=7)
        if title or overlay == "both":
            fig.suptitle(title or "Label (left) and prediction (right): where do they disagree?")
        return fig

    axis_control = ipywidgets.Dropdown(
        options=[(f"{name} ({letter})", a) for a, (name, letter) in enumerate(AXES)],
        value=0,
        description="plane",
    )
    index_control = ipywidgets.IntSlider(
        value=_busiest_slice(lab) if lab is not None else img.shape[0] // 2,
        min=0,
        max=img.shape[0] - 1,
        description="slice",
        continuous_update=False,
    )

    def follow_axis(change: dict) -> None:
        # lowering max clamps the value, so a slice index is always inside the new axis
        index_control.max = img.shape[change["new"]] - 1

    axis_control.observe(follow_axis, names="value")
    controls = {
        "axis": axis_control,
        "index": index_control,
        "overlay": ipywidgets.ToggleButtons(
            options=overlays, value=overlays[-1], description="overlay"
        ),
        "alpha": ipywidgets.FloatSlider(
            value=0.45, min=0.0, max=1.0, step=0.05, description="opacity"
        ),
    }
    return InteractiveFigure(draw=draw, controls=controls)
