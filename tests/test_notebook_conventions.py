"""The notebook conventions of DESIGN.md, checked on every chapter and shown to bite on fixtures.

Run as a script (``python tests/test_notebook_conventions.py notebooks/*.ipynb``) it prints the
violations of the given notebooks, which is what the pre-commit hook calls.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
REPOSITORY = "segmentation-course/segmentation-course"
COLAB_PREFIX = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/"
MAX_CODE_CELLS = 30

_PINNED_TAG = re.compile(r"segmentation-course@v(\d+\.\d+\.\d+)\b")
_REQUIRED = re.compile(r"require_version\(\s*['\"]([^'\"]+)['\"]")
_CUDA_LITERAL = re.compile(r"""['"]cuda(:\d+)?['"]|\.cuda\(""")
_PIP_LINE = re.compile(r"^\s*%pip\s+install\b.*$", re.MULTILINE)


def listed_versions() -> set[str]:
    """The versions CHANGELOG.md lists (``## 0.2.0 - ...``), released or about to be."""
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    return set(re.findall(r"^## \[?(\d+\.\d+\.\d+)", changelog, re.MULTILINE))


def _pin_problems(install: str, env: str) -> list[str]:
    """The install cell pins a release (tag ``vX.Y.Z``) that require_version names too."""
    tags = {m.group(1) for line in _PIP_LINE.findall(install) for m in _PINNED_TAG.finditer(line)}
    if len(tags) != 1:
        return [
            "pinned-release: the install cell must install one tagged release, "
            f'"course-lib @ git+https://github.com/{REPOSITORY}@vX.Y.Z"; found {sorted(tags)}'
        ]
    (tag,) = tags
    problems = []
    required = _REQUIRED.findall(env)
    if required and required != [tag]:
        problems.append(
            f"pinned-release: the install cell installs v{tag} but the environment cell requires "
            f"{required}; they must name the same release"
        )
    if tag not in listed_versions():
        problems.append(f"pinned-release: v{tag} is not a version listed in CHANGELOG.md")
    return problems


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


_SEEDING_CALLS = {"manual_seed", "seed", "default_rng", "RandomState"}
_CLOCKS = {"perf_counter", "time", "monotonic", "process_time", "perf_counter_ns", "time_ns"}


def _python(cell: dict) -> ast.Module | None:
    """The cell as Python (IPython magics turned into calls), or None if it does not parse."""
    try:
        return ast.parse(TransformerManager().transform_cell(_source(cell)))
    except SyntaxError:
        return None


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _seeding_problems(i: int, tree: ast.Module, local: set[str]) -> list[str]:
    """Seeds set around ``course_lib.runtime`` escape ``COURSE_SEED``: every seed goes through it.

    ``local`` names the notebook's own functions: a literal ``seed=`` passed to one of them (or
    packed into a ``dict`` of their arguments) is fine, as long as that function hands it on to
    ``runtime`` (the check sees that call too).
    """
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        owner = node.func.value if isinstance(node.func, ast.Attribute) else None
        if name in _SEEDING_CALLS and not (isinstance(owner, ast.Name) and owner.id == "runtime"):
            problems.append(
                f"seed-through-runtime: code cell {i} calls {name}(); use runtime.seed_everything, "
                "runtime.generator or runtime.seed so that COURSE_SEED shifts it"
            )
        for kw in node.keywords:
            if (
                kw.arg == "seed"
                and isinstance(kw.value, ast.Constant)
                and name not in local | {"dict"}
            ):
                problems.append(
                    f"seed-through-runtime: code cell {i} passes seed={kw.value.value!r}; write "
                    f"seed=runtime.seed({kw.value.value!r}) so that COURSE_SEED shifts it"
                )
    return problems


def _names(node: ast.AST) -> set[str]:
    """Names and attribute names an expression reads (``h.seconds`` reads ``h`` and ``seconds``)."""
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            found.add(n.id)
        elif isinstance(n, ast.Attribute):
            found.add(n.attr)
    return found


def _roots(target: ast.AST) -> set[str]:
    """The variables an assignment target binds or fills: ``t``, ``t[k]``, ``t.x``, ``a, b``."""
    if isinstance(target, ast.Name):
        return {target.id} - {"_"}
    if isinstance(target, ast.Tuple | ast.List):
        return set().union(*(_roots(e) for e in target.elts))
    if isinstance(target, ast.Subscript | ast.Attribute | ast.Starred):
        return _roots(target.value)
    return set()


def _reads_clock(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and _call_name(n) in _CLOCKS for n in ast.walk(node))


def _wall_clock_problems(trees: list[tuple[int, ast.Module]]) -> list[str]:
    """Asserts on values derived from a clock (or a History's ``seconds``) across the notebook."""
    tainted = {"seconds"}  # training.History.seconds is wall-clock time too
    problems = []
    for i, tree in trees:
        flows = [  # (value, targets) of every binding in the cell, loops included
            (node.value, node.targets if isinstance(node, ast.Assign) else [node.target])
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and node.value
        ] + [(node.iter, [node.target]) for node in ast.walk(tree) if isinstance(node, ast.For)]
        size = -1
        while size != len(tainted):  # to a fixed point: a binding may precede its source
            size = len(tainted)
            for value, targets in flows:
                if _reads_clock(value) or _names(value) & tainted:
                    tainted |= set().union(*(_roots(t) for t in targets))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert) and (
                _reads_clock(node.test) or _names(node.test) & tainted
            ):
                problems.append(
                    f"no-wall-clock-assert: code cell {i} asserts on a time "
                    f"({ast.unparse(node.test)}); assert on what the time stands for (passes, "
                    "pixels, multiply-adds) and print the time"
                )
    return problems


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
    if pip_lines:
        problems += _pin_problems(install, env)
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

    trees = [(i, tree) for i, cell in enumerate(code) if (tree := _python(cell)) is not None]
    local = {n.name for _, t in trees for n in ast.walk(t) if isinstance(n, ast.FunctionDef)}
    for i, tree in trees:
        problems += _seeding_problems(i, tree, local)
    problems += _wall_clock_problems(trees)

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
        ("unpinned_install.ipynb", "pinned-release"),
        ("pin_disagrees.ipynb", "pinned-release"),
        ("pin_unlisted.ipynb", "pinned-release"),
        ("no_environment_cell.ipynb", "environment-cell"),
        ("with_outputs.ipynb", "outputs"),
        ("with_execution_count.ipynb", "outputs"),
        ("cuda_literal.ipynb", "no-cuda-literal"),
        ("too_many_cells.ipynb", "too-many-cells"),
        ("literal_seed.ipynb", "seed-through-runtime"),
        ("manual_seed.ipynb", "seed-through-runtime"),
        ("wall_clock_assert.ipynb", "no-wall-clock-assert"),
        ("history_seconds_assert.ipynb", "no-wall-clock-assert"),
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
