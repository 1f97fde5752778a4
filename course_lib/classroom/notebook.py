"""What exercise cells call: ``check``, ``answer`` and, in the autograder version, ``hidden_check``.

* ``check("dice_gradient", dice_gradient)`` ends every exercise cell: it runs the public cases and
  prints that the answer is right, or raises :class:`WrongAnswer` saying why it is not.
* ``answer("directed_surface_distances")`` gives a later exercise the student's function when it
  passes its check, and the course's reference otherwise, saying which; so one unsolved exercise
  never breaks the ones after it.
* ``hidden_check("dice_gradient")`` is what the autograder version adds after each exercise: the
  public and the hidden cases, points and feedback. Under the grader it also reports the result
  on the file descriptor named by ``COURSE_GRADING_FD``.

``answer`` and ``hidden_check`` look the name up in the calling cell's globals (the notebook's
namespace) unless a namespace is given.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from course_lib.classroom.exercise import Exercise, NotAnswered, WrongAnswer, exercise

GRADING_SEED_ENV = "COURSE_GRADING_SEED"
"""The seed of the hidden cases (the grader sets it from ``grade --seed``; default 0)."""
GRADING_FD_ENV = "COURSE_GRADING_FD"
"""A file descriptor the grader reads results from (unset outside the grader)."""


def check(name: str, candidate: Any) -> None:
    """Run the public check of exercise ``name`` on ``candidate`` and say how it went.

    Raises
    ------
    NotAnswered
        If ``candidate`` still raises ``NotImplementedError``.
    WrongAnswer
        If a result differs from the reference; the message says on which case and, for a known
        mistake, why.
    """
    __tracebackhide__ = True
    ex = exercise(name)
    n = ex.verify(candidate, ex.public_cases())
    print(f"Exercise {ex.label} ({name}): right on {_cases(n)}, all the public ones.")


def _cases(n: int) -> str:
    return f"{n} case" if n == 1 else f"{n} cases"


def _caller_globals(namespace: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return namespace if namespace is not None else sys._getframe(2).f_globals


def answer(name: str, namespace: Mapping[str, Any] | None = None) -> Any:
    """The student's ``name`` if it is defined and passes its public check, else the reference.

    It prints which one the following code uses, and why.
    """
    ex = exercise(name)
    mine = _caller_globals(namespace).get(name)
    why = ""
    if mine is None:
        why = "is not defined in this notebook"
    else:
        try:
            ex.verify(mine, ex.public_cases())
        except NotAnswered:
            why = "is not answered yet"
        except WrongAnswer as err:
            why = f"does not pass its check yet ({err.reason})"
    if not why:
        print(f"{name}: using yours (it passes its check).")
        return mine
    print(f"{name}: yours {why}, so this cell uses the course's reference answer.")
    return ex.reference


@dataclass(frozen=True)
class Grade:
    """The grade of one exercise of one submission: a row of the gradebook."""

    question: str
    points: float
    max_points: float
    feedback: str


def grade_answer(ex: Exercise, candidate: Any, seed: int) -> Grade:
    """Points and feedback for ``candidate``: half the points for the public cases, half for the
    hidden ones (drawn with ``seed``)."""
    if candidate is None:
        return Grade(ex.name, 0.0, ex.points, f"no cell defines {ex.name}")
    if candidate is ex.reference:
        return Grade(ex.name, 0.0, ex.points, "handed in the course's reference answer")
    half = ex.points / 2
    points, notes, problems = 0.0, [], set()
    generator = torch.Generator().manual_seed(seed)
    for part, cases in (
        ("public", ex.public_cases),
        ("hidden", lambda: ex.hidden_cases(generator)),
    ):
        try:
            n = ex.verify(candidate, cases())
        except WrongAnswer as err:
            same = err.problem in problems
            notes.append(f"{part} check: " + ("fails the same way" if same else err.reason))
            problems.add(err.problem)
            if isinstance(err, NotAnswered):
                break
        else:
            points += half
            notes.append(f"{part} check: right on {_cases(n)}")
    return Grade(ex.name, points, ex.points, "; ".join(notes))


def hidden_check(name: str, namespace: Mapping[str, Any] | None = None) -> None:
    """Grade exercise ``name`` on its public and hidden cases; print (and report) the result.

    Raises :class:`WrongAnswer` when the points are not full, so the autograder version, which
    holds the solutions, fails loudly if a hidden case and a solution disagree.
    """
    __tracebackhide__ = True
    ex = exercise(name)
    seed = int(os.environ.get(GRADING_SEED_ENV, "0"))
    grade = grade_answer(ex, _caller_globals(namespace).get(name), seed)
    print(f"[hidden check] {name}: {grade.points:g}/{grade.max_points:g} ({grade.feedback})")
    fd = os.environ.get(GRADING_FD_ENV)
    if fd:
        os.write(int(fd), (json.dumps({"event": "grade", **asdict(grade)}) + "\n").encode())
    if grade.points < grade.max_points:
        raise WrongAnswer(ex, grade.feedback)
