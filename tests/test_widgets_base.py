"""InteractiveFigure: controls drive the drawing function, with and without a front-end.

Where a figure shows is decided by what each viewer renders from the two outputs ``show()``
makes: the controls (a widget view, with a line of plain text for viewers without widgets) and
the figure (a plain PNG with a display id, redrawn in place). The protocol is checked here with a
recorded ``display``, and end to end with nbclient, which runs a notebook with no front-end at
all, and nbconvert, which renders it as GitHub or a PDF export would. tests/test_widgets_browser.py
checks the live side in JupyterLab.
"""

from __future__ import annotations

import asyncio
import base64
import io
import re

import ipywidgets
import nbformat
import numpy as np
import PIL.Image
import pytest
import torch
from matplotlib.figure import Figure

from course_lib.widgets import (
    InteractiveFigure,
    _base,
    loss_explorer,
    threshold_explorer,
    volume_viewer,
)
from course_lib.widgets._base import CONTROLS_TEXT, SETTLE_S, slider

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _explorer(fail_at=None):
    calls = []

    def draw(a, b):
        calls.append((a, b))
        if a == fail_at:
            raise ValueError(f"no figure for a = {a}")
        fig = Figure(figsize=(2, 1))
        fig.suptitle(f"a={a} b={b}")
        return fig

    controls = {"a": ipywidgets.IntSlider(value=1, min=0, max=9), "b": ipywidgets.Checkbox(False)}
    return InteractiveFigure(draw, controls), calls


class _Handle:
    def __init__(self):
        self.updates = []

    def update(self, bundle, raw):
        self.updates.append(bundle)


@pytest.fixture
def shown(monkeypatch):
    """``display`` recorded: (bundle, display_id) per call, and the handle it returned."""
    outputs, handle = [], _Handle()

    def display(bundle, raw=False, display_id=None):
        assert raw
        outputs.append((bundle, display_id))
        return handle if display_id else None

    monkeypatch.setattr(_base, "display", display)
    return outputs, handle


def _png(bundle):
    return base64.b64decode(bundle["image/png"])


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


def test_show_puts_the_controls_then_one_figure_redrawn_in_place(shown):
    outputs, handle = shown
    explorer, calls = _explorer()
    explorer.show()
    assert calls == [(1, False)]
    (controls, controls_id), (figure, figure_id) = outputs
    # the controls: a widget view where widgets run, a line of text everywhere else
    assert controls[WIDGET_VIEW]["model_id"] == explorer.widget.model_id
    assert controls["text/plain"] == CONTROLS_TEXT and "image/png" not in controls
    assert controls_id is None
    # the figure: one plain image with a display id, whatever the viewer
    assert figure_id is True and WIDGET_VIEW not in figure
    assert _png(figure).startswith(PNG_SIGNATURE) and "a = 1" in figure["text/plain"]

    explorer.update(a=3)  # from code
    explorer.controls["b"].value = True  # from a control
    assert [u["text/plain"] for u in handle.updates] == [
        "<figure drawn for a = 3; b = False>",
        "<figure drawn for a = 3; b = True>",
    ]
    assert _png(handle.updates[0]) != _png(figure) and len(outputs) == 2  # replaced, not added


def test_update_before_show_publishes_nothing(shown):
    outputs, handle = shown
    explorer, _ = _explorer()
    explorer.update(a=2)
    assert outputs == [] and handle.updates == []


def test_changes_arriving_together_are_drawn_once_with_the_latest_values():
    explorer, calls = _explorer()

    async def learner_holds_a_key():
        for a in (2, 3, 4):  # three changes queued behind each other
            explorer.controls["a"].value = a
        await asyncio.sleep(4 * SETTLE_S)

    asyncio.run(learner_holds_a_key())
    assert calls == [(4, False)]
    assert "a = 4 · drawn in" in explorer.status.value


def test_a_drawing_error_in_a_callback_shows_in_the_status_line():
    explorer, calls = _explorer(fail_at=6)
    explorer.controls["a"].value = 6  # the learner moves a control; nothing raises
    assert calls == [(6, False)]
    assert "could not draw" in explorer.status.value
    assert "ValueError: no figure for a = 6" in explorer.status.value
    explorer.controls["a"].value = 5
    assert "a = 5 · drawn in" in explorer.status.value
    with pytest.raises(ValueError, match="no figure"):  # from code, the error is raised
        explorer.update(a=6)


def test_describe_uses_the_words_and_choices_a_learner_sees():
    controls = {
        "axis": ipywidgets.Dropdown(
            options=[("axial", 0), ("coronal", 1)], value=1, tooltip="plane"
        ),
        "index": slider(ipywidgets.IntSlider, "slice", 3, 0, 9),
        "picked": ipywidgets.SelectMultiple(options=[("BCE", "bce"), ("Dice", "dice")], value=()),
        "alpha": slider(ipywidgets.FloatSlider, "opacity", 0.45, 0.0, 1.0, step=0.05),
    }
    controls["picked"].description = "losses"
    explorer = InteractiveFigure(lambda **_: Figure(), controls)
    assert explorer.describe() == "plane = coronal; slice = 3; losses = none; opacity = 0.45"


