"""Every widget of every chapter, used in JupyterLab in headless Chromium as a learner uses it.

The unit tests drive widgets through ``update()`` in Python; a widget that draws nothing in a
browser, or whose control is not wired, would still pass them. Here JupyterLab runs on a free
local port and Debian's ``chromium`` is driven by Playwright at a 1366 x 768 laptop's size.

For each chapter with widgets, the notebook opened is small: the stand-in cell of
``tests/widget_notebooks/<chapter>.ipynb`` (the names the widget cells need, made without
training), then the chapter's own cells tagged ``widget``. The test runs all cells, asserts that
no cell failed, and for every control moves it with the mouse and with the keyboard, asserting
that the figure's image changed and that the status line under the controls reports the value
the control displays (so the kernel drew what the learner sees). It checks the layout (every
control inside the notebook's width, sliders long enough to drag), that no readout shows NaN,
and that the notebook, saved and reopened after its kernel stopped, still shows each figure as
it last was. A screenshot of each widget is kept under ``build/widgets/``; the redraw times are
printed (``-s``), never asserted.

Where the browser or Playwright is missing the test skips, unless ``COURSE_REQUIRE_BROWSER=1``
(CI sets it), where it fails.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
STAND_INS = ROOT / "tests" / "widget_notebooks"
SCREENSHOTS = ROOT / "build" / "widgets"
VIEWPORT = {"width": 1366, "height": 768}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MIN_TRACK_PX = 140
"""A slider's track must be at least this long to be positioned with the mouse."""
MAX_WIDGET_HEIGHT_PX = 560
"""Notebook height a 1366 x 768 laptop shows (minus browser and JupyterLab bars): a widget's
controls and figure must fit in it together, so that moving a control keeps the figure in view."""
LAB_SETTINGS = {
    # a notebook opens with its kernel, without asking which one
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
    # no pop-up offering news over the page
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
}
TIMEOUT_MS = 60_000

# Runs in the page before JupyterLab: records when the learner acted and when a figure changed.
RECORDER = """
window.__course = {inputs: [], figures: []};
for (const type of ["pointerup", "keydown", "change"]) {
  document.addEventListener(type, () => window.__course.inputs.push(performance.now()), true);
}
const seen = (node) => {
  const images = node.matches?.(".jp-RenderedImage img") ? [node]
    : [...(node.querySelectorAll?.(".jp-RenderedImage img") ?? [])];
  for (const img of images) {
    window.__course.figures.push({t: performance.now(), key: img.src.slice(-80)});
  }
};
new MutationObserver((mutations) => {
  for (const m of mutations) {
    if (m.type === "attributes") seen(m.target);
    for (const node of m.addedNodes) if (node.nodeType === 1) seen(node);
  }
}).observe(document, {childList: true, subtree: true, attributes: true, attributeFilter: ["src"]});
"""

# Opens a notebook with its kernel and starts running all its cells; resolves when they are done.
OPEN_AND_RUN = """
async (path) => {
  const app = window.jupyterapp;
  const panel = await app.commands.execute("docmanager:open", {path, factory: "Notebook"});
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.activateById(panel.id);
  window.__course.running = window.__course.running || {};
  window.__course.running[path] = app.commands.execute("notebook:run-all-cells");
  return panel.id;
}
"""

CELL_ERRORS = """
async (path) => {
  await window.__course.running[path];
  const panel = window.jupyterapp.shell.currentWidget;
  const problems = [];
  panel.content.widgets.forEach((cell, i) => {
    if (cell.model.type !== "code") return;
    for (const out of cell.model.outputs.toJSON()) {
      if (out.output_type === "error") problems.push(`cell ${i}: ${out.ename}: ${out.evalue}`);
      if (out.output_type === "stream" && out.name === "stderr") {
        problems.push(`cell ${i} stderr: ${out.text}`);
      }
    }
    if (cell.model.executionCount === null) problems.push(`cell ${i} did not run`);
  });
  return problems;
}
"""


