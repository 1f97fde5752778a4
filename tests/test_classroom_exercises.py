"""The graded exercises' checks: right on the reference, and each known mistake diagnosed.

Every registered exercise is tested here, so a chapter that adds exercises gets these tests
without writing them: the reference passes the public and the hidden cases (several seeds), every
known mistake fails both and the public check names it, and an unanswered, empty, crashing or
misshapen answer gets a message that says so.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from course_lib.classroom import (
    Case,
    Exercise,
    NotAnswered,
    WrongAnswer,
    answer,
    chapter_exercises,
    check,
    exercise,
    hidden_check,
)
from course_lib.classroom.exercise import all_exercises, describe_difference
from course_lib.classroom.notebook import GRADING_FD_ENV, grade_answer

EXERCISES = all_exercises()
MISTAKES = [(ex, m) for ex in EXERCISES for m in ex.mistakes]
SEEDS = range(3)


def _id(ex: Exercise) -> str:
    return ex.name


@pytest.mark.parametrize("ex", EXERCISES, ids=_id)
def test_reference_passes_the_public_and_hidden_cases(ex: Exercise):
    assert ex.verify(ex.reference, ex.public_cases()) == len(ex.public_cases())
    for seed in SEEDS:
        cases = ex.hidden_cases(torch.Generator().manual_seed(seed))
        assert ex.verify(ex.reference, cases) == len(cases)
    assert grade_answer(ex, lambda *a, **k: ex.reference(*a, **k), seed=0).points == ex.points


@pytest.mark.parametrize(
    "ex, mistake",
    MISTAKES,
    ids=[f"{e.name}-{i}" for e in EXERCISES for i in range(len(e.mistakes))],
)
def test_each_known_mistake_is_caught_and_explained(ex, mistake):
    with pytest.raises(WrongAnswer) as info:
        ex.verify(mistake.compute, ex.public_cases())
    assert f"your answer {mistake.diagnosis}" in str(info.value)
    grade = grade_answer(ex, mistake.compute, seed=0)  # the hidden cases catch it too
    assert grade.points == 0 and mistake.diagnosis in grade.feedback


def test_chapters_have_three_graded_exercises_with_known_mistakes():
    chapters = {ex.chapter for ex in EXERCISES}
    assert {"03_losses", "04_hausdorff"} <= chapters
    for chapter in chapters:
        numbered = chapter_exercises(chapter)
        assert len(numbered) >= 3 and [e.number for e in numbered] == list(
            range(1, len(numbered) + 1)
        )
        assert all(len(e.mistakes) >= 3 for e in numbered), chapter


@pytest.mark.parametrize("ex", EXERCISES, ids=_id)
def test_unanswered_empty_crashing_and_non_functions_get_plain_messages(ex: Exercise):
    cases = ex.public_cases()

    def todo(*args, **kwargs):
        raise NotImplementedError("write me")

    with pytest.raises(NotAnswered, match=rf"Exercise {ex.label} \({ex.name}\) is not answered"):
        ex.verify(todo, cases)
    with pytest.raises(WrongAnswer, match="returned None: did you forget the `return`"):
        ex.verify(lambda *a, **k: None, cases)
    with pytest.raises(WrongAnswer, match="raised ZeroDivisionError on "):
        ex.verify(lambda *a, **k: 1 / 0, cases)
    with pytest.raises(WrongAnswer, match="must be a function"):
        ex.verify(3.0, cases)


def test_an_unknown_mistake_gets_the_first_difference():
    ex = exercise("dice_gradient")
    with pytest.raises(WrongAnswer, match=r"your result is 0 at index \(0, 0\), expected"):
        ex.verify(lambda p, g: torch.zeros_like(p), ex.public_cases())
    with pytest.raises(WrongAnswer, match=r"has shape \(6,\), expected \(2, 3\)"):
        ex.verify(lambda p, g: ex.reference(p, g).flatten(), ex.public_cases())


def test_describe_difference():
    t = torch.tensor([1.0, float("inf"), float("nan")])
    assert describe_difference(t, t.clone(), 1e-5, 1e-6) is None  # same inf, same NaN
    assert describe_difference(1.0, torch.tensor(1.0), 1e-5, 1e-6) is None
    assert "index 1, expected inf" in describe_difference(torch.tensor([1.0, 2.0]), t[:2], 0, 0)
    assert describe_difference("1", torch.tensor(1.0), 0, 0).startswith("expected a tensor")
    assert describe_difference((t,), (t, t), 0, 0).startswith("expected a tuple of 2")
    assert describe_difference(torch.tensor([True]), torch.tensor([False]), 0, 0) == (
        "1 values differ from the expected ones"
    )


def test_one_way_masks_judge_explains_other_wrong_shapes():
    ex = exercise("one_way_masks")
    apart = torch.zeros(10, 10, dtype=torch.bool), torch.zeros(10, 10, dtype=torch.bool)
    apart[0][1:3, 1:3], apart[1][6:9, 6:9] = True, True
    for masks, message in [
        (apart, r"h\(a, b\) = 7.07: some surface pixel of a is that far"),
        (torch.ones(3, 3), r"return a tuple \(a, b\)"),
        ((torch.ones(3, 3), torch.ones(4, 4)), "same shape"),
    ]:
        with pytest.raises(WrongAnswer, match=message):
            ex.verify(lambda m=masks: m, ex.public_cases())


def test_check_prints_and_answer_falls_back_to_the_reference(capsys, monkeypatch):
    ex = exercise("tversky_index")
    check("tversky_index", lambda p, g, alpha, beta: ex.reference(p, g, alpha, beta))
    assert "right on 2 cases, all the public ones" in capsys.readouterr().out

    def todo(p, g, alpha, beta):
        raise NotImplementedError

    def right(p, g, alpha, beta):
        return ex.reference(p, g, alpha, beta)

    for namespace, used, said in [
        ({}, ex.reference, "is not defined in this notebook"),
        ({"tversky_index": todo}, ex.reference, "is not answered yet"),
        ({"tversky_index": ex.mistakes[0].compute}, ex.reference, "puts α on the false negatives"),
        ({"tversky_index": right}, right, "using yours"),
    ]:
        assert answer("tversky_index", namespace) is used
        assert said in capsys.readouterr().out
    monkeypatch.setitem(globals(), "tversky_index", right)  # by default, the caller's globals
    assert answer("tversky_index") is right


def test_grade_answer_gives_half_the_points_per_check():
    ex = exercise("dice_gradient")

    def public_only(p, g):  # right on the public cases, which are at most 2 x 3
        return ex.reference(p, g) if p.numel() <= 6 else torch.zeros_like(p)

    grade = grade_answer(ex, public_only, seed=0)
    assert grade.points == 1 and "public check: right" in grade.feedback
    assert "hidden check: on a random 6 x 7 image" in grade.feedback
    assert grade_answer(ex, None, seed=0).feedback == "no cell defines dice_gradient"
    assert grade_answer(ex, ex.reference, seed=0).points == 0  # handing in answer(...) itself
    same = grade_answer(ex, ex.mistakes[0].compute, seed=0)
    assert same.feedback.endswith("hidden check: fails the same way")


def test_hidden_check_reports_on_the_grading_descriptor(monkeypatch, capsys):
    read, write = os.pipe()
    monkeypatch.setenv(GRADING_FD_ENV, str(write))
    ex = exercise("tversky_index")
    hidden_check("tversky_index", {"tversky_index": lambda *a, **k: ex.reference(*a, **k)})
    with pytest.raises(WrongAnswer, match="public check: "):
        hidden_check("tversky_index", {"tversky_index": ex.mistakes[1].compute})
    os.close(write)
    with os.fdopen(read) as stream:
        events = [json.loads(line) for line in stream]
    assert [(e["question"], e["points"], e["max_points"]) for e in events] == [
        ("tversky_index", 2.0, 2),
        ("tversky_index", 0.0, 2),
    ]
    assert "[hidden check] tversky_index: 2/2" in capsys.readouterr().out


def test_names_are_unique_and_exercises_found_by_name():
    assert len({e.name for e in EXERCISES}) == len(EXERCISES)
    with pytest.raises(KeyError, match="no graded exercise is called 'nope'; known: "):
        exercise("nope")
    assert repr(Case("x", 1)) == "Case('x')"