def test_slider_reports_on_release_and_shows_its_range_under_its_name():
    control = slider(ipywidgets.IntSlider, "slice", 3, 0, 63)
    assert control.continuous_update is False and control.tooltip == "slice"
    assert "slice" in control.description and "0 to 63" in control.description
    control.max = 31  # e.g. the volume viewer's slice range follows the plane
    assert "0 to 31" in control.description
    log = slider(ipywidgets.FloatLogSlider, "s", 1e-5, -5, 1, range_text="1e-05 to 10")
    assert "1e-05 to 10" in log.description


def test_unknown_control_is_a_clear_error():
    explorer, _ = _explorer()
    with pytest.raises(ValueError, match=r"unknown control\(s\) \['c'\]"):
        explorer.update(c=1)


_NOTEBOOK = [
    """import ipywidgets
from matplotlib.figure import Figure

from course_lib.widgets import InteractiveFigure


def draw(n):
    fig = Figure(figsize=(2, 1))
    fig.subplots().plot(range(n))
    return fig


explorer = InteractiveFigure(draw, {"n": ipywidgets.IntSlider(3, 2, 9, description="n")})
explorer.show()""",
    "figure = explorer.update(n=7)",
]


def test_without_a_front_end_the_notebook_holds_the_last_figure_once():
    """nbclient runs the notebook with no front-end (nothing waits for one); nbconvert renders it
    as a viewer without widgets does: the line for the controls, then one figure, the last."""
    nbclient = pytest.importorskip("nbclient")
    nbconvert = pytest.importorskip("nbconvert")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in _NOTEBOOK])
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    show, later = notebook.cells
    assert later.outputs == []  # update() redrew the figure above, it added nothing here
    controls, figure = show.outputs
    assert WIDGET_VIEW in controls.data and controls.data["text/plain"] == CONTROLS_TEXT
    assert set(figure.data) == {"image/png", "text/plain"} and "n = 7" in figure.data["text/plain"]

    markdown, resources = nbconvert.MarkdownExporter().from_notebook_node(notebook)
    assert markdown.count(CONTROLS_TEXT) == 1
    assert len(resources["outputs"]) == 1 and markdown.count("![png]") == 1
    html, _ = nbconvert.HTMLExporter().from_notebook_node(notebook)
    assert len(re.findall(r"<img [^>]*src=\"data:image/png", html)) == 1


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGBA"), dtype=np.int16)


def _drawn_in_full(figure: Figure) -> np.ndarray:
    """The figure drawn as a whole, every artist in its place (no blitting)."""
    animated = figure.findobj(lambda artist: artist.get_animated())
    for artist in animated:
        artist.set_animated(False)
    try:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=_base.DPI)
    finally:
        for artist in animated:
            artist.set_animated(True)
    return _pixels(buffer.getvalue())


def _volume():
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(12, 20, 16, generator=generator)
    label = (image > 0.7).long() + (image > 0.9).long()
    return volume_viewer(image, label, label.flip(1), spacing=(3.0, 1.0, 1.0))


def _threshold():
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.rand(40, 40, generator=generator)
    return threshold_explorer(probabilities, probabilities > 0.6)


@pytest.mark.parametrize(
    "make, moves",
    [
        (_threshold, [{"threshold": 0.3}, {"threshold": 0.7}]),
        (
            _volume,
            [{"index": 3}, {"index": 4, "alpha": 0.9}, {"axis": 2}, {"index": 1},
             {"overlay": "label"}, {"overlay": "both"}, {"index": 5}],
        ),
        (
            lambda: loss_explorer(("bce", "dice"), n_pixels=60),
            [{"p": 0.6}, {"p": 0.2}, {"fg_size": 2}, {"p": 0.9}, {"x_axis": "logit"},
             {"losses": ("focal",)}, {"p": 0.5}],
        ),
    ],
    ids=["threshold", "volume", "loss"],
)  # fmt: skip
def test_a_redrawn_figure_equals_the_figure_drawn_in_full(make, moves):
    """Blitting (figure_png redraws only the animated artists over the last full drawing) shows
    what drawing the whole figure would: nothing it keeps from before is out of date, nothing it
    redraws covers what lies over it. Each move is checked, the cheap ones and the full ones."""
    widget = make()
    for move in [{}, *moves]:
        figure = widget.update(**move)
        blitted, full = _pixels(_base.figure_png(figure)), _drawn_in_full(figure)
        assert blitted.shape == full.shape
        differ = (np.abs(blitted - full).max(axis=-1) > 8).mean()
        assert differ < 1e-4, f"after {move}: {differ:.2%} of the pixels differ"
