"""Kernel side of ``benchmarks/claims.py``: record every ``assert`` of a chapter instead of raising.

``claims.py`` runs this file's source as the first cell of an instrumented copy of a chapter. It
registers an IPython AST transformer that rewrites each ``assert test`` into a call that records
whether ``test`` held and, for a comparison, by how much (its margin), and then lets the chapter go
on. So one run reports every assert, not only the first that fails.

The margin of ``a > b`` or ``a >= b`` is ``a - b``; of ``a < b`` or ``a <= b`` it is ``b - a``; of
a chain ``a < b < c`` the smaller of the two. Positive means the claim held with room to spare.
Asserts that are not order comparisons (``==``, ``torch.allclose(...)``, ``x.all()``) record only
passed or failed.
"""

from __future__ import annotations

import ast
import json
import math
import operator

_ORDER = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_APPLY = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _number(value: object) -> float | None:
    try:
        number = float(value)  # Python and NumPy numbers, one-element tensors and arrays
    except (TypeError, ValueError, RuntimeError):
        return None
    return number if math.isfinite(number) else None


class ClaimRecorder:
    """Collects one record per evaluation of an ``assert``: cell, line, text, passed, margin."""

    def __init__(self) -> None:
        self.cell = -1
        self.records: list[dict[str, object]] = []

    def _add(self, line: int, text: str, passed: bool, margin: float | None) -> None:
        record = {"cell": self.cell, "line": line, "text": text, "passed": passed}
        self.records.append({**record, "margin": margin})

    def compare(self, line: int, text: str, ops: list[str], *operands: object) -> None:
        """``operands[0] ops[0] operands[1] ops[1] ...``, every link evaluated once."""
        passed, margins = True, []
        for op, left, right in zip(ops, operands, operands[1:], strict=False):
            passed = passed and bool(_APPLY[op](left, right))
            a, b = _number(left), _number(right)
            margins.append(None if a is None or b is None else (a - b if ">" in op else b - a))
        margin = min(margins) if None not in margins else None  # type: ignore[type-var]
        self._add(line, text, passed, margin)

    def truth(self, line: int, text: str, value: object) -> None:
        self._add(line, text, bool(value), None)

    def dump(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.records, f)


class _AssertToRecord(ast.NodeTransformer):
    """``assert a < b, msg`` -> ``__claims__.compare(line, "a < b", ["<"], a, b)``."""

    def visit_Module(self, node: ast.Module) -> ast.AST:
        return ast.fix_missing_locations(self.generic_visit(node))

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        text = ast.unparse(node.test)
        test = node.test
        recorder = ast.Name(id="__claims__", ctx=ast.Load())
        if isinstance(test, ast.Compare) and all(type(op) in _ORDER for op in test.ops):
            ops = ast.List(elts=[ast.Constant(_ORDER[type(op)]) for op in test.ops], ctx=ast.Load())
            call = ast.Call(
                func=ast.Attribute(value=recorder, attr="compare", ctx=ast.Load()),
                args=[
                    ast.Constant(node.lineno),
                    ast.Constant(text),
                    ops,
                    test.left,
                    *test.comparators,
                ],
                keywords=[],
            )
        else:
            call = ast.Call(
                func=ast.Attribute(value=recorder, attr="truth", ctx=ast.Load()),
                args=[ast.Constant(node.lineno), ast.Constant(text), test],
                keywords=[],
            )
        return ast.copy_location(ast.Expr(value=call), node)


def install() -> ClaimRecorder:
    """Register the transformer with the running IPython kernel; returns the recorder."""
    from IPython import get_ipython

    get_ipython().ast_transformers.append(_AssertToRecord())
    return ClaimRecorder()


def static_asserts(python_source: str) -> list[tuple[int, str]]:
    """``(line, text)`` of every ``assert`` in a cell's Python source (after IPython's magics)."""
    return [
        (node.lineno, ast.unparse(node.test))
        for node in ast.walk(ast.parse(python_source))
        if isinstance(node, ast.Assert)
    ]
