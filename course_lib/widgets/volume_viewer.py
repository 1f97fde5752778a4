"""Slice viewer for volumes: pick an axis and a slice, overlay the label, the prediction or both.

The factory :func:`volume_viewer` returns an :class:`~course_lib.widgets.InteractiveFigure`: call
``.show()`` in a notebook to move the controls, or ``.update(axis=..., index=...)`` to get a
redrawn figure without a browser (tests, notebook asserts). Axes are in millimetres, so the slices
of an anisotropic volume look as coarse as they are; classes keep the course's colours
(:data:`course_lib.viz.CLASS_COLORS`), named in a legend.

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

from collections.abc import Mapping, Sequence

import ipywidgets
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch

from course_lib.viz import CLASS_COLORS, label_overlay
from course_lib.widgets._base import TITLE, InteractiveFigure, slider, toggle_row

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


def _busiest_slice(label: np.ndarray | None, axis: int, length: int) -> int:
    """The slice across ``axis`` with the most labelled voxels (the middle one if none is)."""
    if label is None or not label.any():
        return length // 2
    counts = (label > 0).sum(axis=tuple(a for a in range(3) if a != axis))
    return int(counts.argmax())


def volume_viewer(
    image: torch.Tensor | np.ndarray,
    label: torch.Tensor | np.ndarray | None = None,
    prediction: torch.Tensor | np.ndarray | None = None,
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    window: tuple[float, float] | None = None,
    title: str | None = None,
    classes: Mapping[int, str] | None = None,
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
    classes
        Name of each class id for the colour legend; default ``"class k"`` for every class in the
        label or prediction.

    Returns
    -------
    InteractiveFigure
        Starts at the axial slice with the most labelled voxels; a change of plane goes to that
        plane's slice with the most labelled voxels.
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

    present = sorted({int(k) for m in (lab, pred) if m is not None for k in np.unique(m)} - {0})
    names = dict(classes) if classes is not None else {k: f"class {k}" for k in present}
    legend = [
        Patch(color=CLASS_COLORS[k], label=names[k])
        for k in sorted(names)
        if k in CLASS_COLORS and k != 0
    ]

    figures: dict[int, tuple[Figure, list[AxesImage]]] = {}

    def figure(panels: int) -> tuple[Figure, list[AxesImage]]:
        """The figure with ``panels`` slices side by side, made on first use."""
        if panels not in figures:
            width = 3.3 * panels + 1.5  # inches: 330 px per panel and the legend
            margins = {"left": 0.5 / width, "right": 1 - 1.5 / width, "wspace": 0.3}
            fig = Figure(figsize=(width, 3.5))
            axes = fig.subplots(
                1, panels, squeeze=False, gridspec_kw={**margins, "bottom": 0.13, "top": 0.84}
            )[0]
            images = [
                ax.imshow(np.zeros((1, 1)), cmap="gray", interpolation="nearest") for ax in axes
            ]
            for ax, image in zip(axes, images, strict=True):
                ax.tick_params(labelsize=7)
                ax.set_title("", **TITLE)
                # the slice, its title and the frame over it are redrawn on each move; axes,
                # ticks and the legend only when they change (see figure_png)
                for artist in (image, ax.title, *ax.spines.values()):
                    artist.set_animated(True)
            if legend:
                fig.legend(handles=legend, loc="center right", fontsize=8, frameon=False)
            if title or panels == 2:
                fig.suptitle(
                    title or "Label (left) and prediction (right): where do they disagree?"
                )
            figures[panels] = fig, images
        return figures[panels]

    def draw(axis: int, index: int, overlay: str, alpha: float) -> Figure:
        plane_name, letter = AXES[axis]
        cut = [slice(None)] * 3
        cut[axis] = slice(index, index + 1)
        rows, cols = (s for a, s in enumerate(zip(img.shape, spacing, strict=True)) if a != axis)
        height_mm, width_mm = rows[0] * rows[1], cols[0] * cols[1]
        plane = np.clip(img[tuple(cut)].squeeze(axis), lo, hi)
        shown = ["label", "prediction"] if overlay == "both" else [overlay]
        fig, images = figure(len(shown))
        others = [other for a, (_, other) in enumerate(AXES) if a != axis]
        for ax, image, name in zip(fig.axes, images, shown, strict=True):
            overlay_map = maps.get(name)
            if overlay_map is None:
                image.set_data(plane)
                image.set_clim(plane.min(), plane.max())
            else:
                cut_map = overlay_map[tuple(cut)].squeeze(axis)
                image.set_data(label_overlay(plane, cut_map, alpha=alpha))
            extent = (0.0, width_mm, height_mm, 0.0)  # mm, origin at the top left
            if tuple(image.get_extent()) != extent:  # a new plane: new axes limits and labels
                image.set_extent(extent)
                ax.set(xlim=extent[:2], ylim=extent[2:])
                ax.set_xlabel(f"{others[1]} (mm)", fontsize=8, labelpad=1)
                ax.set_ylabel(f"{others[0]} (mm)", fontsize=8, labelpad=1)
            ax.title.set_text(
                f"{plane_name} slice {letter} = {index} ({index * spacing[axis]:.1f} mm): {name}"
            )
        for shown_legend in fig.legends:
            shown_legend.set_visible(overlay != "none")
        return fig

    # buttons, not a drop-down list: one click, all three planes in sight, and keys that work in
    # JupyterLab (its notebook takes the arrow keys from a focused list to move between cells)
    axis_control = ipywidgets.ToggleButtons(
        options=[(f"{name} ({letter})", a) for a, (name, letter) in enumerate(AXES)],
        value=0,
        description="plane",
        style={"description_width": "4em", "button_width": "7em"},
        layout=toggle_row(),
    )
    index_control = slider(
        ipywidgets.IntSlider,
        "slice",
        _busiest_slice(lab, 0, img.shape[0]),
        0,
        img.shape[0] - 1,
        width="36em",
        description_width="4em",
    )

    def follow_axis(change: dict) -> None:
        # a new plane starts where the viewer does, on its slice through the most label (lowering
        # max first clamps the value, so the index never leaves the new axis)
        axis = change["new"]
        index_control.max = img.shape[axis] - 1
        index_control.value = _busiest_slice(lab, axis, img.shape[axis])

    axis_control.observe(follow_axis, names="value")
    controls = {
        "axis": axis_control,
        "index": index_control,
        "overlay": ipywidgets.ToggleButtons(
            options=overlays,
            value=overlays[-1],
            description="overlay",
            style={"description_width": "4em", "button_width": "7em"},
            layout=toggle_row(),
        ),
        "alpha": slider(
            ipywidgets.FloatSlider,
            "opacity",
            0.45,
            0.0,
            1.0,
            step=0.05,
            width="25em",
            description_width="4em",
        ),
    }
    row = ipywidgets.Layout(flex_flow="row wrap", grid_gap="0 1.5em", align_items="center")
    panel = ipywidgets.VBox(
        [
            ipywidgets.HBox([controls["axis"], controls["index"]], layout=row),
            ipywidgets.HBox([controls["overlay"], controls["alpha"]], layout=row),
        ]
    )
    return InteractiveFigure(draw=draw, controls=controls, panel=panel)