@dataclass
class Report:
    """What the test found: problems (fail the test) and measurements (printed)."""

    problems: list[str] = field(default_factory=list)
    timings: list[tuple[str, str, float, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.problems.append(message)


def _require(reason: str) -> None:
    if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and COURSE_REQUIRE_BROWSER=1 requires the browser tests")
    pytest.skip(reason)


def _chromium() -> str:
    path = os.environ.get("COURSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        _require(
            "no chromium to run the widgets in (Debian: apt-get install chromium; "
            "`bash course.sh test` installs it when run as root)"
        )
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _chapter_notebook(stand_in: Path) -> nbformat.NotebookNode:
    """The stand-in's cells, then the chapter's cells tagged ``widget``."""
    chapter = nbformat.read(ROOT / "notebooks" / stand_in.name, as_version=4)
    widget_cells = [c for c in chapter.cells if "widget" in c.metadata.get("tags", [])]
    assert widget_cells, f"{stand_in.name}: no chapter cell is tagged 'widget'"
    notebook = nbformat.read(stand_in, as_version=4)
    notebook.cells += [nbformat.v4.new_code_cell(c.source) for c in widget_cells]
    return notebook


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """JupyterLab serving the widget notebooks; its base URL and folder."""
    pytest.importorskip("jupyterlab")
    root = tmp_path_factory.mktemp("widget_lab")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    chosen = os.environ.get("COURSE_WIDGET_CHAPTERS", "")  # e.g. "03_losses": one chapter only
    for stand_in in sorted(STAND_INS.glob("*.ipynb")):
        if chosen and stand_in.stem not in chosen.split(","):
            continue
        nbformat.write(_chapter_notebook(stand_in), notebooks / stand_in.name)
    for plugin, settings in LAB_SETTINGS.items():
        path = root / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "COURSE_PROFILE": "quick",
        "OMP_NUM_THREADS": "1",
    }
    command = [
        str(Path(sys.executable).with_name("jupyter-lab")),
        "--no-browser",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        "--IdentityProvider.token=",
        f"--ServerApp.root_dir={notebooks}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = (root / "jupyterlab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"JupyterLab did not start: {(root / 'jupyterlab.log').read_text()}"
                    )
                time.sleep(0.2)
        yield url, notebooks
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def page(lab: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A Chromium page on JupyterLab, at a laptop's 1366 x 768."""
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require("playwright is not installed (pip install -r requirements-dev.txt)")
    url, _ = lab
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium_profile")),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        context.add_init_script(RECORDER)
        browser_page = context.new_page()
        browser_page.set_default_timeout(TIMEOUT_MS)
        browser_page.goto(f"{url}/lab?reset")
        browser_page.wait_for_function("() => window.jupyterapp && window.jupyterapp.restored")
        browser_page.evaluate("() => window.jupyterapp.restored")
        yield browser_page
        context.close()


# --- reading the page --------------------------------------------------------------------------

SHOWN_VALUE = r"""
(el) => {
  const text = (node) => node.innerText.replace(/\s+/g, " ").trim();
  const readout = el.querySelector(".widget-readout");
  if (readout) return text(readout);
  const select = el.querySelector("select");
  if (select) {
    const chosen = [...select.selectedOptions].map((o) => o.text.replace(/\s+/g, " ").trim());
    return chosen.length ? chosen.join(", ") : "none";
  }
  const active = el.querySelector("button.mod-active");
  return active ? text(active) : "";
}
"""
CONTROL_LABEL = """
(el) => {
  const label = el.querySelector(".widget-label");
  const titles = [el, label, el.querySelector("select")].map((node) => node?.getAttribute("title"));
  const title = titles.find((t) => t && t !== "null");
  return (title || label?.innerText || "").trim();
}
"""
CONTROLS = ".widget-slider, .widget-dropdown, .widget-toggle-buttons, .widget-select-multiple"
STATUS = ".course-widget-status"


def _number(text: str) -> tuple[float, float] | None:
    """A readout's number and half its last digit's unit (``"0.31"`` -> (0.31, 0.005))."""
    match = re.fullmatch(r"(-?\d+)(?:\.(\d+))?(?:e([+-]?\d+))?", text.strip())
    if not match:
        return None
    exponent = int(match.group(3) or 0)
    return float(text), 0.5 * 10.0 ** (exponent - len(match.group(2) or ""))


def _status_value(status: str, label: str) -> str | None:
    """The value the status line reports for ``label`` ("a = 1; b = x · drawn in 0.1 s")."""
    drawn = status.split(" · ")[0]
    for part in drawn.split("; "):
        name, _, value = part.partition(" = ")
        if name.strip() == label:
            return value.strip()
    return None


def _agrees(shown: str, reported: str | None) -> bool:
    if reported is None:
        return False
    number = _number(shown)
    if number is None or _number(reported) is None:
        return shown == reported
    value, half_unit = number
    return math.isclose(float(reported), value, abs_tol=half_unit * 1.0001)


class Widget:
    """One widget cell of the open notebook, found by its status line."""

    def __init__(self, page, chapter: str, index: int) -> None:
        self.page, self.chapter, self.index = page, chapter, index
        self.cell = page.locator(f"[data-course-widget='{chapter}-{index}']")
        self.figure = self.cell.locator(".jp-RenderedImage img")
        self.status = self.cell.locator(STATUS)

    def src(self) -> str:
        return self.figure.get_attribute("src") or ""

    def settled_src(self, timeout_s: float = 30.0) -> str:
        """The figure once no redraw is still arriving: unchanged over two looks 0.5 s apart (on
        a busy machine the redraw of the last control move can land after the move returns)."""
        seen, deadline = self.src(), time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.figure.page.wait_for_timeout(500)
            now = self.src()
            if now == seen:
                return now
            seen = now
        return seen

    def controls(self) -> list:
        found = [c for c in self.cell.locator(CONTROLS).all() if c.is_visible()]
        # the loss list changes which controls are shown: move it last
        return sorted(found, key=lambda c: "widget-select-multiple" in (c.get_attribute("class")))


def _mark_widget_cells(page, chapter: str) -> int:
    return page.evaluate(
        """([chapter, status]) => {
          const panel = window.jupyterapp.shell.currentWidget;
          let k = 0;
          panel.content.widgets.forEach((cell) => {
            if (cell.node.querySelector(status)) {
              cell.node.setAttribute("data-course-widget", `${chapter}-${k++}`);
            }
          });
          return k;
        }""",
        [chapter, STATUS],
    )


def _latency(page, tail: str, inputs_before: int) -> tuple[float, int]:
    """Seconds from the last input to the figure whose src ends in ``tail``; redraws since."""
    return page.evaluate(
        """([tail, start]) => {
          const c = window.__course;
          const first = c.inputs[start] ?? 0;
          const figures = c.figures.filter((f) => f.t >= first);
          const hit = figures.find((f) => f.key === tail);
          if (!hit) return [NaN, figures.length];
          const input = c.inputs.filter((t) => t <= hit.t).pop();
          return [(hit.t - input) / 1000, new Set(figures.map((f) => f.key)).size];
        }""",
        [tail[-80:], inputs_before],
    )


def _act(report: Report, widget: Widget, control, how: str, action) -> None:
    """Do ``action`` on ``control``; check the figure changed and the status matches the control."""
    page = widget.page
    label = page.evaluate(CONTROL_LABEL, control.element_handle())
    before, status_before = widget.src(), widget.status.inner_text()
    inputs_before = page.evaluate("window.__course.inputs.length")
    action()
    where = f"{widget.chapter}: {label!r} ({how})"
    try:
        page.wait_for_function(
            """([sel, old, statusSel, oldStatus]) => {
              const img = document.querySelector(sel);
              const status = document.querySelector(statusSel);
              return img && img.src !== old && status && status.innerText !== oldStatus;
            }""",
            arg=[
                f"[data-course-widget='{widget.chapter}-{widget.index}'] .jp-RenderedImage img",
                before,
                f"[data-course-widget='{widget.chapter}-{widget.index}'] {STATUS}",
                status_before,
            ],
            timeout=30_000,
        )
    except Exception:  # noqa: BLE001 (a timeout is a finding, reported with the others)
        report.problems.append(f"{where}: the figure was not redrawn within 30 s")
        return
    # keys pressed in a burst: wait until the status reports what the control shows
    deadline = time.monotonic() + 30
    while True:
        shown = page.evaluate(SHOWN_VALUE, control.element_handle())
        status = widget.status.inner_text()
        reported = _status_value(status, label)
        if _agrees(shown, reported) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    report.check(
        _agrees(shown, reported),
        f"{where}: the control shows {shown!r} but the figure was drawn for {reported!r} "
        f"(status: {status!r})",
    )
    report.check("could not draw" not in status, f"{where}: {status}")
    seconds, redraws = _latency(page, widget.src(), inputs_before)
    report.timings.append((widget.chapter, f"{label} ({how})", seconds, redraws))


def _move_slider(report: Report, widget: Widget, control, presses: int = 1) -> None:
    """Drag the handle, then press an arrow key ``presses`` times in a row (a held key)."""
    page = widget.page
    handle, track = control.locator(".noUi-handle"), control.locator(".noUi-target")
    box, rail = handle.bounding_box(), track.bounding_box()
    report.check(
        rail["width"] >= MIN_TRACK_PX,
        f"{widget.chapter}: a slider's track is {rail['width']:.0f} px long (< {MIN_TRACK_PX})",
    )
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    left = x < rail["x"] + rail["width"] / 2
    # a fifth of the way towards the middle: far enough to be a drag, near enough that the view
    # still shows what the other controls change (a slice with the organ on it)
    target = x + rail["width"] * (0.2 if left else -0.2)

    def drag() -> None:
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(target, y, steps=8)
        page.mouse.up()

    def keys() -> None:
        handle.focus()
        for _ in range(presses):
            page.keyboard.press("ArrowLeft" if left else "ArrowRight")

    _act(report, widget, control, "mouse drag", drag)
    _act(report, widget, control, "keyboard" if presses == 1 else f"{presses} keys", keys)


def _move_choice(report: Report, widget: Widget, control) -> None:
    page = widget.page
    if "widget-dropdown" in (control.get_attribute("class") or ""):
        report.problems.append(
            f"{widget.chapter}: a drop-down list cannot be used with the keyboard in JupyterLab "
            "(the notebook takes its arrow keys): use toggle buttons"
        )
        return
    if "widget-toggle-buttons" in (control.get_attribute("class") or ""):

        def idle_button(n: int):
            return control.locator("button:not(.mod-active)").nth(n)

        _act(report, widget, control, "mouse", lambda: idle_button(0).click())
        _act(
            report,
            widget,
            control,
            "keyboard",
            lambda: (idle_button(0).focus(), page.keyboard.press("Space")),
        )
        return
    # a multiple selection: Ctrl-click one more, then a key. Not the arrow keys: JupyterLab takes
    # them from a focused list (they move to the next cell); Home and End are left to the list.
    select = control.locator("select")
    unselected = select.locator("option:not(:checked)").first
    _act(report, widget, control, "mouse", lambda: unselected.click(modifiers=["Control"]))
    last_only = select.evaluate(
        "(s) => s.selectedOptions.length === 1 && s.options[s.length - 1].selected"
    )
    key = "Home" if last_only else "End"
    _act(
        report,
        widget,
        control,
        f"keyboard, {key}",
        lambda: (select.focus(), page.keyboard.press(key)),
    )


def _check_layout(report: Report, widget: Widget) -> None:
    page = widget.page
    area = widget.cell.locator(".jp-OutputArea").bounding_box()
    for control in widget.controls():
        box = control.bounding_box()
        label = page.evaluate(CONTROL_LABEL, control.element_handle())
        report.check(
            box["x"] >= area["x"] - 1 and box["x"] + box["width"] <= area["x"] + area["width"] + 1,
            f"{widget.chapter}: {label!r} reaches past the notebook's width "
            f"({box['x'] + box['width']:.0f} > {area['x'] + area['width']:.0f} px)",
        )
    top = widget.cell.locator(".jupyter-widgets").first.bounding_box()["y"]
    image = widget.figure.bounding_box()
    height = image["y"] + image["height"] - top
    natural = widget.figure.evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
    report.notes.append(
        f"{widget.chapter}: controls and figure {height:.0f} px high in an output area "
        f"{area['width']:.0f} px wide; figure {natural[0]}x{natural[1]} px shown "
        f"{image['width']:.0f}x{image['height']:.0f}"
    )
    report.check(
        height <= MAX_WIDGET_HEIGHT_PX,
        f"{widget.chapter}: controls and figure are {height:.0f} px high; a laptop shows about "
        f"{MAX_WIDGET_HEIGHT_PX} px of notebook",
    )


def _check_parameters_follow_losses(report: Report, widget: Widget) -> None:
    """The loss explorer shows a parameter's control exactly while a loss using it is selected."""
    from course_lib.widgets.loss_explorer import LOSSES, PARAMETERS, loss_explorer

    labels = {n: c.tooltip for n, c in loss_explorer().controls.items()}
    names = {label: name for name, (label, _, _) in LOSSES.items()}
    options = widget.cell.locator("select[multiple] option:checked").all_inner_texts()
    selected = [" ".join(text.split()) for text in options]  # ipywidgets writes no-break spaces
    visible = {widget.page.evaluate(CONTROL_LABEL, c.element_handle()) for c in widget.controls()}
    for parameter, users in PARAMETERS.items():
        wanted = bool(users & {names[s] for s in selected})
        report.check(
            (labels[parameter] in visible) == wanted,
            f"{widget.chapter}: with {selected} selected, {labels[parameter]!r} should be "
            f"{'shown' if wanted else 'hidden'}",
        )


def _no_nan(report: Report, page) -> None:
    texts = page.locator(f".widget-readout, {STATUS}").all_inner_texts()
    report.check(not any("nan" in t.lower() for t in texts), f"a readout shows NaN: {texts}")


def _open_all(page, notebooks: Path) -> list[str]:
    """Open every notebook (their kernels start together) and start running all their cells."""
    paths = sorted(p.name for p in notebooks.glob("*.ipynb"))
    for path in paths:
        page.evaluate(OPEN_AND_RUN, path)
    return paths


def _activate(page, path: str) -> None:
    page.evaluate(
        """async (path) => {
          const app = window.jupyterapp;
          const panel = await app.commands.execute("docmanager:open", {path});
          app.shell.activateById(panel.id);
          await panel.context.ready;
        }""",
        path,
    )


def _reopen(report: Report, page, paths: list[str], last: dict[str, list[str]]) -> None:
    """Save, stop every kernel, reload: each figure must still show, as it last was."""
    for path in paths:
        _activate(page, path)
        page.evaluate("() => window.jupyterapp.shell.currentWidget.context.save()")
    page.evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")
    page.reload()
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.restored")
    page.evaluate("() => window.jupyterapp.restored")
    for path in paths:
        chapter = Path(path).stem
        _activate(page, path)
        try:  # the saved outputs render a moment after the notebook opens
            page.wait_for_function(
                """(count) => window.jupyterapp.shell.currentWidget.node
                  .querySelectorAll(".jp-RenderedImage img[src]").length >= count""",
                arg=len(last[chapter]),
                timeout=30_000,
            )
        except Exception:  # noqa: BLE001 (reported below, with what the notebook shows)
            pass
        shown = page.evaluate(
            """(status) => {
              const panel = window.jupyterapp.shell.currentWidget;
              return panel.content.widgets
                .filter((cell) => cell.model.type === "code" && cell.model.outputs.length > 1)
                .map((cell) => [
                  cell.node.querySelector(".jp-RenderedImage img")?.src ?? "",
                  cell.node.querySelector(".jp-OutputArea")?.innerText ?? "",
                ]);
            }""",
            STATUS,
        )
        figures = [src for src, _ in shown if src]
        report.check(
            [f[-200:] for f in figures] == [f[-200:] for f in last[chapter]],
            f"{chapter}: reopened, the notebook shows {len(figures)} figure(s); expected its "
            f"{len(last[chapter])} widget figure(s) as last drawn",
        )
        for _, text in shown:
            if text.strip():
                report.notes.append(
                    f"{chapter} reopened, in place of the controls: {text.strip()!r}"
                )


def _print_report(report: Report, seconds: float) -> None:
    print(f"\nwidgets in JupyterLab, {VIEWPORT['width']}x{VIEWPORT['height']}:")
    print(f"{'chapter':12} {'control (how)':44} {'redraw s':>9} {'figures':>8}")
    for chapter, control, redraw, figures in report.timings:
        print(f"{chapter:12} {control:44} {redraw:9.2f} {figures:8d}")
    for note in report.notes:
        print(note)
    print(f"screenshots: {SCREENSHOTS}; browser test {seconds:.1f} s")


def test_every_widget_in_jupyterlab(page, lab: tuple[str, Path]) -> None:
    """Run each chapter's widget cells in JupyterLab and use every control like a learner."""
    started = time.monotonic()
    _, notebooks = lab
    report = Report()

    def progress(message: str) -> None:  # shown with pytest -s
        print(f"[{time.monotonic() - started:5.1f} s] {message}", flush=True)

    try:
        _use_every_widget(page, notebooks, report, progress)
    finally:  # the measurements are worth seeing when a step fails, too
        _print_report(report, time.monotonic() - started)
    assert not report.problems, "\n".join(report.problems)


def _use_every_widget(page, notebooks: Path, report: Report, progress) -> None:
    paths = _open_all(page, notebooks)
    progress(f"opened {paths}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    last: dict[str, list[str]] = {}
    for path in paths:
        chapter = Path(path).stem
        _activate(page, path)
        for problem in page.evaluate(CELL_ERRORS, path):
            report.problems.append(f"{chapter}: {problem}")
        progress(f"{chapter}: cells ran")
        count = _mark_widget_cells(page, chapter)
        report.check(count > 0, f"{chapter}: no widget appeared")
        last[chapter] = []
        for index in range(count):
            widget = Widget(page, chapter, index)
            report.check(
                widget.figure.count() == 1,
                f"{chapter}: widget {index} shows {widget.figure.count()} figures, not one",
            )
            widget.cell.locator(".jp-OutputArea").scroll_into_view_if_needed()
            page.evaluate(
                "(el) => el.scrollIntoView({block: 'start'})",
                widget.cell.locator(".jp-OutputArea").element_handle(),
            )
            _check_layout(report, widget)
            page.screenshot(path=SCREENSHOTS / f"{chapter}-{index}.png")
            sliders = 0
            for control in widget.controls():
                if "widget-slider" in (control.get_attribute("class") or ""):
                    # one burst of keys per widget: the redraws must not queue up behind it
                    _move_slider(report, widget, control, presses=5 if sliders == 0 else 1)
                    sliders += 1
                else:
                    _move_choice(report, widget, control)
            if "loss" in chapter:
                _check_parameters_follow_losses(report, widget)
            _no_nan(report, page)
            widget.cell.locator(".jp-OutputArea").screenshot(
                path=SCREENSHOTS / f"{chapter}-{index}-after.png"
            )
            last[chapter].append(widget.settled_src())
            progress(f"{chapter}: widget {index} done")
    _reopen(report, page, paths, last)
    progress("reopened")
