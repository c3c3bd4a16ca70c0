"""The shared records: one summary of a method's rows, with the paired test against a base."""

from __future__ import annotations

import math

import pytest

from workbench.core.records import GradedRow, MethodSummary, summarize


def _row(pid: str, correct: bool, tokens: int = 10, finish: str = "stop", **extra) -> dict:
    return GradedRow(
        id=pid,
        method="m",
        gold="1",
        predicted="1" if correct else None,
        correct=correct,
        extraction="boxed" if correct else "none",
        prompt_tokens=10,
        generated_tokens=tokens,
        seconds=1.0,
        finish=finish,
        interventions=extra.pop("interventions", 0),
        extras=extra,
    ).to_json()


def test_summarize_counts_costs_and_finish():
    rows = [_row("a", True, 10, interventions=5), _row("b", False, 30, "length")]
    s = summarize(rows, method="als")
    assert isinstance(s, MethodSummary) and s.method == "als"
    assert (s.n, s.correct, s.accuracy, s.no_answer) == (2, 1, 0.5, 1)
    assert s.tokens_per_problem == 20 and s.seconds_per_problem == 1.0
    assert s.intervention_rate == 5 / 40 and s.finish == {"stop": 1, "length": 1}
    assert s.ci_low < 0.5 < s.ci_high and s.base is None and s.mcnemar_p is None


def test_summarize_pairs_with_a_base_on_shared_problems():
    base = [_row(i, ok) for i, ok in zip("abcdef", [1, 1, 0, 0, 0, 1], strict=True)]
    rows = [_row(i, ok) for i, ok in zip("abcdef", [1, 0, 1, 1, 1, 1], strict=True)]
    s = summarize(rows, method="als", base=base)
    assert (s.base, s.only_base, s.only_method) == ("cot", 1, 3)
    assert s.mcnemar_p == pytest.approx(0.625)  # exact binomial, 4 discordant pairs
    assert s.to_json()["only_method"] == 3


def test_empty_rows_and_row_round_trip():
    s = summarize([], method="none")
    assert s.n == 0 and math.isnan(s.accuracy) and math.isnan(s.ci_low)
    row = _row("a", True, iterations=3, rewards=[-0.5, 0.0])
    assert row["iterations"] == 3 and "extras" not in row
    back = GradedRow.from_json(row)
    assert back.extras == {"iterations": 3, "rewards": [-0.5, 0.0]} and back.to_json() == row
