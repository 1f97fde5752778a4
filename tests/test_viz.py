"""Figures of course_lib.viz build from course data, label their axes, and reject bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_lib import viz
from course_lib.data import make_cells, make_volumes, unet_weight_map


def test_label_overlay_tints_only_labelled_pixels():
    image = torch.linspace(0, 1, 16).view(4, 4)
    label = torch.zeros(4, 4, dtype=torch.long)
    label[0, 0], label[1, 1], label[2, 2] = 1, 2, -1
    rgb = viz.label_overlay(image, label)
    assert rgb.shape == (4, 4, 3) and rgb.min() >= 0 and rgb.max() <= 1
    grey = rgb[3, 3]
    assert np.allclose(grey, grey[0])  # background stays grey
    assert rgb[0, 0, 1] > rgb[0, 0, 0]  # class 1: green
    assert rgb[1, 1, 0] > rgb[1, 1, 1]  # class 2: red
    with pytest.raises(ValueError, match="2D"):
        viz.label_overlay(image, label[:2])


def test_cell_montage_has_a_panel_per_view():
    cells = make_cells(2, 48, seed=0)
    fig = viz.cell_montage(cells.images, cells.instances, unet_weight_map(cells.instances), n=2)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert "U-Net weight map w(x)" in titles and titles.count("image") == 2
    assert all(ax.get_xlabel() == "x (px)" for ax in fig.axes if ax.get_title())
    with pytest.raises(ValueError, match="instances"):
        viz.cell_montage(cells.images, cells.instances[:1])


def test_volume_slices_are_drawn_in_millimetres():
    case = make_volumes(1, seed=0, shape=(12, 24, 24), shape_jitter=0.0)[0]
    fig = viz.volume_slices(case.image, case.label, case.spacing, window=(-160, 240))
    axial, coronal, _ = fig.axes
    assert axial.get_xlabel() == "x (mm)" and coronal.get_ylabel() == "z (mm)"
    # the coronal view spans the physical depth D * z-spacing
    assert max(coronal.get_ylim()) == pytest.approx(12 * case.spacing[0])
    # the slices pass through the lesion by default
    z = int(axial.get_title().split("= ")[1].rstrip(")"))
    assert (case.label[z] == 2).any()
    with pytest.raises(ValueError, match="spacing"):
        viz.volume_slices(case.image, case.label, (1.0, 1.0))
    with pytest.raises(ValueError, match="D, H, W"):
        viz.volume_slices(case.image[0, 0], None)


def test_unet_topology_draws_every_stage_with_its_kernel_and_stride():
    strides = ((1, 1, 1), (1, 2, 2), (2, 2, 2))
    kernels = ((1, 3, 3), (3, 3, 3), (3, 3, 3))
    fig = viz.unet_topology((16, 64, 48), (32, 64, 128), strides, kernels)
    ax = fig.axes[0]
    assert len(ax.patches) == 5  # three encoder stages (the last is the bottleneck), two decoder
    texts = {t.get_text() for t in ax.texts}
    assert {"32 ch | 16x64x48", "64 ch | 16x32x24", "128 ch | 8x16x12"} <= texts
    assert {"kernel 1x3x3", "stride 1x2x2", "stride 2x2x2"} <= texts
    with pytest.raises(ValueError, match="one entry per stage"):
        viz.unet_topology((16, 64, 48), (32, 64), strides, kernels)
    with pytest.raises(ValueError, match="per patch axis"):
        viz.unet_topology((64, 48), (32, 64, 128), strides, kernels)


def test_patch_shrinking_plots_estimate_and_patch_per_step():
    steps = [
        {"patch_size": [64, 128], "estimate": 9e6, "budget": 5e6},
        {"patch_size": [64, 96], "estimate": 7e6, "budget": 5e6},
        {"patch_size": [32, 96], "estimate": 4e6, "budget": 5e6},
    ]
    fig = viz.patch_shrinking(steps, (64, 100))
    mem, patch = fig.axes
    assert list(mem.lines[0].get_ydata()) == [9.0, 7.0, 4.0]
    assert [list(line.get_ydata()) for line in patch.lines] == [[1.0, 1.0, 0.5], [1.28, 0.96, 0.96]]
    with pytest.raises(ValueError, match="at least"):
        viz.patch_shrinking([], (64, 100))
