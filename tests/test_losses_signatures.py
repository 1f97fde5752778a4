"""One convention for every loss, checked on every loss's signature (the table is in the report).

Each loss function in ``course_lib.losses``: takes ``logits`` first (no exception), then the
target; everything else keyword-only; has ``reduction`` and ``ignore_index`` or a docstring line
``No ``reduction``: <reason>``; smooths with ``smooth_nr`` / ``smooth_dr`` if at all; defaults
``activation`` to ``None`` (softmax for C >= 2, sigmoid for C == 1); and has a module twin whose
constructor shows the same keyword arguments. The checker is shown to fail on a bad loss.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

import pytest

from course_lib import losses as L
from course_lib.losses._module import LossModule

HELPERS = {"signed_distance_map", "gaussian_heatmaps", "lovasz_grad", "pool_foreground"}
"""Exported functions that build targets or pieces of a loss, not losses themselves."""
TWINS = {
    cls.function.__name__: cls
    for cls in (getattr(L, name) for name in L.__all__)
    if isinstance(cls, type) and issubclass(cls, LossModule)
}
LOSSES = {name: getattr(L, name) for name in sorted(TWINS)}


def convention_problems(fn: Callable[..., object]) -> list[str]:
    """What in ``fn``'s signature or docstring breaks the loss convention (empty when none)."""
    params = list(inspect.signature(fn).parameters.values())
    doc = inspect.getdoc(fn) or ""
    problems = []
    positional = [p for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    if len(positional) != 2:
        problems.append(f"takes {len(positional)} positional arguments, not (logits, target)")
    elif positional[0].name != "logits":
        problems.append(f"first argument is {positional[0].name!r}, not 'logits'")
    names = {p.name for p in params}
    for wanted in ("reduction", "ignore_index"):
        if wanted not in names and not re.search(rf"No ``{wanted}``: \w", doc):
            problems.append(f"no {wanted} and no line 'No ``{wanted}``: <reason>'")
    for p in params:
        if p.name in ("eps", "smooth", "epsilon"):
            problems.append(f"smoothing named {p.name!r}: use smooth_nr / smooth_dr")
        if p.name == "activation" and p.default is not None:
            problems.append(f"activation defaults to {p.default!r}, not None (the one rule)")
    if {"smooth_nr", "smooth_dr"} & names and not {"smooth_nr", "smooth_dr"} <= names:
        problems.append("smooth_nr without smooth_dr or the other way round")
    return problems


def _signature_table() -> str:
    return "\n".join(f"{name}{inspect.signature(fn)}" for name, fn in LOSSES.items())


def test_every_loss_function_has_a_module_twin():
    functions = {n for n in L.__all__ if n[0].islower()} - HELPERS
    assert functions == set(TWINS), f"without a twin: {sorted(functions - set(TWINS))}"


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_follows_the_convention(name):
    problems = convention_problems(LOSSES[name])
    assert not problems, f"{name}: {problems}\n\nevery loss:\n{_signature_table()}"


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_module_twin_shows_the_functions_keyword_arguments(name):
    keywords = [
        p
        for p in inspect.signature(LOSSES[name]).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert list(inspect.signature(TWINS[name]).parameters.values()) == keywords


def test_the_checker_fails_on_a_bad_loss():
    def bad_loss(prediction, target, *, eps=1e-6, activation="softmax"):
        """A loss that breaks every rule. Its first argument is not logits: probabilities."""

    problems = " | ".join(convention_problems(bad_loss))
    for expected in ("first argument is 'prediction'", "no reduction", "no ignore_index"):
        assert expected in problems
    assert "'eps'" in problems and "activation defaults to 'softmax'" in problems

    def excused_loss(logits, target, *, smooth_nr=0.0, smooth_dr=0.0):
        """Fine.

        No ``reduction``: one value for the batch. No ``ignore_index``: no labels.
        """

    assert convention_problems(excused_loss) == []
