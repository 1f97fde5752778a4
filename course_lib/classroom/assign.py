"""Write the student and autograder versions of a chapter from the chapter notebook itself.

The chapter is the instructor's notebook: its "## Exercises" section holds each graded exercise as
one code cell, with the solution between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines
(nbgrader's markers) and ending with ``check("name", name)``; the checks live in
``course_lib.classroom`` (see CONTRIBUTING.md, "Writing graded exercises").

* The **student version** is the whole chapter with every solution replaced by a
  ``raise NotImplementedError(...)`` that says what to write. Its exercise cells are tagged
  ``raises-exception`` (nbval, nbclient and Jupyter Book let such a cell fail) and name their
  exercise in their metadata; the public ``check`` stays.
* The **autograder version** is what the grader runs: the chapter's title and set-up cells (the
  install and environment cells), then the exercise section with its solutions and, after each
  exercise, a hidden check (public and hidden cases, points, feedback). Running it as it is shows
  that the solutions pass every hidden case.
"""

from __future__ import annotations

import copy
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from course_lib._version import __version__
from course_lib.classroom.exercise import Exercise, chapter_exercises, exercise

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
EXERCISES_HEADING = re.compile(r"^##\s+Exercises\b", re.MULTILINE)
CHECK_CALL = re.compile(r"""^check\(\s*["']([A-Za-z_]\w*)["']""", re.MULTILINE)
COLAB_LINK = re.compile(
    r"\[!\[Open In Colab\]\([^)]*\)\]\((https://colab\.research\.google\.com/[^)]*)\)"
)
METADATA_KEY = "course"
"""Cell and notebook metadata key of what this module adds (``{"exercise": name, "role": ...}``)."""
RAISES = "raises-exception"
WIDTH = 100
"""Line length of the generated code (the project's)."""
HIDDEN = "hidden-check"


class AssignError(ValueError):
    """The chapter cannot be turned into an assignment; the message says where and why."""


@dataclass(frozen=True)
class Chapter:
    """A chapter notebook split the way the classroom tools need it."""

    path: Path
    notebook: NotebookNode
    exercise_cells: dict[str, int]
    """Exercise name -> index of its cell."""

    @property
    def stem(self) -> str:
        return self.path.stem


def exercise_section_start(nb: NotebookNode) -> int | None:
    """Index of the markdown cell opening the "## Exercises" section, or None."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and EXERCISES_HEADING.search(cell.source):
            return i
    return None


def setup_and_exercises(nb: NotebookNode) -> NotebookNode:
    """A copy of ``nb`` cut to what the classroom runs: its title (first markdown cell), its first
    two code cells (install, environment) and its "## Exercises" section."""
    start = exercise_section_start(nb)
    if start is None:
        raise AssignError("no markdown cell opens the '## Exercises' section")
    before = nb.cells[:start]
    title = [c for c in before[:1] if c.cell_type == "markdown"]
    setup = [c for c in before if c.cell_type == "code"][:2]
    cut = copy.deepcopy(nb)
    cut.cells = copy.deepcopy(title + setup + nb.cells[start:])
    return cut


def exercise_name(cell: NotebookNode) -> str | None:
    """The exercise a code cell answers: from its metadata, else from its ``check("name", ...)``."""
    if cell.cell_type != "code":
        return None
    named = cell.metadata.get(METADATA_KEY, {}).get("exercise")
    if named:
        return str(named)
    found = CHECK_CALL.findall(cell.source)
    return found[0] if found else None


def read_chapter(path: Path) -> Chapter:
    """Read a chapter and check that its graded exercises are complete and well marked.

    Raises
    ------
    AssignError
        If the section is missing, a cell lacks or unbalances its solution markers, an exercise is
        not registered for this chapter, or a registered one has no cell.
    """
    nb = nbformat.read(path, as_version=4)
    start = exercise_section_start(nb)
    if start is None:
        raise AssignError(f"{path.name}: no markdown cell opens the '## Exercises' section")
    cells: dict[str, int] = {}
    for i in range(start + 1, len(nb.cells)):
        name = exercise_name(nb.cells[i])
        if name is None:
            continue
        try:
            ex = exercise(name)
        except KeyError as err:
            raise AssignError(f"{path.name}, cell {i}: {err.args[0]}") from err
        if ex.chapter != path.stem:
            raise AssignError(f"{path.name}, cell {i}: {name!r} is an exercise of {ex.chapter}")
        if name in cells:
            raise AssignError(f"{path.name}: cells {cells[name]} and {i} both answer {name!r}")
        _solution_regions(nb.cells[i].source, f"{path.name}, cell {i} ({name})")
        cells[name] = i
    missing = [e.name for e in chapter_exercises(path.stem) if e.name not in cells]
    if missing:
        raise AssignError(f"{path.name}: no exercise cell calls check() for {missing}")
    return Chapter(path, nb, cells)


def _solution_regions(source: str, where: str) -> list[tuple[int, int]]:
    """(begin, end) line numbers of every solution region; at least one, balanced."""
    regions, begin = [], None
    for n, line in enumerate(source.splitlines()):
        if line.strip() == BEGIN:
            if begin is not None:
                raise AssignError(f"{where}: {BEGIN!r} on line {n + 1} inside another solution")
            begin = n
        elif line.strip() == END:
            if begin is None:
                raise AssignError(f"{where}: {END!r} on line {n + 1} without a {BEGIN!r}")
            regions.append((begin, n))
            begin = None
    if begin is not None:
        raise AssignError(f"{where}: the solution opened on line {begin + 1} is never closed")
    if not regions:
        raise AssignError(f"{where}: no solution between {BEGIN!r} and {END!r} lines")
    return regions


def todo_message(ex: Exercise) -> str:
    """What the student's empty answer raises: which exercise, and what to write."""
    return (
        f"Exercise {ex.label} ({ex.name}) is not answered yet: {ex.task} Replace this line with "
        "your code and run the cell; check() then says whether it is right, and if not, why."
    )


