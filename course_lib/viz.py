"""Figures the chapters share: label overlays, cell montages, slice views, tiles, training curves.

Plotting lives here only: the computing modules return numbers and data classes
(:class:`course_lib.inference.tiling.TileLayout`, :class:`course_lib.training.History`), and
these functions draw them.

Every function returns a ``matplotlib.figure.Figure`` built without ``pyplot`` (Jupyter shows it
once, and nothing leaks between cells). Classes have one colour throughout the course
(:data:`CLASS_COLORS`); tensors are moved to the CPU here, at the plotting edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

if TYPE_CHECKING:
    from course_lib.inference.tiling import TileLayout
    from course_lib.training import History

CLASS_COLORS: dict[int, tuple[float, float, float]] = {
    1: (0.17, 0.63, 0.17),  # cell / organ / target: green
    2: (0.84, 0.15, 0.16),  # lesion: red
    3: (0.12, 0.47, 0.71),  # a third class: blue
    -1: (0.6, 0.6, 0.6),  # UNLABELED: grey
}
"""RGB colour of each class id (background is not drawn)."""


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def label_overlay(
    image: torch.Tensor | np.ndarray,
    label: torch.Tensor | np.ndarray,
    *,
    alpha: float = 0.45,
) -> np.ndarray:
    """RGB ``(H, W, 3)`` image: a grey image with each labelled class tinted in its colour.

    The image is min-max scaled to [0, 1]; classes without a colour in :data:`CLASS_COLORS` are
    left untinted.
    """
    img, lab = _numpy(image).astype(np.float64), _numpy(label)
    if img.shape != lab.shape or img.ndim != 2:
        raise ValueError(f"image and label must be 2D of equal shape, got {img.shape}, {lab.shape}")
    span = img.max() - img.min()
    grey = (img - img.min()) / span if span > 0 else np.zeros_like(img)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    for cls, colour in CLASS_COLORS.items():
        where = lab == cls
        rgb[where] = (1 - alpha) * rgb[where] + alpha * np.asarray(colour)
    return rgb


def _boundaries(instances: np.ndarray) -> np.ndarray:
    """Pixels of a cell whose right or lower neighbour belongs elsewhere (outline of each cell)."""
    edge = np.zeros(instances.shape, dtype=bool)
    edge[:, :-1] |= instances[:, :-1] != instances[:, 1:]
    edge[:-1, :] |= instances[:-1, :] != instances[1:, :]
    return edge & (instances > 0)


def cell_montage(
    images: torch.Tensor,
    instances: torch.Tensor,
    weight_maps: torch.Tensor | None = None,
    *,
    n: int = 3,
    title: str = "Touching cells are separated only by thin background gaps",
) -> Figure:
    """A row per image: the image, its cells (outlined, one colour each), mask, and weight map.

    Parameters
    ----------
    images : Tensor
        ``(N, 1, H, W)``.
    instances : Tensor
        ``(N, H, W)`` instance ids (0 background).
    weight_maps : Tensor, optional
        ``(N, H, W)``, e.g. from :func:`course_lib.data.unet_weight_map`; adds a column.
    n : int
        How many images (rows) to show.
    """
    imgs, inst = _numpy(images), _numpy(instances)
    if imgs.ndim != 4 or inst.shape != (imgs.shape[0], *imgs.shape[2:]):
        raise ValueError(
            f"need images (N, 1, H, W) and instances (N, H, W), got {imgs.shape} and {inst.shape}"
        )
    rows = min(n, imgs.shape[0])
    cols = 3 + (weight_maps is not None)
    fig = Figure(figsize=(3.0 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    palette = np.random.default_rng(0).uniform(0.25, 1.0, size=(int(inst.max()) + 1, 3))
    palette[0] = 0
    for r in range(rows):
        outlined = np.repeat(imgs[r, 0][..., None], 3, axis=-1)
        outlined[_boundaries(inst[r])] = (1.0, 0.85, 0.0)
        panels = [
            (imgs[r, 0], "image", {"cmap": "gray", "vmin": 0, "vmax": 1}),
            (outlined, "cells, outlined", {}),
            (palette[inst[r]], f"{len(np.unique(inst[r])) - 1} instances", {}),
        ]
        for c, (data, name, kw) in enumerate(panels):
            axes[r, c].imshow(data, **kw)
            axes[r, c].set_title(name, fontsize=9)
        if weight_maps is not None:
            shown = axes[r, 3].imshow(_numpy(weight_maps[r]), cmap="magma")
            axes[r, 3].set_title("U-Net weight map w(x)", fontsize=9)
            fig.colorbar(shown, ax=axes[r, 3], shrink=0.8, label="weight")
        for ax in axes[r]:
            ax.set_xlabel("x (px)", fontsize=8)
            ax.set_ylabel("y (px)", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle(title)
    return fig


def _focus(label: np.ndarray | None, shape: Sequence[int]) -> tuple[int, int, int]:
    """Centre of the rarest labelled class (the lesion when there is one), else the centre."""
    if label is not None:
        classes = [c for c in np.unique(label) if c > 0]
        if classes:
            rarest = min(classes, key=lambda c: int((label == c).sum()))
            idx = np.argwhere(label == rarest).mean(0).round().astype(int)
            return int(idx[0]), int(idx[1]), int(idx[2])
    return tuple(s // 2 for s in shape)  # type: ignore[return-value]


def volume_slices(
    image: torch.Tensor | np.ndarray,
    label: torch.Tensor | np.ndarray | None = None,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    *,
    index: Sequence[int] | None = None,
    window: tuple[float, float] | None = None,
    title: str | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Axial, coronal and sagittal slices of a ``(D, H, W)`` volume, in millimetres.

    Axes are in mm (``spacing`` is (z, y, x)), so thick slices look as coarse as they are. The
    label, when given, is overlaid in :data:`CLASS_COLORS`.

    Parameters
    ----------
    image, label
        ``(D, H, W)`` (a ``(1, D, H, W)`` image is squeezed).
    index : (z, y, x), optional
        Voxel the three slices pass through; default the centre of the rarest labelled class.
    window : (low, high), optional
        Intensity window, e.g. ``(-160, 240)`` HU for soft tissue in CT; default the 0.5-99.5
        percentiles of the volume.
    fig : Figure, optional
        Draw into this figure (e.g. one a widget redraws), else a new one.
    """
    img = _numpy(image)
    if img.ndim == 4 and img.shape[0] == 1:
        img = img[0]
    lab = None if label is None else _numpy(label)
    if img.ndim != 3 or (lab is not None and lab.shape != img.shape):
        raise ValueError(
            f"image must be (D, H, W) and label the same shape, got {img.shape}, "
            f"{None if lab is None else lab.shape}"
        )
    if len(spacing) != 3:
        raise ValueError(f"spacing must be (z, y, x) in mm, got {spacing!r}")
    z, y, x = _focus(lab, img.shape) if index is None else tuple(int(i) for i in index)
    sz, sy, sx = (float(s) for s in spacing)
    d, h, w = img.shape
    whole = slice(None)
    views: list[tuple[str, tuple[int | slice, ...], tuple[float, float, float], str, str]] = [
        (f"axial (z = {z})", (z, whole, whole), (0, w * sx, h * sy), "x (mm)", "y (mm)"),
        (f"coronal (y = {y})", (whole, y, whole), (0, w * sx, d * sz), "x (mm)", "z (mm)"),
        (f"sagittal (x = {x})", (whole, whole, x), (0, h * sy, d * sz), "y (mm)", "z (mm)"),
    ]
    fig = fig if fig is not None else Figure(figsize=(11, 3.8), layout="constrained")
    fig.clear()
    axes = fig.subplots(1, 3)
    lo, hi = np.percentile(img, [0.5, 99.5]) if window is None else window
    for ax, (name, sl, (x0, x1, y1), xl, yl) in zip(axes, views, strict=True):
        plane = np.clip(img[sl], lo, hi)
        shown = plane if lab is None else label_overlay(plane, lab[sl])
        ax.imshow(shown, cmap="gray", extent=(x0, x1, y1, 0), interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xl, fontsize=8)
        ax.set_ylabel(yl, fontsize=8)
        ax.tick_params(labelsize=7)
    spacing_text = " x ".join(f"{s:g}" for s in (sz, sy, sx))
    fig.suptitle(title or f"{d} x {h} x {w} voxels of {spacing_text} mm (z x y x x)")
    return fig


