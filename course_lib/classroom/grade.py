"""Grade a folder of submitted notebooks into a CSV gradebook.

For each submission the grader makes a scratch folder, and runs, in a separate process fenced in
by :mod:`course_lib.classroom.sandbox` (resource limits, a time limit per cell, an audit hook that
keeps writes inside the scratch folder) and under a wall-clock limit with a cap on its output:

1. the autograder version's set-up cells (install, environment: the quick profile, on the CPU);
2. the submission's "## Exercises" section, cell by cell, each graded exercise followed by the
   autograder's hidden check for it; hidden checks of exercises the grader did not find a cell
   for run at the end.

Only the exercise section runs, not the whole chapter: the graded exercises are self-contained,
so a class of a hundred grades in minutes on a laptop, and nothing in the earlier sections
(training runs) can change a grade. A submission that crashes, hangs, loops, floods its output or
tries to write outside its scratch folder loses the points of the exercises not graded by then,
with the reason in the feedback; the other submissions are graded as usual.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import nbformat

from course_lib.classroom.assign import METADATA_KEY, exercise_name, exercise_section_start
from course_lib.classroom.notebook import GRADING_FD_ENV, GRADING_SEED_ENV, Grade
from course_lib.classroom.sandbox import os_fence

GRADEBOOK_COLUMNS = ("student", "question", "points", "max_points", "feedback")
MAX_NOTEBOOK_BYTES = 20 * 2**20
"""A submitted file larger than this is not read (a chapter without outputs is ~100 kB)."""


@dataclass(frozen=True)
class Limits:
    """What one submission may use."""

    seconds: float = 120.0
    """Wall-clock time of the notebook's cells, set-up cells included."""
    startup_seconds: float = 60.0
    """Wall-clock time to start Python and import torch, before the first cell."""
    cell_seconds: float = 30.0
    """Time of one cell (a loop is interrupted and the next cell runs)."""
    memory_gb: float = 4.0
    """Address space of the process."""
    output_bytes: int = 2**20
    """What the cells may print, together."""
    file_bytes: int = 64 * 2**20
    """Size of any one file the submission writes (inside its scratch folder)."""
    os_fence: bool = True
    """Add :func:`~course_lib.classroom.sandbox.os_fence` where it works (Linux, as root)."""


@dataclass(frozen=True)
class Autograder:
    """What the grader takes from the autograder version."""

    chapter: str
    setup: list[str]
    hidden: dict[str, str]
    """Exercise name -> source of its hidden-check cell, in the chapter's order."""
    points: dict[str, float]

    @classmethod
    def read(cls, path: Path) -> Autograder:
        nb = nbformat.read(path, as_version=4)
        meta = nb.metadata.get(METADATA_KEY, {})
        if meta.get("version") != "autograder":
            raise ValueError(
                f"{path} is not an autograder version (python -m course_lib.classroom assign "
                "writes one to OUT/autograder/)"
            )
        start = exercise_section_start(nb)
        setup = [c.source for c in nb.cells[:start] if c.cell_type == "code"]
        hidden = {
            c.metadata[METADATA_KEY]["exercise"]: c.source
            for c in nb.cells
            if c.cell_type == "code" and c.metadata.get(METADATA_KEY, {}).get("role") == "hidden"
        }
        points = {str(name): float(top) for name, top in meta["exercises"]}
        return cls(meta["chapter"], setup, hidden, points)


@dataclass
class Outcome:
    """What came back from one submission's process."""

    events: list[dict[str, Any]] = field(default_factory=list)
    output: bytes = b""
    stopped: str = ""
    """Why the process stopped early ("" when it finished its cells)."""


def find_submissions(folder: Path, chapter: str) -> dict[str, Path]:
    """Student name -> notebook, for every ``*.ipynb`` under ``folder``.

    The name is the file's path below ``folder`` without ``.ipynb`` (``alice.ipynb`` -> alice),
    or its folder's when the file keeps the chapter's name (``alice/03_losses.ipynb`` -> alice).

    Raises
    ------
    ValueError
        If two files give the same name.
    """
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        relative = path.relative_to(folder)
        if path.stem == chapter and relative.parent.parts:
            student = relative.parent.as_posix()
        else:
            student = relative.with_suffix("").as_posix()
        if student in found:
            raise ValueError(f"two submissions belong to {student!r}: {found[student]} and {path}")
        found[student] = path
    return found


