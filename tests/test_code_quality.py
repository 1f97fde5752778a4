"""Lint, format and type checks of the whole project, each shown to fail on a broken fixture."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib import __version__

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "quality"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; it is in requirements-dev.txt")
    return path


def test_ruff_lint_passes():
    result = _run(_tool("ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_passes():
    result = _run(_tool("ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes():
    result = _run(_tool("mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "command, fixture",
    [
        (("ruff", "check"), "bad_lint.py"),
        (("ruff", "format", "--check"), "bad_format.py"),
        (("mypy",), "bad_types.py"),
    ],
)
def test_each_check_fails_on_its_broken_fixture(command, fixture):
    tool, *args = command
    result = _run(_tool(tool), *args, str(FIXTURES / fixture))
    assert result.returncode != 0, f"{' '.join(command)} should reject {fixture}"


@pytest.mark.parametrize("script", ["course.sh", "benchmarks/gpu_check.sh"])
def test_shell_script_parses(script):
    # benchmarks/gpu_check.sh runs only where a GPU is lent, rarely: a syntax error must show here
    result = _run("bash", "-n", script)
    assert result.returncode == 0, result.stderr


def test_bash_syntax_check_fails_on_its_broken_fixture():
    assert _run("bash", "-n", str(FIXTURES / "bad_syntax.sh")).returncode != 0


def test_notebooks_require_a_released_version():
    released = re.findall(r"^## \[?(\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert __version__ in released, f"CHANGELOG.md has no entry for {__version__}"
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for wanted in re.findall(r'require_version\(\\?"([^"\\]+)', path.read_text()):
            assert wanted in released, f"{path.name} requires {wanted}, never released"
