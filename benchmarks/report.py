"""Every peer comparison in one run, printed as one table (the README's Performance section).

    python benchmarks/report.py                  # the issue's sizes, 2 threads (about 5 min)
    python benchmarks/report.py --quick          # small sizes, to try it (about a minute)
    python benchmarks/report.py --only losses surface --threads 1
    python benchmarks/report.py --gpu-rows       # on a GPU: HD95 at 256³ and the training steps

One row per operation and size: course_lib's median time and the peer's (interleaved, in the same
process, with the same inputs, dtype and threads), their ratio (ours / peer), the target that ratio
must stay at or under, the peak memory each call adds, and the largest difference of the results.
The comparisons themselves live in the ``bench_*`` modules next to this script (each also runs
alone); this script only gathers them. It exits with status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import bench_elastic
import bench_losses
import bench_sliding_window
import bench_surface
import bench_training
import torch
from _timing import Row, settings, table  # benchmarks/_timing.py, next to this script

CPU = torch.device("cpu")


def sections(repeats: int, quick: bool) -> dict[str, Callable[[], list[Row]]]:
    """The comparisons on the CPU, by name (``--only`` picks some)."""

    def elastic() -> list[Row]:
        row = bench_elastic.elastic_row(repeats, quick)
        return [] if row is None else [row]

    return {
        "losses": lambda: bench_losses.rows(CPU, repeats, quick),
        "surface": lambda: (
            bench_surface.surface_rows(repeats, quick) + bench_surface.edt_rows(repeats, quick)
        ),
        "sliding": lambda: [bench_sliding_window.sliding_window_row(CPU, repeats, quick)],
        "elastic": elastic,
        "training": lambda: bench_training.rows(CPU, repeats, quick),
    }


def gpu_rows(repeats: int, quick: bool) -> list[Row]:
    """HD95 and ASSD with course_lib on the GPU against the CPU peers; training steps on the GPU
    (both nets there); the throughput is the batch over the step time."""
    cuda = torch.device("cuda")
    rows = bench_surface.surface_rows(repeats, quick, device=cuda)
    return rows + bench_training.rows(cuda, repeats, quick)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the report")
    parser.add_argument("--repeats", type=int, default=5, help="timed pairs per row at most")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--only", nargs="+", metavar="SECTION", help="some of the CPU sections")
    parser.add_argument(
        "--gpu-rows", action="store_true", help="add the GPU rows (needs CUDA; the CPU rows too)"
    )
    parser.add_argument("--no-cpu", action="store_true", help="with --gpu-rows: the GPU rows only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    available = sections(args.repeats, args.quick)
    chosen = args.only or list(available)
    if unknown := sorted(set(chosen) - set(available)):
        parser.error(f"unknown section(s) {unknown}; choose from {list(available)}")
    if args.gpu_rows and not torch.cuda.is_available():
        parser.error("--gpu-rows needs a CUDA device")

    start = time.perf_counter()
    rows: list[Row] = []
    for name in [] if args.no_cpu else chosen:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows += available[name]()
    if args.gpu_rows:
        print("measuring the GPU rows ...", file=sys.stderr, flush=True)
        rows += gpu_rows(args.repeats, args.quick)

    print(f"\n{settings()}; {'quick sizes' if args.quick else 'full sizes'}; median of up to")
    print(f"{args.repeats} interleaved timed pairs per row; ratio = ours / peer; MiB = peak memory")
    print("a call adds (resident memory on the CPU, allocated memory on a GPU)\n")
    print(table(rows))
    steps = [r for r in rows if r.operation.endswith("training step")]
    print("\n".join(["", *map(bench_training.throughput, steps)]) if steps else "")
    missed = [r for r in rows if r.met is False]
    print(
        f"\n{len(rows)} rows in {time.perf_counter() - start:.0f} s; targets missed: {len(missed)}"
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