def submission_cells(path: Path, autograder: Autograder) -> list[dict[str, Any]]:
    """The cells the grader runs for one submission (see the module docstring)."""
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"the file is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
    nb = nbformat.read(path, as_version=4)
    start = exercise_section_start(nb)
    if start is None:  # the heading was deleted: start at the first exercise cell
        named = [i for i, c in enumerate(nb.cells) if exercise_name(c) in autograder.hidden]
        start = named[0] if named else len(nb.cells)
    cells = [{"source": s, "kind": "setup", "exercise": None} for s in autograder.setup]
    pending = dict(autograder.hidden)
    for cell in nb.cells[start:]:
        if cell.cell_type != "code":
            continue
        name = exercise_name(cell)
        cells.append({"source": cell.source, "kind": "student", "exercise": name})
        if name in pending:
            cells.append({"source": pending.pop(name), "kind": "hidden", "exercise": name})
    cells += [{"source": s, "kind": "hidden", "exercise": n} for n, s in pending.items()]
    return cells


def _read_capped(stream: IO[bytes], limit: int, outcome: Outcome, on_overflow: Any) -> None:
    kept, total = bytearray(), 0
    while chunk := stream.read1(65536):  # type: ignore[attr-defined]
        total += len(chunk)
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
        if total > limit and not outcome.stopped:
            outcome.stopped = f"it printed more than {limit // 1024} kB"
            on_overflow()
    outcome.output = bytes(kept)


def _read_events(fd: int, outcome: Outcome, ready: threading.Event) -> None:
    with os.fdopen(fd, "rb") as stream:
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                outcome.events.append(event)
                if event.get("event") == "ready":
                    ready.set()


