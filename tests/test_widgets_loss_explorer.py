"""The loss-gradient explorer: autograd against the closed forms, the size effect, the widget."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from course_lib.widgets.loss_explorer import LOSSES, Setting, loss_explorer, loss_gradients

P = torch.linspace(0.02, 0.98, 25, dtype=torch.float64)


@settings(max_examples=10, deadline=None)
@given(
    t=st.floats(0.0, 1.0),
    fg_size=st.integers(1, 50),
    alpha=st.floats(0.0, 1.0),
    smoothing=st.floats(1e-5, 2.0),  # the slider's range; at 0 an empty target gives 0/0
)
def test_autograd_equals_closed_form(t, fg_size, alpha, smoothing):
    setting = Setting(t=t, fg_size=fg_size, n_pixels=100, alpha=alpha, smoothing=smoothing)
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


def test_widget_redraws_for_every_control():
    explorer = loss_explorer(("bce", "dice"), n_pixels=100)
    assert set(explorer.controls) == {
        "losses", "x_axis", "p", "t", "fg_size", "alpha", "gamma", "smoothing", "lam"
    }  # fmt: skip
    figure = explorer.update(losses=tuple(LOSSES), x_axis="logit", fg_size=1, t=0.8, lam=0.2)
    assert isinstance(figure, Figure) and len(figure.axes) == 4
    assert len(figure.axes[0].lines) == len(LOSSES) + 1  # one curve per loss and the marker
    assert isinstance(explorer.update(losses=()), Figure)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown loss"):
        loss_explorer(("dice", "hinge"))
    with pytest.raises(ValueError, match="n_pixels"):
        loss_explorer(n_pixels=2)
    with pytest.raises(ValueError, match="unknown loss"):
        loss_gradients("hinge", P, Setting())
