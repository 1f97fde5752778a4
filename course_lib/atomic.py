"""Atomic file writing: a file appears complete under its final name, or not at all.

The data is written to a hidden temporary file in the same folder, then renamed with
``os.replace`` (atomic on POSIX and Windows when both names are on one file system). An exception
removes the temporary file; a killed process may leave one behind, named ``.tmp-*``, which
:func:`remove_stale_temporaries` deletes and which no reader ever mistakes for data.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces ``path``.

    The temporary name keeps the final name's ending (``.nii.gz``, ``.pt``), so writers that
    choose a format from the extension work unchanged.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "hello.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("hi")
    >>> target.read_text()
    'hi'
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex[:8]}-{final.name}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | os.PathLike[str], older_than_s: float = 600.0) -> int:
    """Delete temporary files an interrupted run left under ``folder``; return how many.

    Only files older than ``older_than_s`` seconds go, so a writer running right now in another
    process keeps its temporary file.
    """
    root = Path(folder)
    if not root.is_dir():
        return 0
    now = time.time()
    stale = [
        p
        for p in root.rglob(f"{TEMP_PREFIX}*")
        if p.is_file() and now - p.stat().st_mtime > older_than_s
    ]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)
