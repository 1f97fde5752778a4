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
