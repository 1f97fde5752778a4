"""The slice viewer: controls, redraws through ``update`` (no browser), overlays, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.viz import CLASS_COLORS
from course_lib.widgets import InteractiveFigure
from course_lib.widgets.volume_viewer import volume_viewer


@pytest.fixture
def case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 10, 20, 30, generator=gen)
    label = torch.zeros(10, 20, 30, dtype=torch.long)
    label[6:9, 5:12, 10:20] = 1  # the busiest axial slices are 6, 7 and 8
    prediction = torch.zeros_like(label)
    prediction[6:9, 5:12, 12:22] = 1
    return image, label, prediction


def test_factory_returns_an_interactive_figure_starting_on_the_label(case: tuple) -> None:
    image, label, prediction = case
    viewer = volume_viewer(image, label, prediction)
    assert isinstance(viewer, InteractiveFigure)
    assert set(viewer.controls) == {"axis", "index", "overlay", "alpha"}
    assert viewer.values["axis"] == 0 and viewer.values["index"] == 6
    assert viewer.controls["overlay"].options == ("none", "label", "prediction", "both")
    fig = viewer.update()
    assert len(fig.axes) == 2  # "both": label and prediction side by side
    assert "label" in fig.axes[0].get_title() and "prediction" in fig.axes[1].get_title()


def test_slice_range_follows_the_axis(case: tuple) -> None:
    image, label, _ = case
    viewer = volume_viewer(image, label)
    assert viewer.controls["index"].max == 9
    fig = viewer.update(axis=2, index=25)
    assert viewer.controls["index"].max == 29
    assert fig.axes[0].get_title().startswith("sagittal slice x = 25")
    viewer.update(axis=0)
    assert viewer.values["index"] == 6  # a new plane starts on its busiest slice


def test_a_new_plane_starts_on_its_slice_through_the_most_label(case: tuple) -> None:
    image, label, _ = case
    viewer = volume_viewer(image, label)
    viewer.controls["axis"].value = 2  # as its buttons set it: the label spans x = 10..19
    assert viewer.values["index"] == 10
    viewer.controls["axis"].value = 1  # y = 5..11
    assert viewer.values["index"] == 5 and viewer.controls["index"].max == 19
    unlabelled = volume_viewer(image, torch.zeros_like(label))
    unlabelled.controls["axis"].value = 2
    assert unlabelled.values["index"] == 15  # nothing labelled: the middle slice


def test_axes_are_in_millimetres(case: tuple) -> None:
    image, label, _ = case
    viewer = volume_viewer(image, label, spacing=(3.0, 0.5, 1.0))
    fig = viewer.update(axis=1, index=4, overlay="none")
    ax = fig.axes[0]
    assert ax.images[0].get_extent() == [0.0, 30.0, 30.0, 0.0]  # x: 30 * 1 mm, z: 10 * 3 mm
    assert ax.get_xlabel() == "x (mm)" and ax.get_ylabel() == "z (mm)"
    assert "(2.0 mm)" in ax.get_title()  # y = 4 at 0.5 mm


def test_overlay_tints_the_labelled_voxels_in_the_class_colour(case: tuple) -> None:
    image, label, _ = case
    viewer = volume_viewer(torch.zeros_like(image), label, window=(0.0, 1.0))
    rgb = np.asarray(
        viewer.update(axis=0, index=7, overlay="label", alpha=1.0).axes[0].images[0].get_array()
    )
    np.testing.assert_allclose(rgb[5:12, 10:20], np.broadcast_to(CLASS_COLORS[1], (7, 10, 3)))
    assert np.all(rgb[:5] == 0) and np.all(rgb[:, :10] == 0)
    plain = viewer.update(overlay="none").axes[0].images[0].get_array()
    assert np.asarray(plain).ndim == 2  # grey image, no tint


def test_works_without_label_and_with_numpy_input() -> None:
    image = np.random.default_rng(0).random((6, 8, 8))
    viewer = volume_viewer(image)
    assert viewer.controls["overlay"].options == ("none",)
    assert viewer.values["index"] == 3
    assert len(viewer.update(index=0).axes) == 1


def test_bad_input_raises(case: tuple) -> None:
    image, label, _ = case
    with pytest.raises(ValueError, match="image"):
        volume_viewer(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="label"):
        volume_viewer(image, label[:, :, :5])
    with pytest.raises(ValueError, match="spacing"):
        volume_viewer(image, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="unknown control"):
        volume_viewer(image).update(slice=3)


def test_legend_names_each_class_in_its_colour(case: tuple) -> None:
    image, label, prediction = case
    viewer = volume_viewer(image, label, prediction, classes={1: "organ", 2: "lesion"})
    (legend,) = viewer.update(overlay="label").legends
    assert [t.get_text() for t in legend.get_texts()] == ["organ", "lesion"]
    colours = [tuple(patch.get_facecolor()[:3]) for patch in legend.get_patches()]
    np.testing.assert_allclose(colours, [CLASS_COLORS[1], CLASS_COLORS[2]])
    assert legend.get_visible()
    assert not viewer.update(overlay="none").legends[0].get_visible()  # nothing tinted
    (default,) = volume_viewer(image, label).update().legends  # named by the classes present
    assert [t.get_text() for t in default.get_texts()] == ["class 1"]


def test_slice_slider_shows_the_range_of_the_current_axis(case: tuple) -> None:
    image, label, _ = case
    viewer = volume_viewer(image, label)
    assert "0 to 9" in viewer.controls["index"].description
    viewer.update(axis=2)
    assert "0 to 29" in viewer.controls["index"].description
