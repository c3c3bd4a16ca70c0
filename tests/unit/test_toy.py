"""The toy task: disjoint splits, right answers, reachable through load_problems."""

from __future__ import annotations

import pytest

from workbench.core.grading import grade
from workbench.errors import WorkbenchError
from workbench.sources.data import EXPERIMENT_SPLITS, load_problems
from workbench.sources.toy import toy_problems


def test_toy_splits_are_disjoint_and_cover_all_pairs():
    train, test = toy_problems("train"), toy_problems("test")
    assert (len(train), len(test)) == (80, 20)
    assert not {p.id for p in train} & {p.id for p in test}
    assert {p.question for p in train + test} == {
        f"What is {a} + {b}?" for a in range(10) for b in range(10)
    }


def test_toy_answers_are_the_sums_and_grade():
    for p in toy_problems("test"):
        a, b = (int(x) for x in p.question.removeprefix("What is ").rstrip("?").split(" + "))
        assert p.answer == str(a + b)
        assert grade(f"\\boxed{{{a + b}}}", p.answer, p.family).correct


def test_toy_through_load_problems():
    assert EXPERIMENT_SPLITS["toy"] == ("train", "test")
    assert [p.id for p in load_problems("toy", "test", limit=5)] == [
        p.id for p in toy_problems("test")[:5]
    ]
    with pytest.raises(WorkbenchError, match="unknown split"):
        load_problems("toy", "pool")
    with pytest.raises(WorkbenchError, match="exceeds"):
        load_problems("toy", "test", limit=21)
