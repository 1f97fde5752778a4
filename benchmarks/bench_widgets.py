"""Redraw time of each course widget, control by control, at the profile's sizes.

Usage: ``python benchmarks/bench_widgets.py [--repeats 7]``

A redraw is what a move of a control costs in the kernel: ``update(name=value)`` (the drawing
function) and the PNG the front-end receives (``figure_png``, blitted where the widget allows).
Each control is moved back and forth between two values; the table gives the median wall and CPU
milliseconds per move and the goal (issue #21: 300 ms for the 2D widgets, 500 ms for the volume
viewer, on 2 cores). CPU time is the number to read on a busy machine: it does not count the time
the process waited for a core. ``tests/test_widgets_browser.py`` measures the same moves in
JupyterLab, from the learner's input to the new figure on screen.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from course_lib import data, runtime
from course_lib.widgets import InteractiveFigure, loss_explorer, threshold_explorer, volume_viewer
from course_lib.widgets._base import figure_png


def _widgets(profile: runtime.Profile) -> dict[str, tuple[InteractiveFigure, float, dict]]:
    """Widget, goal (s) and two values per control, at the sizes the chapters use."""
    size = profile.image_size
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    target = (yy - size / 2) ** 2 + (xx - size / 3) ** 2 < (size / 5) ** 2
    noise = torch.randn(size, size, generator=torch.Generator().manual_seed(0))
    probabilities = torch.sigmoid(6 * (target.float() - 0.5) + noise)
    case = data.make_volumes(1, seed=3, modality="mr", shape=profile.volume_shape)[0]
    label = case.label
    prediction = torch.where(torch.rand(label.shape) < 0.05, 0, label)
    return {
        "threshold explorer (00)": (
            threshold_explorer(probabilities, target),
            0.3,
            {"threshold": (0.3, 0.7)},
        ),
        "volume viewer (02)": (
            volume_viewer(case.image, label, prediction, spacing=case.spacing),
            0.5,
            {
                "index": (label.shape[0] // 2 - 2, label.shape[0] // 2 + 2),
                "alpha": (0.3, 0.7),
                "overlay": ("label", "both"),
                "axis": (1, 0),
            },
        ),
        "loss explorer (03)": (
            loss_explorer(("bce", "focal", "dice", "tversky")),
            0.3,
            {
                "p": (0.3, 0.6),
                "t": (1.0, 0.8),
                "fg_size": (20, 2),
                "focal_gamma": (2.0, 1.0),
                "x_axis": ("logit", "probability"),
                "losses": (("bce", "dice"), ("bce", "focal", "dice", "tversky")),
            },
        ),
    }


def _redraw(widget: InteractiveFigure, name: str, value: object) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    figure_png(widget.update(**{name: value}))
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    profile = runtime.profile()
    print(f"profile {profile.name}, torch threads {torch.get_num_threads()}")
    print(f"{'widget':24} {'control':12} {'wall ms':>8} {'CPU ms':>8} {'goal ms':>8}")
    for title, (widget, goal, moves) in _widgets(profile).items():
        figure_png(widget.update())  # the first, full drawing
        for name, values in moves.items():
            times = [_redraw(widget, name, values[k % 2]) for k in range(2 * args.repeats)]
            wall = statistics.median(t[0] for t in times) * 1000
            cpu = statistics.median(t[1] for t in times) * 1000
            print(f"{title:24} {name:12} {wall:8.0f} {cpu:8.0f} {goal * 1000:8.0f}")


if __name__ == "__main__":
    main()
