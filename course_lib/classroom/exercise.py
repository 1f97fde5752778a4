"""What a graded exercise is: a reference answer, the known mistakes, public and hidden cases.

A graded exercise asks for one function (``dice_gradient``, ``hd95``, ...). Checking it calls the
student's function on a list of :class:`Case` inputs and compares each result with the
reference's. When they differ, the check looks for the :class:`Mistake` whose result the student's
matches, and says *why* the answer is wrong in that mistake's words ("your Dice derivative lacks
the square of the denominator"); only an unknown mistake gets the generic "differs by ...". The
public cases are what a student's ``check(...)`` runs; the hidden cases are drawn at grading time
from a seed the instructor picks, so an answer tuned to the public cases does not pass them.

Every chapter module (``ch03_losses``, ...) registers its exercises with :func:`register`;
:func:`exercise` finds one by name. The unit tests run each check on the reference and on every
known mistake, so a diagnosis that no longer fires is a failing test.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch


class WrongAnswer(AssertionError):
    """A check failed; the message says which exercise, on which case, and why.

    ``reason`` is the message without the exercise's name (what a gradebook's feedback shows),
    ``problem`` the same without the case it showed on.
    """

    def __init__(self, exercise: Exercise, reason: str, problem: str = "") -> None:
        super().__init__(f"Exercise {exercise.label} ({exercise.name}) {reason}")
        self.reason = reason
        self.problem = problem or reason
        """What is wrong, without the case it showed on."""


class NotAnswered(WrongAnswer):
    """The student's function still raises ``NotImplementedError``: nothing to check yet."""


