"""Write every course dataset under data/ (or --data-dir), for the quick and/or full profile.

    python data_scripts/make_data.py --profile quick

Idempotent: a dataset whose files match its manifest (generator parameters and code, SHA-256
checksums) is kept; anything missing, changed or corrupt is generated again. Every file is written
atomically, so an interrupted run leaves no half-written file, and running again finishes the job.
The chapters call the same code (``course_lib.data.load_dataset``), so this command only saves
them the wait.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from course_lib.atomic import remove_stale_temporaries
from course_lib.data.datasets import DATASET_NAMES, data_root, dataset_is_valid, load_dataset
from course_lib.runtime import PROFILE_NAMES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate the course's synthetic datasets (cells, CT/MR volumes, nnU-Net raw).",
    )
    parser.add_argument(
        "--profile",
        choices=(*PROFILE_NAMES, "all"),
        default="quick",
        help="sizes to write: quick (CPU, seconds), full (GPU chapters), or all (default: quick)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where to write (default: $COURSE_DATA_DIR, else data/ in the course checkout)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=DATASET_NAMES,
        metavar="NAME",
        help=f"only these datasets (choose from: {', '.join(DATASET_NAMES)})",
    )
    parser.add_argument(
        "--force", action="store_true", help="regenerate even datasets that are valid on disk"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the process exit code (0 on success)."""
    args = _parser().parse_args(argv)
    root = data_root(args.data_dir)
    if root.exists() and not root.is_dir():
        _parser().error(f"--data-dir {str(root)!r} exists and is not a folder")
    profiles = PROFILE_NAMES if args.profile == "all" else (args.profile,)
    names = args.only or DATASET_NAMES
    removed = remove_stale_temporaries(root)
    jobs = [(p, n) for p in profiles for n in names]
    rows = []
    for profile, name in (bar := tqdm(jobs, desc="course data", unit="dataset")):
        bar.set_postfix_str(f"{profile}/{name}")
        start = time.perf_counter()
        kept = not args.force and dataset_is_valid(name, profile, data_dir=root)
        if not kept:
            (root / profile / f"{name}.manifest.json").unlink(missing_ok=True)
        load_dataset(name, profile, data_dir=root)
        rows.append((profile, name, "kept" if kept else "written", time.perf_counter() - start))
    print(f"\n{'profile':8} {'dataset':16} {'status':8} {'seconds':>8}")
    for profile, name, status, seconds in rows:
        print(f"{profile:8} {name:16} {status:8} {seconds:8.2f}")
    if removed:
        print(f"removed {removed} temporary file(s) left by an interrupted run")
    print(f"data in {root.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
