"""InteractiveFigure: controls drive the drawing function, with and without a browser."""

from __future__ import annotations

import ipywidgets
import pytest
from matplotlib.figure import Figure

from course_lib.widgets import InteractiveFigure


def _explorer():
    calls = []

    def draw(a, b):
        calls.append((a, b))
        fig = Figure()
        fig.suptitle(f"a={a} b={b}")
        return fig

    controls = {"a": ipywidgets.IntSlider(value=1, min=0, max=9), "b": ipywidgets.Checkbox(False)}
    return InteractiveFigure(draw, controls), calls


def test_update_sets_controls_and_redraws_once():
    explorer, calls = _explorer()
    fig = explorer.update(a=5, b=True)
    assert isinstance(fig, Figure) and fig._suptitle.get_text() == "a=5 b=True"
    assert calls == [(5, True)]  # one redraw for both values
    assert explorer.values == {"a": 5, "b": True}


def test_moving_a_control_redraws_the_live_figure():
    explorer, calls = _explorer()
    explorer.controls["a"].value = 7  # what a learner's slider move does
    assert calls == [(7, False)]
    assert explorer.figure._suptitle.get_text() == "a=7 b=False"


def test_show_displays_static_figure_and_widget(capsys):
    explorer, calls = _explorer()
    explorer.show()
    assert calls == [(1, False)]
    assert isinstance(explorer.widget, ipywidgets.VBox)


def test_unknown_control_is_a_clear_error():
    explorer, _ = _explorer()
    with pytest.raises(ValueError, match=r"unknown control\(s\) \['c'\]"):
        explorer.update(c=1)
