"""Student and autograder versions written from a chapter, and the chapters' own solutions.

No kernel runs here: the versions are checked as files, and each chapter's exercise cells are run
with ``exec`` in one fresh namespace, in order, as the grader runs them: they must be
self-contained, pass their public checks and get full points from their hidden ones.
"""

from __future__ import annotations

import ast
import copy
import io
from contextlib import redirect_stdout
from pathlib import Path

import nbformat
import pytest

from course_lib.classroom import chapter_exercises, exercise
from course_lib.classroom.assign import (
    BEGIN,
    END,
    HIDDEN,
    METADATA_KEY,
    RAISES,
    AssignError,
    assign,
    autograder_version,
    read_chapter,
    student_version,
)
from course_lib.classroom.notebook import grade_answer

ROOT = Path(__file__).resolve().parents[1]
GRADED = sorted(
    p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb") if chapter_exercises(p.stem)
)
PREFIX = "https://colab.research.google.com/github/teacher/class/blob/main/student"


def test_the_example_chapters_have_graded_exercises():
    assert {p.stem for p in GRADED} >= {"03_losses", "04_hausdorff"}


@pytest.mark.parametrize("path", GRADED, ids=[p.stem for p in GRADED])
def test_student_version_removes_solutions_and_raises_until_answered(path: Path):
    chapter = read_chapter(path)
    student = student_version(chapter, colab_prefix=PREFIX)
    assert BEGIN not in nbformat.writes(student) and END not in nbformat.writes(student)
    assert f"({PREFIX}/{path.name})" in student.cells[0].source  # the badge opens this copy
    assert "Open In Colab" not in student_version(chapter).cells[0].source  # or is removed
    answers = {i: name for name, i in chapter.exercise_cells.items()}
    chapter_cells = chapter.notebook.cells + [None]  # the student's copy adds "Handing in"
    for i, (mine, theirs) in enumerate(zip(student.cells, chapter_cells, strict=True)):
        if i == 0 or theirs is None:
            continue
        if i not in answers:  # everything else is the chapter's own
            assert mine.source == theirs.source, i
            continue
        name, ex = answers[i], exercise(answers[i])
        assert mine.metadata[METADATA_KEY] == {"exercise": name, "role": "answer"}
        assert RAISES in mine.metadata["tags"]
        assert mine.source.rstrip().endswith(f'check("{name}", {name})')  # the public check stays
        assert f"Exercise {ex.label} ({name}) is not answered yet" in mine.source
        ast.parse(mine.source)
    assert student.cells[-1].source.startswith("## Handing in")
    assert student.metadata[METADATA_KEY]["version"] == "student"


@pytest.mark.parametrize("path", GRADED, ids=[p.stem for p in GRADED])
def test_autograder_version_is_setup_then_exercises_each_followed_by_its_hidden_check(path: Path):
    chapter = read_chapter(path)
    nb = autograder_version(chapter)
    code = [c for c in nb.cells if c.cell_type == "code"]
    chapter_code = [c for c in chapter.notebook.cells if c.cell_type == "code"]
    assert [c.source for c in code[:2]] == [c.source for c in chapter_code[:2]]  # install, env
    assert nb.cells[0].source == chapter.notebook.cells[0].source
    names = [e.name for e in chapter_exercises(path.stem)]
    hidden = [
        c.metadata[METADATA_KEY]["exercise"] for c in code if HIDDEN in c.metadata.get("tags", [])
    ]
    assert hidden == names
    for i, cell in enumerate(code):
        if HIDDEN in cell.metadata.get("tags", []):
            assert code[i - 1].metadata[METADATA_KEY] == {
                "exercise": cell.metadata[METADATA_KEY]["exercise"],
                "role": "answer",
            }
            assert BEGIN in code[i - 1].source  # with its solution
    assert nb.metadata[METADATA_KEY]["exercises"] == [
        [e.name, e.points] for e in chapter_exercises(path.stem)
    ]


@pytest.mark.parametrize("path", GRADED, ids=[p.stem for p in GRADED])
def test_chapter_solutions_are_self_contained_and_earn_full_points(path: Path):
    chapter = read_chapter(path)
    namespace: dict[str, object] = {}
    with redirect_stdout(io.StringIO()):
        for name, i in chapter.exercise_cells.items():
            exec(
                compile(chapter.notebook.cells[i].source, f"<{path.stem} {name}>", "exec"),
                namespace,
            )
            grade = grade_answer(exercise(name), namespace[name], seed=1)
            assert grade.points == grade.max_points, grade.feedback


def test_assign_writes_both_versions(tmp_path: Path):
    student, autograder = assign(GRADED[0], tmp_path)
    assert student == tmp_path / "student" / GRADED[0].name
    assert autograder == tmp_path / "autograder" / GRADED[0].name
    for written in (student, autograder):
        nbformat.validate(nbformat.read(written, as_version=4))


def _broken_copy(tmp_path: Path, edit) -> Path:
    source = ROOT / "notebooks" / "04_hausdorff.ipynb"
    nb = nbformat.read(source, as_version=4)
    edit(nb, read_chapter(source).exercise_cells)
    path = tmp_path / source.name
    nbformat.write(nb, path)
    return path


def _replace(name: str, old: str, new: str):
    def edit(nb, cells):
        nb.cells[cells[name]].source = nb.cells[cells[name]].source.replace(old, new, 1)

    return edit


def _rename_section(nb, cells):
    (section,) = [c for c in nb.cells if c.source.startswith("## Exercises")]
    section.source = "## Exercice"


def _no_solution(nb, cells):
    nb.cells[cells["assd"]].source = 'def assd(a, b):\n    return 0\n\n\ncheck("assd", assd)'


def _drop(nb, cells):
    nb.cells.pop(cells["assd"])


@pytest.mark.parametrize(
    "edit, message",
    [
        (_rename_section, "no markdown cell opens the '## Exercises' section"),
        (_replace("hd95", END, ""), "the solution opened on line"),
        (_replace("hd95", BEGIN, ""), "without a"),
        (_replace("hd95", END, f"{BEGIN}\n{END}"), "inside another solution"),
        (_no_solution, "no solution between"),
        (_replace("assd", 'check("assd"', 'check("asd"'), "no graded exercise is called 'asd'"),
        (_replace("assd", 'check("assd"', 'check("tversky_index"'), "is an exercise of 03_losses"),
        (_replace("assd", 'check("assd"', 'check("hd95"'), "both answer 'hd95'"),
        (_drop, r"no exercise cell calls check\(\) for \['assd'\]"),
    ],
    ids=[
        "section",
        "unclosed",
        "unopened",
        "nested",
        "empty",
        "unknown",
        "chapter",
        "twice",
        "gone",
    ],
)
def test_a_badly_marked_chapter_is_refused_with_the_reason(tmp_path: Path, edit, message: str):
    with pytest.raises(AssignError, match=message):
        read_chapter(_broken_copy(tmp_path, edit))


def test_copies_are_independent_of_the_chapter():
    chapter = read_chapter(GRADED[0])
    before = copy.deepcopy(chapter.notebook)
    student_version(chapter)
    autograder_version(chapter)
    assert chapter.notebook == before
