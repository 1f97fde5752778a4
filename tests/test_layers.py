"""The package's import graph goes one way: from higher layers down to lower ones.

Every ``import`` of ``course_lib`` inside ``course_lib`` (deferred ones in functions included) is
an arrow from the importing sub-package to the imported one. An arrow is allowed when it stays in
its own sub-package or points to a strictly lower layer of :data:`LAYERS`; sub-packages on one
layer (losses, metrics, data, inference) are peers and may not import each other. Only notebooks
import ``widgets`` and ``nnunet`` into other things: they are the top layer. The check is shown to
fail on a fixture tree with one bad arrow per rule, as the other code-quality checks are.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "quality" / "bad_layers"

LAYERS: dict[str, int] = {
    "ops": 0,  # center_crop, EDT, connected components, argument checks: imports nothing
    "_version": 0,
    "atomic": 0,
    "runtime": 1,
    "blocks": 2,
    "losses": 3,
    "metrics": 3,
    "data": 3,
    "inference": 3,
    "models": 4,
    "training": 5,
    "viz": 6,
    "nnunet": 7,
    "widgets": 7,
    "classroom": 8,  # graded exercises: their checks use anything a chapter teaches, widgets included
}
"""Layer of each top-level module or sub-package of ``course_lib``, lowest first."""


def _part(module: str) -> str:
    """``course_lib.losses.overlap`` -> ``losses``; the package itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imported_modules(path: Path, package_root: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``course_lib`` import in ``path``, relative imports resolved."""
    here = ".".join(path.relative_to(package_root.parent).with_suffix("").parts)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    package = package.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from course_lib import runtime`` imports the sub-module ``course_lib.runtime``
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                sub = package_root.parent / Path(*candidate.split("."))
                is_module = (
                    sub.with_suffix(".py").exists()
                    or sub.is_dir()
                    or (base == "course_lib" and alias.name in LAYERS)
                )
                found.append((node.lineno, candidate if is_module else base))
    return [(line, m) for line, m in found if m == "course_lib" or m.startswith("course_lib.")]


def layer_violations(package_root: Path) -> list[str]:
    """Every import in ``package_root`` (a ``course_lib`` tree) that breaks the layering."""
    problems = []
    for path in sorted(package_root.rglob("*.py")):
        source = _part(".".join(path.relative_to(package_root.parent).with_suffix("").parts))
        if source in ("", "__init__"):
            continue  # the package's own __init__ only re-exports the version
        for line, module in _imported_modules(path, package_root):
            target = _part(module)
            if target == source:
                continue
            where = f"{path.relative_to(package_root.parent)}:{line}"
            if source not in LAYERS or target not in LAYERS:
                problems.append(f"{where}: {source or 'course_lib'} -> {target}: not in LAYERS")
            elif LAYERS[target] >= LAYERS[source]:
                problems.append(
                    f"{where}: {source} (layer {LAYERS[source]}) imports {module} "
                    f"(layer {LAYERS[target]}); only lower layers may be imported"
                )
    return problems


def test_course_lib_imports_only_lower_layers():
    problems = layer_violations(ROOT / "course_lib")
    assert not problems, "\n".join(problems)


def test_every_part_of_the_package_has_a_layer():
    parts = {p.stem for p in (ROOT / "course_lib").iterdir() if p.suffix == ".py" or p.is_dir()}
    parts -= {"__init__", "__pycache__", "py"}
    assert parts <= set(LAYERS), f"add to LAYERS: {sorted(parts - set(LAYERS))}"


def test_ops_imports_nothing_of_the_course():
    for path in (ROOT / "course_lib" / "ops").rglob("*.py"):
        modules = {m for _, m in _imported_modules(path, ROOT / "course_lib")}
        assert all(m.startswith("course_lib.ops") for m in modules), (path, modules)


@pytest.mark.parametrize(
    "bad, arrow",
    [
        ("blocks/bad.py", "blocks (layer 2) imports course_lib.models.unet"),
        ("losses/bad.py", "losses (layer 3) imports course_lib.metrics"),
        ("ops/bad.py", "ops (layer 0) imports course_lib.runtime"),
        ("data/bad.py", "data (layer 3) imports course_lib.widgets"),
    ],
)
def test_the_check_fails_on_its_broken_fixture(bad, arrow):
    problems = layer_violations(FIXTURE / "course_lib")
    assert any(bad in p and arrow in p for p in problems), problems
