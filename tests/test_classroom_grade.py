"""Grading a folder of submissions: a known gradebook, and hostile submissions fenced in.

Five submissions of chapter 04's student copy are graded together: right, wrong (known mistakes),
crashing (the process exits in the third exercise), flooding (prints megabytes in the second) and
vandal (tries to write, delete and kill outside its scratch folder, loops in a cell, asks for 8 GB).
Each loses the points of what it broke and nothing else; no file outside the grader's output
folder changes (where the grader runs as root on Linux, not even one that C++ code writes, which
the audit hook cannot see). A submission that blocks the cell alarm and sleeps is stopped by the
wall clock.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import nbformat
import pytest

from course_lib.classroom.assign import BEGIN, END, METADATA_KEY, assign, read_chapter
from course_lib.classroom.grade import Limits, find_submissions, grade, run_submission
from course_lib.classroom.sandbox import os_fence

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "04_hausdorff.ipynb"
# A cell may take 12 s: wrong answers cost more to diagnose, and a loaded machine runs slowly.
LIMITS = Limits(seconds=120, cell_seconds=12, output_bytes=64 * 1024)
_TODO = re.compile(r"^( *)raise NotImplementedError\(\n(?:.*\n)*?\1\)$", re.MULTILINE)


def _solutions() -> dict[str, str]:
    chapter = read_chapter(CHAPTER)
    solutions = {}
    for name, i in chapter.exercise_cells.items():
        source = chapter.notebook.cells[i].source
        solutions[name] = source[source.index(BEGIN) + len(BEGIN) : source.index(END)].strip("\n")
    return solutions


def _submission(
    student: Path, answers: dict[str, str], before: dict[str, str]
) -> nbformat.NotebookNode:
    """The student copy with each answer's body (indented code) in place of its raise, and code
    ``before`` the cell's own for some cells."""
    nb = nbformat.read(student, as_version=4)
    for cell in nb.cells:
        name = cell.metadata.get(METADATA_KEY, {}).get("exercise")
        if name in answers:
            cell.source = _TODO.sub(lambda m, n=name: answers[n], cell.source)
            cell.source = before.get(name, "") + cell.source
    return nb


VANDAL = """import os, shutil, subprocess, time
import torch

try:  # C++ writes the file: beyond the audit hook, the OS fence (as root on Linux) refuses it
    if {torch_target!r}:
        torch.save(torch.ones(1), {torch_target!r})
except Exception as err:
    print("refused by the OS:", err)
for attempt in (
    lambda: open({sentinel!r}, "w").write("gotcha"),
    lambda: os.remove({other!r}),
    lambda: shutil.rmtree({submissions!r}),
    lambda: subprocess.run(["rm", "-rf", {submissions!r}]),
    lambda: open({autograder!r}, "w"),
    lambda: open("../../gradebook.csv", "w"),
    lambda: os.kill(os.getppid(), 9),
):
    try:
        attempt()
        print("NOT REFUSED")
    except PermissionError as err:
        print("refused:", err)
"""


MEMORY_HOG = "try:\n    bytearray(8 * 2**30)\nexcept MemoryError:\n    print('no 8 GB')\n"


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("class")
    student, autograder = assign(CHAPTER, tmp / "dist")
    right = _solutions()
    wrong = {
        "one_way_masks": "    a = torch.zeros(9, 9, dtype=torch.bool)\n    a[3:5, 3:5] = True\n"
        "    b = torch.zeros(9, 9, dtype=torch.bool)\n    b[1:8, 1:8] = True\n    return a, b",
        "directed_surface_distances": "    return metrics.distance_transform_edt("
        "~metrics.mask_surface(b))[metrics.mask_surface(a)]",
        "hd95": "    d = torch.cat([distances(a, b, spacing), distances(b, a, spacing)])\n"
        "    return torch.quantile(d, 0.95)",
        "assd": "    means = distances(a, b, spacing).mean(), distances(b, a, spacing).mean()\n"
        "    return sum(means) / 2",
    }
    submissions = tmp / "submissions"
    (submissions / "erin").mkdir(parents=True)
    sentinel = tmp / "sentinel.txt"
    sentinel.write_text("precious")
    vandal = VANDAL.format(
        torch_target=str(tmp / "saved.pt") if os_fence() else "",
        sentinel=str(sentinel),
        other=str(submissions / "ann.ipynb"),
        submissions=str(submissions),
        autograder=str(autograder),
    )
    for path, answers, before in [
        (submissions / "ann.ipynb", right, {}),
        (submissions / "bob.ipynb", wrong, {}),
        (submissions / "cat.ipynb", right, {"hd95": "import os\n\nos._exit(3)\n"}),
        (submissions / "dan.ipynb", right, {"directed_surface_distances": "print('x' * 10**7)\n"}),
        (
            submissions / "erin" / CHAPTER.name,
            right,
            {
                "one_way_masks": vandal,
                "directed_surface_distances": "while True:\n    time.sleep(0.01)\n",
                "hd95": MEMORY_HOG,
            },
        ),
    ]:
        nbformat.write(_submission(student, answers, before), path)
    outside = _snapshot(tmp)
    gradebook = grade(autograder, submissions, tmp / "grades", LIMITS, jobs=2)
    with gradebook.open(newline="", encoding="utf-8") as f:
        rows = {(r["student"], r["question"]): r for r in csv.DictReader(f)}
    return tmp, rows, outside


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "grades" not in p.relative_to(root).parts
    }


