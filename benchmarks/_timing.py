"""What the benchmark scripts share: a timer, a peak-memory probe, and the comparison table.

``time_call`` times one callable. ``compare`` measures course_lib against a peer the same way for
both: one warm-up call each (whose results give the largest difference), one each under the
peak-memory probe, then timed calls *interleaved* (ours, peer, ours, peer, ...), so that a machine
busy with other work slows both alike; the median time of each. The allocator is left as it is
(glibc's defaults), as a user runs it.
``print_table`` prints the rows; ``benchmarks/report.py`` gathers every comparison into one.
"""

from __future__ import annotations

import ctypes
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def time_call(
    fn: Callable[[], T],
    device: torch.device | str = "cpu",
    *,
    repeats: int = 5,
    warmup: int = 1,
    reduce: Callable[[list[float]], float] = statistics.median,
) -> tuple[float, T]:
    """``reduce`` (median, or min for a best-of) of ``repeats`` timed calls, and the last result.

    ``warmup`` untimed calls come first (allocations, lazy imports, cuDNN autotuning). On CUDA the
    device is synchronised around each call, so queued kernels are counted.
    """
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    times, result = [], None
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        result = fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return reduce(times), result  # type: ignore[return-value]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- peak memory --------------------------------------------------------------------------------

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _release_freed_memory() -> None:
    """Hand memory that is free but still resident back to the system (glibc's ``malloc_trim``),
    so that the resident size before a call counts only what is in use."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_memory_mib(fn: Callable[[], Any], device: torch.device | str = "cpu") -> float | None:
    """MiB that one call of ``fn`` adds at its peak to what was in use before it.

    CUDA: ``torch.cuda.max_memory_allocated`` (tensors on the device). CPU: the process's peak
    resident memory (Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` just before the
    call) minus the resident memory then, after freed memory went back to the system; it counts
    every allocation of the call, torch, NumPy and C libraries alike. ``None`` where Linux's
    counters are not available. Not for timed calls: pages handed back fault in again.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    _release_freed_memory()
    try:
        _CLEAR_REFS.write_text("5")  # VmHWM := VmRSS
        before = _status_kib("VmRSS")
    except (OSError, RuntimeError):
        return None
    fn()
    return max(_status_kib("VmHWM") - before, 0) / 1024


# --- comparisons --------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the comparison table: course_lib against one peer on one operation."""

    operation: str
    size: str
    peer: str
    ours_s: float
    peer_s: float
    ours_mib: float | None
    peer_mib: float | None
    max_diff: float | None
    target: float | None = None  # the ratio course_lib must stay at or under; None: no target
    device: str = "cpu"

    @property
    def ratio(self) -> float:
        return self.ours_s / self.peer_s

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio <= self.target


def largest_difference(a: Any, b: Any) -> float:
    """Largest absolute difference between two results: numbers, tensors, arrays or tuples."""
    if isinstance(a, (tuple, list)):
        return max(largest_difference(x, y) for x, y in zip(a, b, strict=True))
    ta, tb = torch.as_tensor(a), torch.as_tensor(b)
    return (ta.double().cpu() - tb.double().cpu()).abs().max().item()


def compare(
    operation: str,
    size: str,
    ours: Callable[[], Any],
    peer_name: str,
    peer: Callable[[], Any],
    **options: Any,
) -> Row:
    """The row of ``ours`` against one peer: :func:`compare_peers` with that peer alone."""
    return compare_peers(operation, size, ours, {peer_name: peer}, **options)[0]


def compare_peers(
    operation: str,
    size: str,
    ours: Callable[[], Any],
    peers: Mapping[str, Callable[[], Any]],
    *,
    repeats: int,
    budget_s: float = 30.0,
    target: float | None = None,
    device: torch.device | str = "cpu",
    peer_device: torch.device | str | None = None,
    results_differ: bool = False,
) -> list[Row]:
    """Time ``ours`` and each peer interleaved; one row per peer (see the module docstring).

    After one warm-up call each and one each under the peak-memory probe, rounds of timed calls
    (ours and each peer's, the order reversed every round) repeat ``repeats`` times, or fewer
    once ``budget_s`` seconds have gone into them (one round at least), so that a peer taking
    half a minute per call does not take the whole run. ``results_differ``: the two compute
    different things by design (random deformations, two networks), so no difference is reported.
    """
    device = torch.device(device)
    peer_device = device if peer_device is None else torch.device(peer_device)
    sides = {"": (ours, device), **{name: (fn, peer_device) for name, fn in peers.items()}}
    results = {key: fn() for key, (fn, _) in sides.items()}  # warm-up: imports, allocator, ...
    diffs = {
        name: None if results_differ else largest_difference(results[""], results[name])
        for name in peers
    }
    del results
    peaks = {key: peak_memory_mib(fn, dev) for key, (fn, dev) in sides.items()}
    times: dict[str, list[float]] = {key: [] for key in sides}
    spent = 0.0
    order = list(sides)
    while len(times[""]) < max(repeats, 1) and (not times[""] or spent < budget_s):
        for key in order:
            fn, dev = sides[key]
            times[key].append(_timed(fn, dev))
            spent += times[key][-1]
        order.reverse()  # ours first, then last: neither side always follows the other
    return [
        Row(
            operation,
            size,
            name,
            statistics.median(times[""]),
            statistics.median(times[name]),
            peaks[""],
            peaks[name],
            diffs[name],
            target,
            device.type,
        )
        for name in peers
    ]


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds of one call (its result dropped at once, so it does not hold memory)."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _seconds(s: float) -> str:
    return f"{1e3 * s:.1f} ms" if s < 1 else f"{s:.2f} s"


def _mib(m: float | None) -> str:
    return "-" if m is None else f"{m:.0f}"


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table; ratio = ours / peer, the target is the ratio's upper bound."""
    lines = [
        "| operation | size | ours on | peer | ours | peer time | ratio | target | "
        "ours MiB | peer MiB | max diff |",
        "|---|---|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        if r.target is None:
            target = "-"
        else:
            target = f"<= {r.target:g} {'met' if r.met else 'MISSED'}"
        diff = "n/a" if r.max_diff is None else f"{r.max_diff:.1e}"
        lines.append(
            f"| {r.operation} | {r.size} | {r.device} | {r.peer} | {_seconds(r.ours_s)} | "
            f"{_seconds(r.peer_s)} | {r.ratio:.2f} | {target} | {_mib(r.ours_mib)} | "
            f"{_mib(r.peer_mib)} | {diff} |"
        )
    return "\n".join(lines)


def settings() -> str:
    """One line with what the numbers depend on: threads, torch, Python, the CPU."""
    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), Python "
        f"{sys.version.split()[0]}"
        + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
    )


def print_table(rows: Sequence[Row], title: str) -> None:
    """Print a title, the settings, and the rows (as each bench script's own CLI does)."""
    print(f"{title}\n{settings()}; median of interleaved repeats; ratio = ours / peer\n")
    print(table(rows), flush=True)
