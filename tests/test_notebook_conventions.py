"""The notebook conventions of DESIGN.md, checked on every chapter and shown to bite on fixtures.

Run as a script (``python tests/test_notebook_conventions.py notebooks/*.ipynb``) it prints the
violations of the given notebooks, which is what the pre-commit hook calls.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
REPOSITORY = "segmentation-course/segmentation-course"
COLAB_PREFIX = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/"
MAX_CODE_CELLS = 30
MAX_NBVAL_SKIP = 2

_CUDA_LITERAL = re.compile(r"""['"]cuda(:\d+)?['"]|\.cuda\(""")
_PIP_LINE = re.compile(r"^\s*%pip\s+install\b.*$", re.MULTILINE)
_SKIP_MARK = re.compile(r"#\s*NBVAL_SKIP\b(.*)")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def check_notebook(path: Path) -> list[str]:
    """Every convention the notebook breaks, as ``"rule: detail"`` strings (empty when none)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb.get("cells", [])
    code = [c for c in cells if c.get("cell_type") == "code"]
    markdown = [c for c in cells if c.get("cell_type") == "markdown"]
    problems = []

    if not markdown or f"{COLAB_PREFIX}{path.name}" not in _source(markdown[0]):
        problems.append(f"colab-badge: the first markdown cell must link {COLAB_PREFIX}{path.name}")
    if not cells or cells[0].get("cell_type") != "markdown":
        problems.append("colab-badge: the notebook must open with its markdown title and badge")

    install = _source(code[0]) if code else ""
    pip_lines = _PIP_LINE.findall(install)
    if 'find_spec("course_lib")' not in install or not pip_lines:
        problems.append(
            "install-cell: the first code cell must `%pip install` course_lib only when "
            '`importlib.util.find_spec("course_lib")` is None'
        )
    for line in pip_lines:
        if re.search(r"\b(torch|numpy)\b", line):
            problems.append(f"install-cell: never (re)install torch or numpy: {line.strip()}")

    env = _source(code[1]) if len(code) > 1 else ""
    if "require_version(" not in env or "environment_report()" not in env:
        problems.append(
            "environment-cell: the second code cell must call runtime.require_version(...) and "
            "print runtime.environment_report() (versions, device, profile)"
        )

    for i, cell in enumerate(code):
        if cell.get("outputs"):
            problems.append(f"outputs: code cell {i} has committed outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"outputs: code cell {i} has an execution count")
        if _CUDA_LITERAL.search(_source(cell)):
            problems.append(f"no-cuda-literal: code cell {i} names cuda; use runtime.device()")

    skips = [m.group(1) for c in code for m in _SKIP_MARK.finditer(_source(c))]
    if len(skips) > MAX_NBVAL_SKIP:
        problems.append(f"nbval-skip: {len(skips)} NBVAL_SKIP cells, at most {MAX_NBVAL_SKIP}")
    if any(len(reason.strip(" :-\u2014")) < 10 for reason in skips):
        problems.append("nbval-skip: every `# NBVAL_SKIP` needs a reason on the same line")

    if len(code) > MAX_CODE_CELLS:
        problems.append(f"too-many-cells: {len(code)} code cells, at most {MAX_CODE_CELLS}")
    return problems


def test_chapters_exist():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_chapter_follows_conventions(path):
    assert check_notebook(path) == []


def test_good_fixture_passes():
    assert check_notebook(FIXTURES / "good.ipynb") == []


@pytest.mark.parametrize(
    "fixture, rule",
    [
        ("no_badge.ipynb", "colab-badge"),
        ("install_always.ipynb", "install-cell"),
        ("repins_torch.ipynb", "install-cell"),
        ("no_environment_cell.ipynb", "environment-cell"),
        ("with_outputs.ipynb", "outputs"),
        ("with_execution_count.ipynb", "outputs"),
        ("cuda_literal.ipynb", "no-cuda-literal"),
        ("three_skips.ipynb", "nbval-skip"),
        ("skip_without_reason.ipynb", "nbval-skip"),
        ("too_many_cells.ipynb", "too-many-cells"),
    ],
)
def test_fixture_breaking_one_rule_is_caught(fixture, rule):
    problems = check_notebook(FIXTURES / fixture)
    assert problems, f"{fixture} should break {rule}"
    assert {p.split(":")[0] for p in problems} == {rule}, problems


if __name__ == "__main__":
    failed = False
    for arg in sys.argv[1:]:
        for problem in check_notebook(Path(arg)):
            print(f"{arg}: {problem}")
            failed = True
    sys.exit(1 if failed else 0)
