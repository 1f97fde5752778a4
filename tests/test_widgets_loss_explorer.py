"""The loss-gradient explorer: autograd against the closed forms, the size effect, the widget."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from course_lib.widgets.loss_explorer import (
    LOSSES,
    PARAMETERS,
    Setting,
    loss_explorer,
    loss_gradients,
)

P = torch.linspace(0.02, 0.98, 25, dtype=torch.float64)


@settings(max_examples=10, deadline=None)
@given(
    t=st.floats(0.0, 1.0),
    fg_size=st.integers(1, 50),
    alpha=st.floats(0.0, 1.0),
    smoothing=st.floats(1e-5, 2.0),  # the slider's range; at 0 an empty target gives 0/0
)
def test_autograd_equals_closed_form(t, fg_size, alpha, smoothing):
    setting = Setting(
        t=t,
        fg_size=fg_size,
        n_pixels=100,
        focal_alpha=alpha,
        tversky_alpha=alpha,
        smoothing=smoothing,
    )
    for name, (_, _, closed) in LOSSES.items():
        curves = loss_gradients(name, P, setting)
        assert ("closed_p" in curves) == (closed is not None)
        if closed is not None:
            assert torch.allclose(curves["grad_p"], curves["closed_p"], atol=1e-9), name
            assert torch.allclose(curves["grad_logit"], curves["closed_logit"], atol=1e-12), name


def test_dice_gradient_scales_like_one_over_the_sums_while_bce_stays_bounded():
    setting = Setting(n_pixels=400)
    sizes = torch.tensor([1.0, 4.0, 16.0, 64.0, 200.0], dtype=torch.float64)
    p = torch.full_like(sizes, 0.3)
    dice = loss_gradients("dice", p, setting, sizes)["grad_logit"].abs()
    bce = loss_gradients("bce", p, setting, sizes)["grad_logit"]
    sums = sizes * (p + setting.t)  # sum p + sum t over the structure (background ~ 0)
    scaled = dice * sums
    assert torch.allclose(scaled, scaled[0].expand_as(scaled), rtol=0.02)
    assert dice[0] > 100 * dice[-1] / 2  # 200x smaller structure: ~200x larger gradient
    assert torch.allclose(bce, torch.full_like(bce, (0.3 - 1.0) / 400))


def _visible_lines(figure):
    """(x, y) of every visible line of the figure."""
    return [
        (np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float))
        for ax in figure.axes
        for line in ax.lines
        if line.get_visible()
    ]


def _moved_visibly(before, after):
    """Some line moved by more than 1 % of its own size (what a reader can see, on any scale)."""
    if len(before) != len(after):
        return True
    for old, new in zip(before, after, strict=True):
        for a, b in zip(old, new, strict=True):
            if a.shape != b.shape or np.abs(a - b).max() > 0.01 * max(np.abs(a).max(), 1e-300):
                return True
    return False


def test_widget_redraws_for_every_control():
    explorer = loss_explorer(("bce", "dice"), n_pixels=100)
    assert set(explorer.controls) == {
        "losses", "x_axis", "p", "t", "fg_size", "focal_alpha", "focal_gamma", "tversky_alpha",
        "smoothing",
    }  # fmt: skip
    figure = explorer.update(losses=tuple(LOSSES), x_axis="logit", fg_size=1, t=0.8)
    assert isinstance(figure, Figure) and len(figure.axes) == 4
    # one visible curve per selected loss and the marker (the lines of unselected losses hide)
    assert sum(line.get_visible() for line in figure.axes[0].lines) == len(LOSSES) + 1
    assert sum(line.get_visible() for line in explorer.update(losses=()).axes[0].lines) == 1


@pytest.mark.parametrize(
    "name, value",
    [
        ("x_axis", "logit"),
        ("p", 0.6),
        ("t", 0.5),
        ("fg_size", 3),
        ("focal_alpha", 0.7),
        ("focal_gamma", 0.5),
        ("tversky_alpha", 0.8),
        ("smoothing", 1.0),
    ],
)
def test_every_control_changes_the_curves_it_is_shown_for(name, value):
    """No control may be a no-op: each one visibly moves a curve of the losses that show it (the
    hardness weight lambda once moved them by < 0.01 %)."""
    explorer = loss_explorer(tuple(LOSSES), n_pixels=100)
    before = _visible_lines(explorer.update())
    assert _moved_visibly(before, _visible_lines(explorer.update(**{name: value}))), name


def test_a_parameter_shows_only_while_a_loss_using_it_is_selected():
    explorer = loss_explorer(("bce",))
    shown = lambda: {n for n in PARAMETERS if explorer.controls[n].layout.display != "none"}  # noqa: E731
    assert shown() == set()
    explorer.controls["losses"].value = ("bce", "focal")
    assert shown() == {"focal_alpha", "focal_gamma"}
    explorer.controls["losses"].value = ("tversky",)
    assert shown() == {"tversky_alpha", "smoothing"}
    explorer.controls["losses"].value = ("dice", "jaccard")
    assert shown() == {"smoothing"}
    for name, users in PARAMETERS.items():  # each parameter is an argument its losses really use
        assert users <= set(LOSSES) and name in Setting.__dataclass_fields__


def test_controls_are_labelled_in_words():
    labels = {n: c.tooltip for n, c in loss_explorer().controls.items()}
    assert labels["focal_alpha"] == "focal class weight α"
    assert labels["tversky_alpha"] == "Tversky FP weight α"
    assert all("_" not in label for label in labels.values() if label)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown loss"):
        loss_explorer(("dice", "hinge"))
    with pytest.raises(ValueError, match="n_pixels"):
        loss_explorer(n_pixels=2)
    with pytest.raises(ValueError, match="unknown loss"):
        loss_gradients("hinge", P, Setting())
