"""Do the chapters' asserts hold for every learner? Run chapters under several seeds and thread
counts and print, for every assert, how many runs it passed and by what margin.

    python benchmarks/claims.py                       # every chapter, seeds 0-4 x threads 1, 2
    python benchmarks/claims.py 03 08 --seeds 0 1 2   # chosen chapters and seeds
    python benchmarks/claims.py --json build/claims.json

A chapter's assert is a promise to every learner, whose seed (``COURSE_SEED``), thread count and
machine differ from its author's. Each run executes an instrumented copy of the chapter in an empty
folder, with ``COURSE_PROFILE=quick``, ``COURSE_SEED=s`` and ``OMP_NUM_THREADS=t``: every
``assert`` is recorded instead of raised (``_claims_recorder.py``), so one run reports all of them,
with the margin of each order comparison (``a > b`` has margin ``a - b``; positive means it held).

The table has one row per assert: chapter, code cell (0-based among code cells, as nbval numbers
them), the assert's text, runs passed out of runs made, and the minimum and median margin. An
assert that a run never reached (an error earlier in the chapter) counts as failed in that run.
The exit status is 1 when any assert failed in any run. This is a benchmark, not a test: all
chapters under 10 settings take about an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
from _claims_recorder import static_asserts
from _notebooks import run_notebook
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
RECORDER = Path(__file__).with_name("_claims_recorder.py")


@dataclass(frozen=True)
class Setting:
    chapter: Path
    seed: int
    threads: int

    @property
    def label(self) -> str:
        return f"{self.chapter.stem} seed={self.seed} threads={self.threads}"


def find_chapters(names: list[str]) -> list[Path]:
    """Notebooks named by number (``03``), stem (``03_losses``) or path; all when none."""
    chapters = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not names:
        return chapters
    found = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            found.append(path.resolve())
            continue
        matches = [c for c in chapters if c.stem == name or c.stem.split("_")[0] == name]
        if len(matches) != 1:
            raise SystemExit(f"claims.py: {name!r} names no single chapter under notebooks/")
        found.append(matches[0])
    return found


def _instrumented(index: int, source: str) -> str:
    """The cell's source with the line that tells the recorder which cell runs. A cell magic
    (``%%writefile``, ...) must stay the first line and its body is not Python of the chapter:
    such a cell is left as it is."""
    if source.lstrip().startswith("%%"):
        return source
    return f"__claims__.cell = {index}\n{source}"


def instrument(chapter: Path, records: Path) -> nbformat.NotebookNode:
    """The chapter with the recorder installed first and its records dumped last."""
    nb = nbformat.read(chapter, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        cell.source = _instrumented(i, cell.source)
    setup = RECORDER.read_text(encoding="utf-8") + "\n__claims__ = install()\n"
    nb.cells.insert(0, nbformat.v4.new_code_cell(setup))
    nb.cells.append(nbformat.v4.new_code_cell(f"__claims__.dump({str(records)!r})"))
    return nb


def chapter_asserts(chapter: Path) -> list[tuple[int, int, str]]:
    """``(code cell, line, text)`` of every assert, lines counted as in the instrumented cell."""
    nb = nbformat.read(chapter, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    transform = TransformerManager().transform_cell
    return [
        (i, line, text)
        for i, cell in enumerate(code)
        for line, text in static_asserts(transform(_instrumented(i, cell.source)))
    ]


@dataclass
class Outcome:
    """What one run of a chapter recorded."""

    asserts: dict[tuple[int, int], dict[str, object]]
    """``(cell, line) -> {"passed": bool, "margin": float | None}`` for every assert evaluated."""
    first_error: int | None
    """The first code cell that raised (asserts from there on were not reached), or None."""
    wall_s: float


def _first_error(executed: Path) -> int | None:
    nb = nbformat.read(executed, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"][1:-1]  # without the injected cells
    for i, cell in enumerate(code):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return i
    return None


def run_setting(setting: Setting, profile: str) -> Outcome:
    """Run one chapter under one setting, in an empty folder, and collect its asserts."""
    with tempfile.TemporaryDirectory(prefix="claims-") as tmp:
        tmp_path = Path(tmp)
        workdir = tmp_path / "work"  # the chapter alone in an empty folder, as on Colab
        workdir.mkdir()
        records, executed = tmp_path / "records.json", tmp_path / "executed.ipynb"
        source = tmp_path / setting.chapter.name
        nbformat.write(instrument(setting.chapter, records), source)
        env = {
            "COURSE_PROFILE": profile,
            "COURSE_SEED": str(setting.seed),
            "OMP_NUM_THREADS": str(setting.threads),
            "MKL_NUM_THREADS": str(setting.threads),
        }
        run = run_notebook(source, workdir, env, out=executed, allow_errors=True)
        print(
            f"  {setting.label}: {run.wall_s:.0f} s ({run.cpu_s:.0f} CPU s)",
            file=sys.stderr,
            flush=True,
        )
        raw = json.loads(records.read_text(encoding="utf-8")) if records.is_file() else []
        first_error = _first_error(executed) if executed.is_file() else 0
    asserts: dict[tuple[int, int], dict[str, object]] = {}
    for r in raw:
        key = (r["cell"], r["line"])
        seen = asserts.setdefault(key, {"passed": True, "margin": r["margin"]})
        seen["passed"] = bool(seen["passed"]) and r["passed"]
        if r["margin"] is None or seen["margin"] is None:
            seen["margin"] = None
        else:  # an assert evaluated in a loop: its worst evaluation counts
            seen["margin"] = min(seen["margin"], r["margin"])  # type: ignore[type-var]
    return Outcome(asserts, first_error, run.wall_s)


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4g}"


def report(chapters: list[Path], settings: list[Setting], results: dict[Setting, Outcome]) -> bool:
    """Print the table; return whether every assert passed in every run that reached it.

    An assert that a run did not evaluate although its cell ran without error sits in a branch
    that run did not take (``if P.name == "full":``): it counts as skipped, not failed.
    """
    all_passed = True
    blank = "|        |         |            |               |"
    head = "| passed | skipped | min margin | median margin |"
    print(f"| {'chapter':<8} | cell | {'assert':<70} {head}")
    print(f"|{'-' * 10}|-----:|{'-' * 72}|-------:|--------:|-----------:|--------------:|")
    for chapter in chapters:
        runs = [results[s] for s in settings if s.chapter == chapter]
        errors = sorted({r.first_error for r in runs if r.first_error is not None})
        for cell, line, text in chapter_asserts(chapter):
            passed = made = skipped = 0
            margins = []
            for run in runs:
                found = run.asserts.get((cell, line))
                if found is None and (run.first_error is None or cell < run.first_error):
                    skipped += 1
                    continue
                made += 1
                if found is not None and found["passed"]:
                    passed += 1
                if found is not None and found["margin"] is not None:
                    margins.append(found["margin"])
            all_passed &= passed == made
            short = text if len(text) <= 70 else text[:67] + "..."
            low = min(margins) if margins else None
            mid = statistics.median(margins) if margins else None
            print(
                f"| {chapter.stem[:8]:<8} | {cell:>4} | {short:<70} | {passed:>3}/{made:<2} "
                f"| {skipped:>7} | {_fmt(low):>10} | {_fmt(mid):>13} |"
            )
        if errors:
            note = f"a cell raised in {sum(r.first_error is not None for r in runs)} run(s)"
            print(f"| {chapter.stem[:8]:<8} | {errors[0]:>4} | {note:<70} {blank}")
            all_passed = False
        times = [r.wall_s for r in runs]
        note = f"wall time per run: {min(times):.0f}-{max(times):.0f} s"
        print(f"| {chapter.stem[:8]:<8} |      | {note:<70} {blank}")
    return all_passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="numbers, stems or paths (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--profile", choices=("quick", "full"), default="quick")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="threads to keep busy (2: one-thread runs two at a time, two-thread runs alone)",
    )
    parser.add_argument("--json", type=Path, help="also write every run's records here")
    args = parser.parse_args(argv)

    chapters = find_chapters(args.chapters)
    settings = [Setting(c, s, t) for c in chapters for t in args.threads for s in args.seeds]
    results: dict[Setting, Outcome] = {}
    for threads in args.threads:  # never more threads than --jobs at once: OpenMP threads that
        # share a core spin-wait on each other, and a run takes many times its CPU time
        batch = [s for s in settings if s.threads == threads]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs // threads)) as pool:
            outcomes = pool.map(lambda s: run_setting(s, args.profile), batch)
            results.update(zip(batch, outcomes, strict=True))

    print(
        f"\nprofile={args.profile}, seeds {args.seeds}, threads {args.threads}, "
        f"{os.cpu_count()} CPU cores\n"
    )
    ok = report(chapters, settings, results)
    if args.json:
        rows: dict[str, list] = defaultdict(list)
        for s, res in results.items():
            for (cell, line), r in res.asserts.items():
                rows[s.chapter.stem].append(
                    {"seed": s.seed, "threads": s.threads, "cell": cell, "line": line, **r}
                )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
