"""Classroom assignments: graded exercises with checks that say why, student copies, a gradebook.

A chapter's graded exercises sit at the end of its notebook, in its "## Exercises" section. Each
is one self-contained cell: the student writes a function, and the cell ends with
``check("name", name)``, which runs the exercise's public cases and explains a wrong answer.
The references, the known mistakes and the cases live here, one module per chapter
(``ch03_losses``, ``ch04_hausdorff``, ...), so that every diagnosis is unit-tested.

    python -m course_lib.classroom assign notebooks/03_losses.ipynb --out dist/
    python -m course_lib.classroom grade dist/autograder/03_losses.ipynb submissions/ --out grades/

``assign`` writes a student version (solutions replaced by a clear ``NotImplementedError``) and an
autograder version (the set-up cells, the exercises with their solutions and a hidden check after
each); ``grade`` runs every submission's exercises in a sandboxed process and writes a CSV
gradebook. INSTRUCTORS.md walks through an assignment; CONTRIBUTING.md says how to write one.
"""

from course_lib.classroom.exercise import (
    Case,
    Exercise,
    Mistake,
    NotAnswered,
    WrongAnswer,
    chapter_exercises,
    exercise,
)
from course_lib.classroom.notebook import answer, check, hidden_check

__all__ = [
    "Case",
    "Exercise",
    "Mistake",
    "NotAnswered",
    "WrongAnswer",
    "answer",
    "chapter_exercises",
    "check",
    "exercise",
    "hidden_check",
]