def draw_tiles(ax: Axes, layout: TileLayout, tiles: Sequence[int] = (0,)) -> None:
    """Draw the boxes of Ronneberger et al.'s Fig. 2 on axes showing the mirror-padded image.

    For each tile index in ``tiles`` of a :class:`~course_lib.inference.tiling.TileLayout`: its
    input tile in blue, its output tile in yellow; the original image's outline dashed. The axes
    must show the padded image in its own pixels.

    Examples
    --------
    >>> from course_lib.inference.tiling import tile_layout
    >>> from course_lib.models import UNet
    >>> layout = tile_layout(UNet(1, 2, base_channels=2, depth=2), (40, 40), (76, 76))
    >>> ax = Figure().subplots()
    >>> draw_tiles(ax, layout, tiles=(0,))
    >>> len(ax.patches)  # the image outline, one input and one output tile
    3
    """
    (mh, mw), (sh, sw) = layout.margin, layout.image_shape
    ax.add_patch(Rectangle((mw - 0.5, mh - 0.5), sw, sh, fill=False, ls="--", ec="w", lw=1.5))
    for k in tiles:
        (y, x), (ih, iw), (oh, ow) = layout.corners[k], layout.tile_in, layout.tile_out
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), iw, ih, fill=False, ec="tab:blue", lw=2))
        ax.add_patch(Rectangle((x + mw - 0.5, y + mh - 0.5), ow, oh, fill=False, ec="gold", lw=2))