class Case:
    """One input of a check: the arguments to call the answer with, and a label for messages."""

    def __init__(self, label: str, *args: Any, **kwargs: Any) -> None:
        self.label = label
        self.args = args
        self.kwargs = kwargs

    def call(self, fn: Callable[..., Any]) -> Any:
        """``fn`` applied to fresh copies of the arguments (an answer may modify its inputs)."""
        args = [a.clone() if isinstance(a, torch.Tensor) else a for a in self.args]
        kwargs = {
            k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in self.kwargs.items()
        }
        return fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Case({self.label!r})"


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: what it computes, and what to tell the student whose answer matches.

    ``diagnosis`` completes "your answer ...": it names the mistake and the fix, e.g. "lacks the
    square of the denominator in the second term of the quotient rule".
    """

    diagnosis: str
    compute: Callable[..., Any]


Cases = Callable[[], Sequence[Case]]
HiddenCases = Callable[[torch.Generator], Sequence[Case]]


@dataclass(frozen=True)
class Exercise:
    """One graded exercise of a chapter.

    Attributes
    ----------
    name
        The name of the function the student writes; also the exercise's key.
    chapter
        The stem of the chapter notebook, e.g. ``"03_losses"``.
    number
        Its number among the chapter's graded exercises (1, 2, ...).
    task
        One sentence saying what to write, shown when the answer cell is still empty.
    points
        What the exercise is worth: half for the public check, half for the hidden one.
    reference
        The course's answer (computed another way than the solution in the chapter, so that the
        two check each other), used by the checks and by :func:`~course_lib.classroom.answer`.
    public_cases, hidden_cases
        The inputs of the student's check, and those of the grader (drawn from a generator).
    mistakes
        Known wrong answers, tried in order when a result differs from the reference.
    judge
        For an exercise with no single right result (build two masks with a property), a function
        that returns ``None`` for a right result and the diagnosis otherwise; it replaces the
        comparison with the reference.
    rtol, atol
        Tolerances of the comparison (float32 answers must pass).
    """

    name: str
    chapter: str
    number: int
    task: str
    points: float
    reference: Callable[..., Any]
    public_cases: Cases
    hidden_cases: HiddenCases
    mistakes: tuple[Mistake, ...] = ()
    judge: Callable[[Any], str | None] | None = None
    rtol: float = 1e-4
    atol: float = 1e-5

    @property
    def label(self) -> str:
        """``"03.2"``: the chapter's number and the exercise's."""
        return f"{self.chapter.split('_')[0]}.{self.number}"

    def verify(self, candidate: Any, cases: Sequence[Case]) -> int:
        """Check ``candidate`` on ``cases``; return how many passed (all) or raise WrongAnswer."""
        __tracebackhide__ = True
        if not callable(candidate):
            raise WrongAnswer(
                self, f"must be a function (def {self.name}(...)), got {type(candidate).__name__}"
            )
        for case in cases:
            got = self._call(candidate, case)
            problem = self._problem(got, case)
            if problem is not None:
                raise WrongAnswer(self, f"on {case.label}: {problem}", problem)
        return len(cases)

    def _call(self, candidate: Callable[..., Any], case: Case) -> Any:
        __tracebackhide__ = True
        try:
            return case.call(candidate)
        except NotImplementedError as err:
            raise NotAnswered(
                self,
                f"is not answered yet: {self.task} Write your code where the cell raises "
                "NotImplementedError, then run the cell again.",
            ) from err
        except Exception as err:
            raise WrongAnswer(self, f"raised {type(err).__name__} on {case.label}: {err}") from err

    def _problem(self, got: Any, case: Case) -> str | None:
        """None when ``got`` is right for ``case``, else what is wrong with it, and why."""
        if got is None:
            return "your function returned None: did you forget the `return`?"
        if self.judge is not None:
            return self.judge(got)
        want = case.call(self.reference)
        difference = describe_difference(got, want, self.rtol, self.atol)
        if difference is None:
            return None
        for mistake in self.mistakes:
            if describe_difference(got, case.call(mistake.compute), self.rtol, self.atol) is None:
                return f"your answer {mistake.diagnosis}"
        return difference


def _as_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value))
    return None


def describe_difference(got: Any, want: Any, rtol: float, atol: float) -> str | None:
    """None when ``got`` equals ``want`` within the tolerances (NaN and inf where they are, too),
    else a short description of the first difference: the type, the shape, or the values."""
    if isinstance(want, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"expected a tuple of {len(want)} values, got {type(got).__name__}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            problem = describe_difference(g, w, rtol, atol)
            if problem is not None:
                return f"item {i}: {problem}"
        return None
    g, w = _as_tensor(got), _as_tensor(want)
    if w is None:
        raise TypeError(f"cannot compare reference results of type {type(want).__name__}")
    if g is None:
        return f"expected a tensor or a number, got {type(got).__name__}"
    if g.shape != w.shape:
        return f"your result has shape {tuple(g.shape)}, expected {tuple(w.shape)}"
    if g.dtype == torch.bool or w.dtype == torch.bool:
        if torch.equal(g.bool(), w.bool()):
            return None
        return f"{int((g.bool() != w.bool()).sum())} values differ from the expected ones"
    g64, w64 = g.double(), w.double()
    if torch.allclose(g64, w64, rtol=rtol, atol=atol, equal_nan=True):
        return None
    error = (g64 - w64).abs().nan_to_num(nan=math.inf)
    error[(g64 == w64) | (g64.isnan() & w64.isnan())] = 0  # same infinities, same NaNs
    index = int(error.flatten().argmax())
    mine, theirs = g64.flatten()[index].item(), w64.flatten()[index].item()
    where = ""
    if g.ndim:
        position = tuple(int(i) for i in torch.unravel_index(torch.tensor(index), g.shape))
        where = f" at index {position[0] if len(position) == 1 else position}"
    return f"your result is {mine:.6g}{where}, expected {theirs:.6g}"


_REGISTRY: dict[str, Exercise] = {}


def register(*exercises: Exercise) -> None:
    """Make exercises findable by name (each chapter module calls this once)."""
    for ex in exercises:
        if ex.name in _REGISTRY and _REGISTRY[ex.name] is not ex:
            raise ValueError(f"two graded exercises are called {ex.name!r}; names must be unique")
        _REGISTRY[ex.name] = ex


def _load_chapter_modules() -> None:
    package = importlib.import_module("course_lib.classroom")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("ch"):
            importlib.import_module(f"course_lib.classroom.{info.name}")


def exercise(name: str) -> Exercise:
    """The graded exercise called ``name`` (the function its student writes).

    Raises
    ------
    KeyError
        If no chapter has an exercise of that name; the message lists those that exist.
    """
    if name not in _REGISTRY:
        _load_chapter_modules()
    if name not in _REGISTRY:
        raise KeyError(f"no graded exercise is called {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def all_exercises() -> list[Exercise]:
    """Every graded exercise of the course, by chapter and number."""
    _load_chapter_modules()
    return sorted(_REGISTRY.values(), key=lambda e: (e.chapter, e.number))


def chapter_exercises(chapter: str) -> list[Exercise]:
    """The graded exercises of the chapter whose notebook stem is ``chapter``, in order."""
    _load_chapter_modules()
    return sorted((e for e in _REGISTRY.values() if e.chapter == chapter), key=lambda e: e.number)