def strip_solutions(source: str, ex: Exercise) -> str:
    """``source`` with each solution region replaced by a ``raise NotImplementedError``."""
    lines = source.splitlines()
    out, last = [], 0
    for begin, end in _solution_regions(source, ex.name):
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        out += lines[last:begin]
        out.append(f"{indent}raise NotImplementedError(")
        chunks = textwrap.wrap(todo_message(ex), width=WIDTH - len(indent) - 7)
        out += [
            f"{indent}    {json.dumps(c + ' ' * (i < len(chunks) - 1), ensure_ascii=False)}"
            for i, c in enumerate(chunks)
        ]
        out.append(f"{indent})")
        last = end + 1
    return "\n".join(out + lines[last:])


def _badge(source: str, colab_prefix: str | None, filename: str) -> str:
    """The Colab badge pointed at the student copy, or removed when its address is unknown."""
    if colab_prefix is None:
        return re.sub(r"\n{3,}", "\n\n", COLAB_LINK.sub("", source))
    return COLAB_LINK.sub(
        lambda m: m.group(0).replace(m.group(1), colab_prefix.rstrip("/") + "/" + filename),
        source,
    )


def _tag(cell: NotebookNode, tag: str, **course: str) -> None:
    tags = cell.metadata.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)
    cell.metadata[METADATA_KEY] = course


HANDING_IN = """## Handing in

When the exercises above are done, save the notebook (on Colab: File > Download > Download
.ipynb) and hand in that one file. It is graded by running its set-up cells and its Exercises
section only, each exercise on its own: an exercise may use the other exercises' answers through
`answer(...)`, but not variables from earlier sections of the chapter. Each exercise earns half of
its points when its `check(...)` passes, and the other half from hidden cases that the grader
draws afresh."""


def student_version(chapter: Chapter, colab_prefix: str | None = None) -> NotebookNode:
    """The whole chapter, solutions removed, each exercise cell raising until it is answered."""
    nb = copy.deepcopy(chapter.notebook)
    filename = chapter.path.name
    if nb.cells and nb.cells[0].cell_type == "markdown":
        nb.cells[0].source = _badge(nb.cells[0].source, colab_prefix, filename)
    for name, i in chapter.exercise_cells.items():
        cell = nb.cells[i]
        cell.source = strip_solutions(cell.source, exercise(name))
        _tag(cell, RAISES, exercise=name, role="answer")
    nb.cells.append(nbformat.v4.new_markdown_cell(HANDING_IN))
    nb.metadata[METADATA_KEY] = _notebook_metadata(chapter, "student")
    return nb


def _hidden_cell(ex: Exercise) -> NotebookNode:
    cell = nbformat.v4.new_code_cell(
        f"# Hidden check of exercise {ex.label} (autograder only): public and hidden cases.\n"
        "from course_lib.classroom import hidden_check\n\n"
        f'hidden_check("{ex.name}")'
    )
    _tag(cell, HIDDEN, exercise=ex.name, role="hidden")
    return cell


def autograder_version(chapter: Chapter) -> NotebookNode:
    """Title and set-up cells, then the exercise section with solutions and hidden checks."""
    nb = setup_and_exercises(chapter.notebook)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        name = exercise_name(cell)
        if name is not None:
            cell.metadata[METADATA_KEY] = {"exercise": name, "role": "answer"}
            cells.append(_hidden_cell(exercise(name)))
    nb.cells = cells
    nb.metadata[METADATA_KEY] = _notebook_metadata(chapter, "autograder")
    return nb


def _notebook_metadata(chapter: Chapter, version: str) -> dict[str, object]:
    return {
        "chapter": chapter.stem,
        "version": version,
        "course_lib": __version__,
        "exercises": [[e.name, e.points] for e in chapter_exercises(chapter.stem)],
    }


def assign(path: Path, out: Path, colab_prefix: str | None = None) -> tuple[Path, Path]:
    """Write ``out/student/<chapter>.ipynb`` and ``out/autograder/<chapter>.ipynb``."""
    chapter = read_chapter(path)
    written = []
    for folder, nb in (
        ("student", student_version(chapter, colab_prefix)),
        ("autograder", autograder_version(chapter)),
    ):
        target = out / folder / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.validate(nb)
        nbformat.write(nb, target)
        written.append(target)
    return written[0], written[1]
