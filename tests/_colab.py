"""The Colab layout, for tests: course_lib from a wheel, the notebook alone in an empty folder.

On Colab a chapter is a notebook alone in an empty working folder (``/content``), with
``course_lib`` installed from a release, no course checkout and no ``data/`` beside it.
:func:`build_wheel_site` builds ``course_lib`` into a wheel and installs it into a folder of its
own (not editable); :func:`run_in_colab_layout` runs a notebook's kernel in an empty folder with
that folder first on its path, and checks at the end that it really ran that way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT_S = 900

_LAYOUT_CHECK = """
# Added by tests/_colab.py: the notebook really ran in the Colab layout.
import os as _os
from pathlib import Path as _Path

import course_lib as _course_lib

_site = _Path(_os.environ["COURSE_TEST_SITE"]).resolve()
assert _Path(_course_lib.__file__).resolve().is_relative_to(_site), _course_lib.__file__
assert not list(_Path.cwd().glob("*.ipynb")), "the notebook's folder must hold no notebook"
"""


def build_wheel_site(tmp: Path) -> Path:
    """course_lib built into a wheel from a copy of the sources, installed into ``tmp/site``."""
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


def run_in_colab_layout(nb: NotebookNode, site: Path, workdir: Path) -> NotebookNode:
    """Execute ``nb`` (in place, and return it) with its kernel in the empty ``workdir`` and
    course_lib from ``site``, in the quick profile. Cells tagged ``raises-exception`` may fail;
    any other failing cell raises ``nbclient.exceptions.CellExecutionError``."""
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
    return nb
