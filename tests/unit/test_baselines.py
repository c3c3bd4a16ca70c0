"""Self-Consistency: majority vote over grader-equivalent answers, deterministic ties."""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.methods.baselines import SCConfig, majority_vote


def test_equivalent_forms_vote_together():
    answer, votes = majority_vote(["1,000", "999", "1000", "$1000", "999"], "gsm8k")
    assert answer == "1,000" and votes == 3


def test_latex_equivalents_vote_together():
    answer, votes = majority_vote(["\\frac{1}{2}", "0.5", "\\dfrac12", "2"], "math")
    assert answer == "\\frac{1}{2}" and votes == 3


def test_ties_go_to_the_earliest_group_and_none_never_wins():
    assert majority_vote(["3", "4", "4", "3"], "gsm8k") == ("3", 2)
    assert majority_vote([None, None, "7"], "gsm8k") == ("7", 1)
    assert majority_vote([None, None], "gsm8k") == (None, 0)


def test_k_must_be_positive():
    with pytest.raises(WorkbenchError, match="k >= 1"):
        SCConfig(k=0)


def test_efficiency_accuracy_score_only_for_dearer_methods():
    from workbench.experiment.compare import efficiency_accuracy_score

    # 10 points more accuracy for twice CoT's time: 0.1 per extra CoT-pass of compute
    assert efficiency_accuracy_score(0.4, 20.0, 0.3, 10.0) == pytest.approx(0.1)
    assert efficiency_accuracy_score(0.2, 30.0, 0.3, 10.0) == pytest.approx(-0.05)
    assert efficiency_accuracy_score(0.5, 10.1, 0.3, 10.0) is None  # within 2%: noise
    assert efficiency_accuracy_score(0.5, 8.0, 0.3, 10.0) is None  # cheaper: no exchange rate


def test_self_consistency_under_p2_votes_on_valid_json_answers_only():
    from workbench.core.problems import Problem
    from workbench.engine.sequences import Completion
    from workbench.methods.baselines import voted_row

    def sample(text: str) -> Completion:
        return Completion(
            tokens=(1, 2),
            text=text,
            prompt_tokens=3,
            finish="stop",
            seconds=1.0,
            interventions=0,
            steered_steps=(),
        )

    ok = '{"thought process": "x", "final answer": "%s"}'
    texts = [
        ok % "7",
        ok % "7 apples",
        '{"thought process": "x", "final answer": "9"',
        "\\boxed{9}",
    ]
    problem = Problem(id="gsm8k/test/0000", family="gsm8k", question="q", answer="7")
    row = voted_row(problem, [sample(t) for t in texts], "sc@4", "json")
    assert row["sample_answers"] == ["7", "7", None, None]  # the unclosed and the boxed: no answer
    assert row["predicted"] == "7" and row["correct"] and row["votes"] == 2
    boxed = voted_row(problem, [sample(t) for t in texts], "sc@4")  # the boxed reading differs
    assert boxed["sample_answers"][3] == "9"
