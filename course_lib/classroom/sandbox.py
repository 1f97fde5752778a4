"""The process that runs one submission's cells for the grader, fenced in: ``python -m`` this.

``python -m course_lib.classroom.sandbox JOB.json`` runs the cells listed in the job, in an IPython
shell (so magics work), inside the scratch folder the grader made for this submission. Before the
first cell it puts up its fences:

* **resource limits** (``setrlimit``): CPU seconds, address space, the size of any file written,
  open files, no core dumps. The soft limit equals the hard one and raising it is refused.
* **a time limit per cell** (``SIGALRM``): a cell that loops is interrupted, reported, and the
  next cell runs; the grader's wall-clock limit covers a submission that blocks the alarm.
* **an audit hook** (PEP 578) that refuses, with ``PermissionError``, every write, delete, rename,
  link, mode or owner change outside the scratch folder, starting programs (``subprocess``,
  ``os.system``, ``exec``, ``fork``), sockets, signals to other processes, loading libraries
  through ``ctypes`` and changing resource limits. An audit hook cannot be removed once added.

An audit hook guards Python-level operations only: code that makes its own system calls passes
it (``torch.save(x, "/elsewhere")`` writes through C++). So where the grader runs as root on
Linux, :func:`os_fence` adds a fence the operating system keeps: the submission starts in new
mount, network and PID namespaces (``unshare``) in which every file system is read-only except
its scratch folder, with no network and no other process in sight, and without any capability
(``setpriv``), so it cannot undo that. Elsewhere the audit hook is the fence, and INSTRUCTORS.md
suggests an unprivileged account or a container for a class one does not trust.

Each cell's outcome goes to the grader as a JSON line on the file descriptor named by
``COURSE_GRADING_FD`` (the hidden checks write their grades there too); what the cells print
goes to standard output, which the grader caps.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from course_lib.classroom.notebook import GRADING_FD_ENV

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {
    # audit event -> positions of the path arguments that must lie inside the scratch folder
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.chflags": (0,),
    "os.lchflags": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (1,),
    "shutil.copymode": (1,),
    "shutil.copystat": (1,),
    "shutil.copytree": (1,),
    "shutil.move": (0, 1),
}
_FD_PATH_EVENTS = {"os.truncate", "os.utime"}
"""Events whose path may be a file descriptor; a writable one was opened inside the fence."""
_FORBIDDEN = {
    "subprocess.Popen": "start programs",
    "os.system": "start programs",
    "os.exec": "start programs",
    "os.spawn": "start programs",
    "os.posix_spawn": "start programs",
    "os.fork": "fork",
    "os.forkpty": "fork",
    "pty.spawn": "start programs",
    "socket.connect": "open network connections",
    "socket.bind": "open network connections",
    "socket.sendto": "open network connections",
    "ctypes.dlopen": "load libraries through ctypes",
    "ctypes.dlsym": "load functions through ctypes",
    "resource.setrlimit": "change resource limits",
    "resource.prlimit": "change resource limits",
}


_OS_FENCE = """
scratch="$1"; shift
mount --bind "$scratch" "$scratch" || exit 97
for m in $(cut -d ' ' -f 5 /proc/self/mountinfo); do
    [ "$m" = "$scratch" ] || mount -o remount,bind,ro "$m" || exit 97
done
exec setpriv --bounding-set -all --inh-caps -all --no-new-privs -- "$@"
"""


@functools.cache
def os_fence() -> tuple[str, ...]:
    """The command prefix that fences a submission at the operating system's level, or ``()``.

    ``[*os_fence(), scratch, python, ...]`` runs ``python ...`` in new mount, network and PID
    namespaces, every mount read-only except ``scratch``, without capabilities. It needs Linux,
    root, and util-linux's ``unshare`` and ``setpriv``; a trial run decides, once per process.
    """
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if sys.platform != "linux" or os.geteuid() != 0 or not (unshare and setpriv):
        return ()
    namespaces = ("--mount", "--net", "--pid", "--fork", "--kill-child", "--propagation", "private")
    prefix = (unshare, *namespaces, "--", "sh", "-c", _OS_FENCE, "sh")
    with tempfile.TemporaryDirectory() as scratch:
        trial = subprocess.run([*prefix, scratch, "true"], capture_output=True, timeout=60)
    return prefix if trial.returncode == 0 else ()


class CellTimeout(BaseException):
    """A cell ran past its time limit (a BaseException, so ``except Exception`` cannot hide it)."""


def install_guard(scratch: Path) -> None:
    """Refuse, from now on, what :mod:`course_lib.classroom.sandbox` says it refuses."""
    root = os.path.realpath(scratch)
    me = os.getpid()

    def inside(path: Any) -> bool:
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return real == root or real.startswith(root + os.sep) or real == os.devnull

    def refuse(what: str) -> None:
        raise PermissionError(f"the grader does not let a submission {what}")

    def guard(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing and not isinstance(path, int) and not inside(path):
                refuse(f"write {path!r}, outside its scratch folder")
        elif event in _PATH_EVENTS:
            for k in _PATH_EVENTS[event]:
                path = args[k]
                if isinstance(path, int) and event in _FD_PATH_EVENTS:
                    continue
                if not inside(path):
                    refuse(f"change {path!r}, outside its scratch folder ({event})")
        elif event in ("os.kill", "os.killpg", "signal.pthread_kill"):
            if not (event == "os.kill" and args[0] == me):
                refuse("send signals to other processes")
        elif event in _FORBIDDEN:
            refuse(_FORBIDDEN[event])

    sys.addaudithook(guard)


def set_limits(cpu_seconds: int, memory_bytes: int, file_bytes: int) -> None:
    """Hard resource limits for this process (and anything it could start)."""
    for which, value in (
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_AS, memory_bytes),
        (resource.RLIMIT_FSIZE, file_bytes),
        (resource.RLIMIT_NOFILE, 256),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))


def _preload() -> None:
    """Import torch and the package before the first cell, so that the cells' time limits do not
    count the seconds it takes (anything else imports fine behind the fences)."""
    import torch  # noqa: F401

    from course_lib import losses, metrics, runtime  # noqa: F401


def _shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "NoColor"
    return InteractiveShell.instance(config=config)


def run_cells(job: dict[str, Any], report: Any) -> None:
    """Run the job's cells in order; report each one's outcome; never stop at a failing cell."""
    shell = _shell()
    seconds = float(job["cell_seconds"])

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise CellTimeout(f"the cell ran longer than its limit of {seconds:g} s")

    signal.signal(signal.SIGALRM, alarm)
    for index, cell in enumerate(job["cells"]):
        report({"event": "start", "index": index})
        error = None
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            result = shell.run_cell(cell["source"], store_history=False)
            error = result.error_before_exec or result.error_in_exec
        except BaseException as err:  # the alarm can fire outside the cell's own code
            error = err
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        status = "ok" if error is None else "timeout" if isinstance(error, CellTimeout) else "error"
        detail = "" if error is None else f"{type(error).__name__}: {error}"[:500]
        sys.stdout.flush()
        report({"event": "cell", "index": index, "status": status, "detail": detail})


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    set_limits(int(job["cpu_seconds"]), int(job["memory_bytes"]), int(job["file_bytes"]))
    fd = int(os.environ[GRADING_FD_ENV])

    def report(event: dict[str, Any]) -> None:
        os.write(fd, (json.dumps(event) + "\n").encode())

    _preload()
    install_guard(Path(job["scratch"]))
    report({"event": "ready"})
    run_cells(job, report)
    report({"event": "done"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
