"""Student copies run as Colab opens them: the set-up cells and the exercise sections of the two
example chapters' student versions, alone in an empty folder, course_lib from a wheel.

Every answer cell must raise the plain "not answered yet" message of its exercise (the cells are
tagged ``raises-exception``, so the run goes on), and a later exercise that builds on an earlier
one must fall back to the course's reference answer and say so. Both chapters run in one kernel
(their exercise names differ), which saves starting a second one.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from _colab import ROOT, run_in_colab_layout

from course_lib.classroom import exercise
from course_lib.classroom.assign import METADATA_KEY, assign, setup_and_exercises

CHAPTERS = ("03_losses", "04_hausdorff")


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_student_exercises_raise_until_answered_in_the_colab_layout(
    wheel_site: Path, tmp_path: Path
):
    sections = []
    for chapter in CHAPTERS:
        student, _ = assign(ROOT / "notebooks" / f"{chapter}.ipynb", tmp_path / "dist")
        sections.append(setup_and_exercises(nbformat.read(student, as_version=4)))
    nb = sections[0]
    for other in sections[1:]:
        nb.cells += other.cells
    workdir = tmp_path / "content"
    workdir.mkdir()
    run_in_colab_layout(nb, wheel_site, workdir)
    answered = [c for c in nb.cells if c.metadata.get(METADATA_KEY, {}).get("role") == "answer"]
    assert {exercise(c.metadata[METADATA_KEY]["exercise"]).chapter for c in answered} == set(
        CHAPTERS
    )
    for cell in answered:
        ex = exercise(cell.metadata[METADATA_KEY]["exercise"])
        (error,) = [o for o in cell.outputs if o.output_type == "error"]
        assert error.ename == "NotAnswered"
        assert error.evalue.startswith(f"Exercise {ex.label} ({ex.name}) is not answered yet")
        if "answer(" in cell.source:  # a later exercise goes on with the reference
            assert "so this cell uses the course's reference answer" in _text(cell)
    assert sum("answer(" in c.source for c in answered) >= 2