def _environment(scratch: Path, fd: int, seed: int) -> dict[str, str]:
    package_parent = str(Path(__file__).resolve().parents[2])  # the folder holding course_lib/
    path = [package_parent, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LD_LIBRARY_PATH") if k in os.environ}
    env.update(
        HOME=str(scratch),
        TMPDIR=str(scratch / "tmp"),
        MPLCONFIGDIR=str(scratch / ".matplotlib"),
        XDG_CACHE_HOME=str(scratch / ".cache"),
        IPYTHONDIR=str(scratch / ".ipython"),
        COURSE_DATA_DIR=str(scratch / "data"),
        PYTHONPATH=os.pathsep.join(path),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        MPLBACKEND="Agg",
        COURSE_PROFILE="quick",
        CUDA_VISIBLE_DEVICES="",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        **{GRADING_FD_ENV: str(fd), GRADING_SEED_ENV: str(seed)},
    )
    return env


def run_submission(
    cells: list[dict[str, Any]], scratch: Path, limits: Limits, seed: int = 0
) -> Outcome:
    """Run ``cells`` in a fenced process inside ``scratch``; collect events and capped output."""
    scratch = scratch.resolve()  # the process runs in it: relative paths would not be found
    (scratch / "tmp").mkdir(parents=True, exist_ok=True)
    job = scratch / "job.json"
    job.write_text(
        json.dumps(
            {
                "cells": cells,
                "scratch": str(scratch),
                "cell_seconds": limits.cell_seconds,
                "cpu_seconds": int(limits.startup_seconds + limits.seconds) + 5,
                "memory_bytes": int(limits.memory_gb * 2**30),
                "file_bytes": limits.file_bytes,
            }
        ),
        encoding="utf-8",
    )
    read_fd, write_fd = os.pipe()
    outcome = Outcome()
    command = [sys.executable, "-m", "course_lib.classroom.sandbox", str(job)]
    if limits.os_fence and os_fence():
        command = [*os_fence(), str(scratch), *command]
    proc = subprocess.Popen(
        command,
        cwd=scratch,
        env=_environment(scratch, write_fd, seed),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=(write_fd,),
        start_new_session=True,  # its own process group, killed as a whole
    )
    os.close(write_fd)

    def kill() -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    assert proc.stdout is not None
    ready = threading.Event()
    readers = [
        threading.Thread(
            target=_read_capped, args=(proc.stdout, limits.output_bytes, outcome, kill)
        ),
        threading.Thread(target=_read_events, args=(read_fd, outcome, ready)),
    ]
    for reader in readers:
        reader.start()
    started = time.monotonic()
    while not ready.wait(0.1) and proc.poll() is None:
        if time.monotonic() - started > limits.startup_seconds:
            outcome.stopped = f"Python did not start within {limits.startup_seconds:g} s"
            kill()
    try:  # the time limit counts from the first cell
        code = proc.wait(timeout=limits.seconds)
    except subprocess.TimeoutExpired:
        outcome.stopped = outcome.stopped or f"it ran past the time limit of {limits.seconds:g} s"
        kill()
        code = proc.wait()
    kill()  # anything it left behind in its process group
    for reader in readers:
        reader.join()
    if not outcome.stopped and not any(e.get("event") == "done" for e in outcome.events):
        outcome.stopped = _exit_reason(code)
    return outcome


def _exit_reason(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        hint = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)"}.get(name, "")
        return f"its process was killed by {name}{hint}"
    return f"its process exited with code {code} before the end (a crash, or running out of memory)"


def grades_from(
    outcome: Outcome, cells: list[dict[str, Any]], autograder: Autograder
) -> list[Grade]:
    """One grade per exercise of the chapter, from the process's reports."""
    graded: dict[str, Grade] = {}
    last_status: dict[str, str] = {}
    for event in outcome.events:
        if event.get("event") == "grade" and event.get("question") in autograder.points:
            name = str(event["question"])
            top = autograder.points[name]
            points = min(max(float(event.get("points", 0.0)), 0.0), top)
            graded[name] = Grade(name, points, top, str(event.get("feedback", ""))[:2000])
        elif event.get("event") == "cell" and isinstance(event.get("index"), int):
            cell = cells[event["index"]] if 0 <= event["index"] < len(cells) else {}
            if cell.get("kind") == "hidden" and event.get("status") == "timeout":
                last_status[cell["exercise"]] = str(event.get("detail", ""))
    grades = []
    for name, top in autograder.points.items():
        if name in graded:
            grades.append(graded[name])
        elif name in last_status:
            grades.append(Grade(name, 0.0, top, f"its hidden check stopped: {last_status[name]}"))
        elif outcome.stopped:
            grades.append(
                Grade(name, 0.0, top, f"not graded: the notebook stopped, {outcome.stopped}")
            )
        else:
            grades.append(Grade(name, 0.0, top, "not graded: its hidden check did not report"))
    return grades


def _safe_name(student: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"


def grade_one(
    student: str,
    path: Path,
    autograder: Autograder,
    out: Path,
    limits: Limits,
    seed: int,
    keep_scratch: bool,
) -> list[Grade]:
    """Grade one submission; write its log to ``out/logs``; never raise for the submission's
    faults (they become feedback)."""
    scratch = out / "scratch" / _safe_name(student)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    started = time.perf_counter()
    try:
        cells = submission_cells(path, autograder)
    except Exception as err:  # an unreadable or oversized file: its grade says so
        reason = f"could not read the notebook: {type(err).__name__}: {err}"[:500]
        grades = [Grade(n, 0.0, p, reason) for n, p in autograder.points.items()]
        outcome = Outcome(stopped=reason)
    else:
        outcome = run_submission(cells, scratch, limits, seed)
        grades = grades_from(outcome, cells, autograder)
    log = out / "logs" / f"{_safe_name(student)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    summary = "\n".join(f"{g.question}: {g.points:g}/{g.max_points:g} {g.feedback}" for g in grades)
    log.write_bytes(
        outcome.output
        + f"\n--- grader: {time.perf_counter() - started:.1f} s; stopped: "
        f"{outcome.stopped or 'no'}\n{summary}\n".encode()
    )
    if not keep_scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    return grades


def write_gradebook(path: Path, grades: dict[str, list[Grade]]) -> None:
    """The CSV: a row per student and exercise, then the student's total."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(GRADEBOOK_COLUMNS)
        for student, rows in sorted(grades.items()):
            for g in rows:
                writer.writerow(
                    [student, g.question, f"{g.points:g}", f"{g.max_points:g}", g.feedback]
                )
            total, top = sum(g.points for g in rows), sum(g.max_points for g in rows)
            writer.writerow([student, "total", f"{total:g}", f"{top:g}", ""])


def grade(
    autograder_path: Path,
    submissions: Path,
    out: Path,
    limits: Limits | None = None,
    jobs: int = 1,
    seed: int = 0,
    keep_scratch: bool = False,
) -> Path:
    """Grade every submission under ``submissions``; return the gradebook's path."""
    chosen = limits or Limits()
    autograder = Autograder.read(autograder_path)
    found = find_submissions(submissions, autograder.chapter)
    if not found:
        raise ValueError(f"no .ipynb submissions under {submissions}")
    out.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[str, Path]) -> tuple[str, list[Grade]]:
        student, path = item
        grades = grade_one(student, path, autograder, out, chosen, seed, keep_scratch)
        total = sum(g.points for g in grades)
        print(f"  {student}: {total:g}/{sum(autograder.points.values()):g}", flush=True)
        return student, grades

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = dict(pool.map(one, found.items()))
    if not keep_scratch:
        shutil.rmtree(out / "scratch", ignore_errors=True)
    gradebook = out / "gradebook.csv"
    write_gradebook(gradebook, results)
    return gradebook