EXPECTED = {  # student: points of one_way_masks, directed_surface_distances, hd95, assd, total
    "ann": ("1", "2", "2", "2", "7"),
    "bob": ("0", "0", "0", "0", "0"),
    "cat": ("1", "2", "0", "0", "3"),
    "dan": ("1", "0", "0", "0", "1"),
    "erin": ("1", "0", "2", "2", "5"),
}
QUESTIONS = ("one_way_masks", "directed_surface_distances", "hd95", "assd", "total")


def test_gradebook_has_the_expected_points(graded):
    _, rows, _ = graded
    assert {s for s, _ in rows} == set(EXPECTED)
    for student, points in EXPECTED.items():
        assert tuple(rows[student, q]["points"] for q in QUESTIONS) == points, student
    assert rows["ann", "total"]["max_points"] == "7"


def test_feedback_says_why(graded):
    _, rows, _ = graded
    feedback = {key: row["feedback"] for key, row in rows.items()}
    assert (
        feedback["ann", "hd95"] == "public check: right on 4 cases; hidden check: right on 4 cases"
    )
    assert "puts a inside b" in feedback["bob", "one_way_masks"]
    assert "ignores the spacing" in feedback["bob", "directed_surface_distances"]
    assert "pools both surfaces before taking the 95th percentile" in feedback["bob", "hd95"]
    assert "averages the two directed means" in feedback["bob", "assd"]
    assert "its process exited with code 3" in feedback["cat", "hd95"]
    assert "it printed more than 64 kB" in feedback["dan", "directed_surface_distances"]
    assert feedback["erin", "directed_surface_distances"] == (
        "no cell defines directed_surface_distances"
    )


def test_nothing_outside_the_output_folder_changed(graded):
    tmp, _, before = graded
    assert _snapshot(tmp) == before
    assert (tmp / "sentinel.txt").read_text() == "precious"
    log = (tmp / "grades" / "logs" / "erin.log").read_text()
    assert log.count("refused: the grader does not let a submission") == 7, log
    assert "NOT REFUSED" not in log
    assert "the cell ran longer than its limit of 12 s" in log and "no 8 GB" in log
    assert ("refused by the OS:" in log) == bool(os_fence())
    assert not (tmp / "grades" / "scratch").exists()


def test_a_submission_that_blocks_the_alarm_is_stopped_by_the_wall_clock(tmp_path, monkeypatch):
    sleeper = (
        "import signal, time\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\n"
        "time.sleep(600)"
    )
    cells = [{"source": sleeper, "kind": "student", "exercise": None}]
    monkeypatch.chdir(tmp_path)  # a relative scratch folder (grade --out grades/) works too
    outcome = run_submission(cells, Path("scratch"), Limits(seconds=2, cell_seconds=1))
    assert outcome.stopped == "it ran past the time limit of 2 s"
    assert [e["event"] for e in outcome.events] == ["ready", "start"]


def test_submissions_are_named_after_their_file_or_folder(tmp_path: Path):
    for relative in (
        "ann.ipynb",
        "bob/04_hausdorff.ipynb",
        "group/cat.ipynb",
        ".ipynb_checkpoints/x.ipynb",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("{}")
    assert sorted(find_submissions(tmp_path, "04_hausdorff")) == ["ann", "bob", "group/cat"]
    (tmp_path / "bob.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="two submissions belong to 'bob'"):
        find_submissions(tmp_path, "04_hausdorff")
