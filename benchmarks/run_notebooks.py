"""Execute every chapter notebook and print a table of wall time and peak memory per notebook.

It is also the command that renders executed copies for reading (``--render build/rendered``):
notebooks are committed without outputs, and this writes them with outputs elsewhere.

    python benchmarks/run_notebooks.py                      # all chapters, quick profile
    python benchmarks/run_notebooks.py notebooks/03_losses.ipynb --profile full
    python benchmarks/run_notebooks.py --render build/rendered

Each notebook runs in a fresh process (so peak memory is that notebook's own: the kernel's peak
resident set size) with a fresh kernel. The README's chapter table quotes this script's numbers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_RUN_ONE = """
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

path, render = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
workdir = str(Path(path).parent)  # chapters run from notebooks/, as in JupyterLab
resources = {"metadata": {"path": workdir}}
NotebookClient(nb, timeout=1800, kernel_name="python3", resources=resources).execute()
if render:
    nbformat.write(nb, render)
"""


def run_one(path: Path, profile: str, render_dir: Path | None) -> tuple[float, float, int]:
    """Execute one notebook in a child process; returns (wall seconds, peak MiB, return code)."""
    render = str(render_dir / path.name) if render_dir else ""
    env = dict(os.environ, COURSE_PROFILE=profile)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _RUN_ONE, str(path), render], env=env)
    # wait4's usage covers the child and every descendant it waited for (the kernel), and on
    # Linux ru_maxrss is the largest resident set among them, in KiB.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--profile", choices=("quick", "full"), default="quick")
    parser.add_argument("--render", type=Path, metavar="DIR", help="write executed copies here")
    args = parser.parse_args(argv)

    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    if args.render:
        args.render.mkdir(parents=True, exist_ok=True)

    rows, failed = [], False
    for path in notebooks:
        wall, peak, code = run_one(path, args.profile, args.render)
        failed |= code != 0
        rows.append((path.name, wall, peak, "ok" if code == 0 else f"FAILED ({code})"))
        print(f"  {path.name}: {wall:.1f} s", file=sys.stderr, flush=True)

    print(f"\nprofile={args.profile}, {os.cpu_count()} CPU cores\n")
    print(f"| {'notebook':<34} | {'wall time (s)':>13} | {'peak memory (MiB)':>17} | status |")
    print(f"|{'-' * 36}|{'-' * 15}:|{'-' * 19}:|--------|")
    for name, wall, peak, status in rows:
        print(f"| {name:<34} | {wall:>13.1f} | {peak:>17.0f} | {status} |")
    total = sum(r[1] for r in rows)
    print(f"| {'total':<34} | {total:>13.1f} | {'':>17} |        |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
