"""Run one notebook in a child process, the way the test command runs a chapter.

A fresh kernel in a working folder of the caller's choosing, with the environment the caller
gives (``COURSE_SEED``, ``OMP_NUM_THREADS``, ...). The child's wall time and peak memory are
measured, and the kernel's peak GPU memory when it used CUDA (a last cell, added to the run and
removed from the executed copy, asks torch); ``benchmarks/run_notebooks.py`` and
``benchmarks/claims.py`` share this.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_GPU_PROBE = """
import sys as _sys
_torch = _sys.modules.get("torch")
if _torch is not None and _torch.cuda.is_available() and _torch.cuda.is_initialized():
    print(_torch.cuda.max_memory_allocated())
"""

_RUN = """
import sys

import nbformat
from nbclient import NotebookClient

src, workdir, out, allow_errors, gpu_file, probe = sys.argv[1:7]
nb = nbformat.read(src, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(probe))
client = NotebookClient(
    nb,
    timeout=3600,
    kernel_name="python3",
    allow_errors=allow_errors == "1",
    resources={"metadata": {"path": workdir}},
)
try:
    client.execute()
finally:
    probe_cell = nb.cells.pop()
    printed = "".join(o.get("text", "") for o in probe_cell.get("outputs", []))
    with open(gpu_file, "w") as f:
        f.write(printed.strip())
    if out:
        nbformat.write(nb, out)
"""


@dataclass(frozen=True)
class NotebookRun:
    wall_s: float
    """Seconds from start to the kernel's exit."""
    cpu_s: float
    """CPU seconds (user + system) of the runner and its kernel: unlike the wall time, it hardly
    moves when other programs load the machine, so budgets are checked against it."""
    peak_mib: float
    """Largest resident set of the runner and its kernel, in MiB."""
    returncode: int
    """0 when every cell ran (or errors were allowed)."""
    peak_gpu_mib: float | None = None
    """Largest GPU memory torch allocated in the kernel, in MiB; None when it did not use CUDA
    (or a cell failed before the end)."""


def run_notebook(
    src: Path,
    workdir: Path,
    env: dict[str, str],
    *,
    out: Path | None = None,
    allow_errors: bool = False,
) -> NotebookRun:
    """Execute ``src`` with its kernel in ``workdir``; write the executed copy to ``out``."""
    gpu_file = workdir / ".peak_gpu_bytes"
    args = [str(src), str(workdir), str(out or ""), "1" if allow_errors else "0", str(gpu_file)]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN, *args, _GPU_PROBE], env={**os.environ, **env}
    )
    # wait4's usage covers the child and every descendant it waited for (the kernel), and on
    # Linux ru_maxrss is the largest resident set among them, in KiB.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    printed = gpu_file.read_text() if gpu_file.is_file() else ""
    gpu_file.unlink(missing_ok=True)
    peak_gpu = int(printed) / 2**20 if printed.isdigit() else None
    return NotebookRun(
        wall, cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), peak_gpu
    )
