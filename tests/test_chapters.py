"""Every chapter runs top to bottom as Colab opens it, in the quick profile.

On Colab a chapter is a notebook alone in an empty working folder (``/content``), with
``course_lib`` installed from a release, no course checkout and no ``data/`` beside it. Each test
here makes that layout: ``course_lib`` is built into a wheel and installed into a folder of its
own (not editable), the kernel runs in an empty folder with that folder first on its path, and
the chapter must make every dataset it needs. A chapter's asserts are its claims, so a failing
assert fails the test, with the cell and the traceback in the report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT_S = 900

_LAYOUT_CHECK = """
# Added by tests/test_chapters.py: the chapter really ran in the Colab layout.
import os as _os
from pathlib import Path as _Path

import course_lib as _course_lib

_site = _Path(_os.environ["COURSE_TEST_SITE"]).resolve()
assert _Path(_course_lib.__file__).resolve().is_relative_to(_site), _course_lib.__file__
assert not list(_Path.cwd().glob("*.ipynb")), "the chapter's folder must hold no notebook"
"""


@pytest.fixture(scope="session")
def wheel_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """course_lib built into a wheel from a copy of the sources, installed into its own folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "course_lib", src / "course_lib", ignore=shutil.ignore_patterns("__pycache__")
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
        check=True,
    )
    (wheel,) = (tmp / "dist").glob("course_lib-*.whl")
    site = tmp / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    return site


def run_in_colab_layout(chapter: Path, site: Path, workdir: Path) -> None:
    """Execute ``chapter`` with its kernel in the empty ``workdir``, course_lib from ``site``."""
    nb = nbformat.read(chapter, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_LAYOUT_CHECK))
    env = {k: v for k, v in os.environ.items() if k != "COURSE_DATA_DIR"}
    env.update(COURSE_PROFILE="quick", PYTHONPATH=str(site), COURSE_TEST_SITE=str(site))
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env=env)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_chapter_runs_alone_in_an_empty_folder(chapter: Path, wheel_site: Path, tmp_path: Path):
    workdir = tmp_path / "content"
    workdir.mkdir()
    run_in_colab_layout(chapter, wheel_site, workdir)
    assert (workdir / "data").is_dir() or "load_dataset" not in chapter.read_text(encoding="utf-8")
