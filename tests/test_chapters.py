"""Every chapter runs top to bottom as Colab opens it, in the quick profile.

On Colab a chapter is a notebook alone in an empty working folder (``/content``), with
``course_lib`` installed from a release, no course checkout and no ``data/`` beside it. Each test
here makes that layout (``tests/_colab.py``): ``course_lib`` is built into a wheel and installed
into a folder of its own (not editable), the kernel runs in an empty folder with that folder first
on its path, and the chapter must make every dataset it needs. A chapter's asserts are its claims,
so a failing assert fails the test, with the cell and the traceback in the report.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from _colab import ROOT, run_in_colab_layout

CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_runs_alone_in_an_empty_folder(chapter: Path, wheel_site: Path, tmp_path: Path):
    workdir = tmp_path / "content"
    workdir.mkdir()
    run_in_colab_layout(nbformat.read(chapter, as_version=4), wheel_site, workdir)
    assert (workdir / "data").is_dir() or "load_dataset" not in chapter.read_text(encoding="utf-8")
