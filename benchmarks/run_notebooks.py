"""Execute every chapter notebook and print a table of wall time and peak memory per notebook.

By default it measures the way the test command runs the chapters (tests/test_chapters.py): two
chapters at a time, one thread each, on a 2-core machine, each in an empty folder with a data
folder of its own, so the time includes making the chapter's data. The README's chapter table
quotes these numbers. It is also the command that renders executed copies for reading
(``--render build/rendered``): notebooks are committed without outputs.

    python benchmarks/run_notebooks.py                      # all chapters, quick profile
    python benchmarks/run_notebooks.py notebooks/03_losses.ipynb --jobs 1 --threads 2
    python benchmarks/run_notebooks.py --profile full       # on a GPU
    python benchmarks/run_notebooks.py --render build/rendered

Each notebook runs in a fresh process with a fresh kernel, so peak memory is that notebook's own
(the kernel's peak resident set size, and on a GPU the most memory torch allocated there).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _notebooks import NotebookRun, run_notebook

ROOT = Path(__file__).resolve().parents[1]


def run_one(path: Path, profile: str, threads: int, render_dir: Path | None) -> NotebookRun:
    """Execute one chapter in an empty folder with its own data folder."""
    with tempfile.TemporaryDirectory(prefix="chapter-") as tmp:
        env = {
            "COURSE_PROFILE": profile,
            "COURSE_DATA_DIR": str(Path(tmp) / "data"),
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
        }
        out = render_dir / path.name if render_dir else None
        run = run_notebook(path, Path(tmp), env, out=out)
    gpu = "" if run.peak_gpu_mib is None else f", peak GPU memory {run.peak_gpu_mib:.0f} MiB"
    print(
        f"  {path.name}: {run.wall_s:.1f} s ({run.cpu_s:.1f} CPU s{gpu}), exit {run.returncode}",
        file=sys.stderr,
        flush=True,
    )
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--profile", choices=("quick", "full"), default="quick")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks at once (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads each (default 1)")
    parser.add_argument("--render", type=Path, metavar="DIR", help="write executed copies here")
    args = parser.parse_args(argv)

    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    if args.render:
        args.render.mkdir(parents=True, exist_ok=True)
    notebooks = [p.resolve() for p in notebooks]
    render = args.render.resolve() if args.render else None

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(lambda p: run_one(p, args.profile, args.threads, render), notebooks))

    print(
        f"\nprofile={args.profile}, {args.jobs} at a time with {args.threads} thread(s) each, "
        f"{os.cpu_count()} CPU cores\n"
    )
    gpu = any(r.peak_gpu_mib is not None for r in runs)
    gpu_head, gpu_rule = (
        (" peak GPU memory (MiB) |", "---------------------:|") if gpu else ("", "")
    )
    head = f"| {'notebook':<34} | wall time (s) | CPU time (s) | peak memory (MiB) |"
    print(f"{head}{gpu_head} status |")
    print(f"|{'-' * 36}|--------------:|-------------:|------------------:|{gpu_rule}--------|")
    for path, run in zip(notebooks, runs, strict=True):
        status = "ok" if run.returncode == 0 else f"FAILED ({run.returncode})"
        peak_gpu = "-" if run.peak_gpu_mib is None else f"{run.peak_gpu_mib:.0f}"
        gpu_cell = f" {peak_gpu:>21} |" if gpu else ""
        print(
            f"| {path.name:<34} | {run.wall_s:>13.1f} | {run.cpu_s:>12.1f} | {run.peak_mib:>17.0f} "
            f"|{gpu_cell} {status} |"
        )
    wall, cpu = sum(r.wall_s for r in runs), sum(r.cpu_s for r in runs)
    gpu_cell = f" {'':>21} |" if gpu else ""
    print(f"| {'total':<34} | {wall:>13.1f} | {cpu:>12.1f} | {'':>17} |{gpu_cell}        |")
    return 1 if any(r.returncode for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
