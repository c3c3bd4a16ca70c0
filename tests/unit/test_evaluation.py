"""Statistics: Wilson intervals and exact McNemar against known values; the trade-off score under
an explicit time normaliser."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.core.evaluation import (
    TimeNormaliser,
    is_iterative,
    iterative_normaliser,
    mcnemar_exact,
    paired_counts,
    tradeoff_fields,
    tradeoff_gap,
    tradeoff_scores,
    wilson_interval,
)
from workbench.errors import WorkbenchError


def test_wilson_known_values():
    lo, hi = wilson_interval(10, 40)  # textbook value: [0.1419, 0.4019]
    assert lo == pytest.approx(0.1419, abs=1e-4) and hi == pytest.approx(0.4019, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_mcnemar_exact():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    # b=1, c=9: two-sided binomial tail 2 * (1 + 10) / 2**10
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)


def test_paired_counts_use_shared_ids_only():
    base = {"a": True, "b": True, "c": False, "d": False}
    other = {"a": True, "b": False, "c": True, "e": True}
    assert paired_counts(base, other) == {
        "n": 3,
        "both": 1,
        "only_base": 1,
        "only_other": 1,
        "neither": 0,
    }


def test_tradeoff_takes_its_normaliser_explicitly_and_returns_it():
    acc, sec = {"cot": 0.5, "als": 0.6, "sc@5": 0.7}, {"cot": 2.0, "als": 4.0, "sc@5": 10.0}
    out = tradeoff_scores(acc, sec, normaliser=TimeNormaliser("sc@5", 10.0))
    assert out["normaliser"] == {"method": "sc@5", "seconds": 10.0, "iterative": True}
    scores = out["scores"]
    assert scores["cot"]["tradeoff"] == pytest.approx((50 + 100 - 20) / 2)
    assert scores["als"]["tradeoff"] == pytest.approx((60 + 100 - 40) / 2)
    assert scores["sc@5"]["tradeoff"] == pytest.approx(70 / 2)  # the normaliser scores acc / 2
    assert scores["cot"]["tradeoff_change_vs_cot"] == 0
    assert scores["als"]["tradeoff_change_vs_cot"] == pytest.approx(100 * (60 / 65 - 1))
    # whatever sets it, the normaliser is the one given, not the slowest method found
    other = tradeoff_scores(acc, sec, normaliser=TimeNormaliser("cot", 2.0))
    assert other["normaliser"]["iterative"] is False
    assert other["scores"]["cot"]["tradeoff"] == pytest.approx(25.0)
    assert tradeoff_fields(out, "als") == {
        **scores["als"],
        "tradeoff_normaliser": "sc@5",
        "tradeoff_normaliser_seconds": 10.0,
    }


def test_no_iterative_method_no_score():
    seconds = {"cot": 5.0, "als": 4.0, "als-reference": 5.5}
    assert iterative_normaliser(seconds) is None
    out = tradeoff_scores({m: 0.1 for m in seconds}, seconds, normaliser=None)
    assert out["normaliser"] is None
    assert all(
        v == {"tradeoff": None, "tradeoff_change_vs_cot": None} for v in out["scores"].values()
    )
    assert tradeoff_fields(out, "als")["tradeoff_normaliser"] is None
    assert tradeoff_fields(out, "not there")["tradeoff"] is None


def test_the_paper_s_normaliser_is_the_slowest_iterative_method():
    assert [is_iterative(m) for m in ("sc", "sc@5", "SC@8", "latentseek-self", "latentseek")] == [
        True
    ] * 5
    assert not any(is_iterative(m) for m in ("cot", "als", "als-reference", "scale", "random"))
    # a non-iterative arm slower than every iterative one does not set the scale
    seconds = {"cot": 1.0, "sc@5": 5.0, "latentseek-self": 7.0, "random-control": 9.0}
    assert iterative_normaliser(seconds) == TimeNormaliser("latentseek-self", 7.0)
    assert iterative_normaliser({"cot": 1.0, "sc@5": math.nan}) is None
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(WorkbenchError, match="normaliser needs seconds > 0"):
            TimeNormaliser("sc@5", bad)


def test_the_percent_change_moves_with_the_normaliser():
    """Issue 43's arithmetic on the MATH-500 P1 rows (accuracy on all 500 problems, seconds
    re-timed together): ours +206% with CoT's own time as the normaliser (CoT was the slowest arm
    timed), +2.6% with a normaliser 4.91 times CoT's (about what an SC@5 arm costs)."""
    acc = {"cot": 0.096, "als": 0.074}
    sec = {"cot": 5.11795, "als": 3.9931156}
    cot_normalised = tradeoff_scores(acc, sec, normaliser=TimeNormaliser("cot", sec["cot"]))
    planted = TimeNormaliser("sc@5 (planted)", 4.91 * sec["cot"])
    sc_normalised = tradeoff_scores(acc, sec, normaliser=planted)
    low = cot_normalised["scores"]["als"]["tradeoff_change_vs_cot"]
    high = sc_normalised["scores"]["als"]["tradeoff_change_vs_cot"]
    assert low == pytest.approx(206.0, abs=0.1)
    assert high == pytest.approx(2.6, abs=0.1)
    assert sc_normalised["normaliser"]["seconds"] == pytest.approx(25.13, abs=0.01)
    # same rows, same accuracy gap (-2.2 points): only the normaliser moved
    assert cot_normalised["scores"]["cot"]["tradeoff"] == pytest.approx(4.8)


def test_tradeoff_gap_is_the_difference_of_scores_with_an_interval_over_problems():
    rng = np.random.default_rng(0)
    n = 200
    ca, cb = rng.random(n) < 0.5, rng.random(n) < 0.6
    sa, sb = rng.uniform(1, 3, n), rng.uniform(8, 12, n)  # b (SC-like) is slow and normalises
    gap = tradeoff_gap(ca, sa, cb, sb, sb, n_resamples=500)
    scores = tradeoff_scores(
        {"a": ca.mean(), "sc@5": cb.mean()},
        {"a": sa.mean(), "sc@5": sb.mean()},
        normaliser=TimeNormaliser("sc@5", sb.mean()),
        base="a",
    )["scores"]
    expected = scores["a"]["tradeoff"] - scores["sc@5"]["tradeoff"]
    assert gap["value"] == pytest.approx(expected)
    assert gap["ci_low"] < expected < gap["ci_high"]
    assert gap["ci_high"] - gap["ci_low"] < 20  # accuracy's part is +-~5 points of score
    same = tradeoff_gap(cb, sb, cb, sb, sb, n_resamples=100)
    assert same == {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    with pytest.raises(WorkbenchError, match="same problems"):
        tradeoff_gap(ca, sa, cb[:10], sb, sb)
