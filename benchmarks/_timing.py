"""The one timer the benchmark scripts share: wall seconds of a callable, GPU work included."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

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

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    times, result = [], None
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - start)
    return reduce(times), result  # type: ignore[return-value]
