"""``python -m course_lib.classroom assign|grade``: make an assignment, grade its submissions.

    python -m course_lib.classroom assign notebooks/03_losses.ipynb notebooks/04_hausdorff.ipynb \\
        --out dist/ --colab-prefix https://colab.research.google.com/github/ME/MY-CLASS/blob/main/student
    python -m course_lib.classroom grade dist/autograder/03_losses.ipynb submissions/ --out grades/

See INSTRUCTORS.md for the whole walk-through.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_lib.classroom.assign import AssignError, assign
from course_lib.classroom.grade import Limits, grade
from course_lib.classroom.sandbox import os_fence


def _assign(args: argparse.Namespace) -> int:
    for chapter in args.chapters:
        try:
            student, autograder = assign(chapter, args.out, args.colab_prefix)
        except AssignError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"{chapter.name}: student version {student}, autograder version {autograder}")
        if args.colab_prefix:
            print(f"  Colab link for students: {args.colab_prefix.rstrip('/')}/{chapter.name}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    limits = Limits(
        seconds=args.time_limit,
        cell_seconds=args.cell_time_limit,
        memory_gb=args.memory_gb,
        output_bytes=args.output_kb * 1024,
    )
    fence = "the OS fence and the audit hook" if os_fence() else "the audit hook (no OS fence)"
    print(f"grading the submissions under {args.submissions} ({args.jobs} at a time, {fence})")
    gradebook = grade(
        args.autograder,
        args.submissions,
        args.out,
        limits,
        jobs=args.jobs,
        seed=args.seed,
        keep_scratch=args.keep_scratch,
    )
    print(f"gradebook: {gradebook}; each submission's output: {args.out / 'logs'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.classroom", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    a = sub.add_parser("assign", help="write the student and autograder versions of chapters")
    a.add_argument("chapters", nargs="+", type=Path, help="chapter notebooks (the instructor's)")
    a.add_argument("--out", type=Path, required=True, help="writes OUT/student/, OUT/autograder/")
    a.add_argument(
        "--colab-prefix",
        help="where the student copies will be on GitHub, as a Colab address up to the folder "
        "(https://colab.research.google.com/github/OWNER/REPO/blob/BRANCH/FOLDER); the badge of "
        "each student copy then opens that copy (without it, the badge is removed)",
    )
    a.set_defaults(run=_assign)

    g = sub.add_parser("grade", help="grade a folder of submissions into OUT/gradebook.csv")
    g.add_argument("autograder", type=Path, help="OUT/autograder/<chapter>.ipynb from assign")
    g.add_argument("submissions", type=Path, help="folder of submitted .ipynb files")
    g.add_argument("--out", type=Path, required=True, help="writes gradebook.csv and logs/ here")
    g.add_argument("--time-limit", type=float, default=120.0, help="seconds per notebook (120)")
    g.add_argument("--cell-time-limit", type=float, default=30.0, help="seconds per cell (30)")
    g.add_argument("--memory-gb", type=float, default=4.0, help="memory per notebook (4)")
    g.add_argument("--output-kb", type=int, default=1024, help="printed output per notebook")
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at once (1)")
    g.add_argument("--seed", type=int, default=0, help="seed of the hidden cases (0)")
    g.add_argument("--keep-scratch", action="store_true", help="keep OUT/scratch/ to debug")
    g.set_defaults(run=_grade)

    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