def training_curves(history: History, title: str = "Training", smooth: int = 10) -> Figure:
    """Training loss (raw and a running mean over ``smooth`` steps) and validation curves.

    Examples
    --------
    >>> from course_lib.training import History
    >>> fig = training_curves(History(train_loss=[1.0, 0.5], val_steps=[2], val={"loss": [0.6]}))
    >>> [ax.get_title() for ax in fig.axes]
    ['Training: loss', 'Training: validation']
    """
    fig = Figure(figsize=(9, 3.2))
    ax_loss, ax_val = fig.subplots(1, 2)
    steps = range(1, history.steps + 1)
    ax_loss.plot(steps, history.train_loss, color="0.75", lw=0.8, label="per step")
    if history.steps >= smooth > 1:
        kernel = torch.ones(smooth) / smooth
        loss = torch.tensor(history.train_loss)[None, None]
        mean = torch.conv1d(loss, kernel[None, None])[0, 0]
        ax_loss.plot(range(smooth, history.steps + 1), mean.tolist(), color="C0", label="mean")
    if "loss" in history.val:
        ax_loss.plot(history.val_steps, history.val["loss"], "o-", color="C3", label="validation")
    ax_loss.set(xlabel="optimizer step", ylabel="loss", title=f"{title}: loss")
    ax_loss.legend()
    metrics = [(name, values) for name, values in history.val.items() if name != "loss"]
    for i, (name, values) in enumerate(metrics):
        ax_val.plot(history.val_steps, values, "o-", color=f"C{i + 1}", label=name)
    ax_val.set(xlabel="optimizer step", ylabel="metric", title=f"{title}: validation")
    if metrics:
        ax_val.legend()
    fig.tight_layout()
    return fig
