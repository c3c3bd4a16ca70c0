"""The router on planted signals: a score that knows CoT's failures beats a random one."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.core.routing import budget_threshold, by_score_bin, route_rows, routed_summary
from workbench.errors import WorkbenchError


def _rows(method, correct, tokens, seconds):
    return [
        {
            "id": f"p{i}",
            "method": method,
            "correct": bool(c),
            "generated_tokens": tokens,
            "seconds": seconds,
        }
        for i, c in enumerate(correct)
    ]


def _setting(n=400, seed=0):
    """CoT right on 40%; SC@5 right wherever CoT is and on half of CoT's failures, at 5x cost."""
    rng = np.random.default_rng(seed)
    cot_ok = rng.random(n) < 0.4
    sc_ok = cot_ok | (rng.random(n) < 0.5)
    return cot_ok, _rows("cot", cot_ok, 300, 4.0), _rows("sc@5", sc_ok, 1500, 20.0)


def test_budget_threshold_splits_validation_by_share():
    scores = np.arange(100.0)
    assert np.mean(scores < budget_threshold(scores, 0.25)) == 0.25
    assert np.mean(scores < budget_threshold(scores, 0.0)) == 0.0
    assert np.mean(scores < budget_threshold(scores, 1.0)) == 1.0
    with pytest.raises(WorkbenchError, match="share of problems"):
        budget_threshold(scores, 1.5)


def test_an_informed_router_beats_a_random_one_at_the_same_budget():
    cot_ok, cot, sc = _setting()
    rng = np.random.default_rng(1)
    informed = {
        r["id"]: float(ok) + 0.3 * rng.standard_normal() for r, ok in zip(cot, cot_ok, strict=True)
    }
    blind = {r["id"]: float(rng.standard_normal()) for r in cot}
    results = {}
    for name, scores in (("informed", informed), ("blind", blind)):
        vals = list(scores.values())  # validation here: the same distribution
        routed = route_rows(scores, budget_threshold(vals, 0.6), cot, sc)
        results[name] = routed_summary(routed)
        assert results[name]["share_expensive"] == pytest.approx(0.6, abs=0.02)
    sc_acc = np.mean([r["correct"] for r in sc])
    cot_acc = np.mean(cot_ok)
    assert results["informed"]["accuracy"] > results["blind"]["accuracy"] + 0.1
    assert results["informed"]["accuracy"] == pytest.approx(sc_acc, abs=0.03)  # SC's accuracy ...
    assert results["informed"]["seconds_per_problem"] == pytest.approx(
        13.6, abs=0.5
    )  # ... for less
    assert cot_acc < results["blind"]["accuracy"] < sc_acc


def test_routed_rows_are_the_chosen_methods_rows():
    _, cot, sc = _setting(n=10)
    scores = {r["id"]: float(i) for i, r in enumerate(cot)}
    routed = route_rows(scores, 3.5, cot, sc)
    assert [r["routed_to"] for r in routed.rows] == ["sc@5"] * 4 + ["cot"] * 6
    assert routed_summary(routed)["tokens_per_problem"] == (4 * 1500 + 6 * 300) / 10
    with pytest.raises(WorkbenchError, match="lack a score"):
        route_rows({}, 0.0, cot, sc)


def test_retimed_seconds_charge_each_row_at_its_sources_rate():
    from workbench.experiment.router_retime import retimed_seconds

    rows = [
        {"method": "router@0.5", "routed_to": "cot", "generated_tokens": 100},
        {"method": "router@0.5", "routed_to": "sc@5", "generated_tokens": 500},
    ]
    rates = {"cot": 0.01, "sc": 0.002}
    assert retimed_seconds(rows, rates) == pytest.approx((100 * 0.01 + 500 * 0.002) / 2)
    als = [{"method": "als", "generated_tokens": 10}]
    assert retimed_seconds(als, rates) is None  # an arm without a re-timed rate has no seconds
    assert retimed_seconds(als, {**rates, "als": 0.5}) == 5.0


def test_by_score_bin_shows_where_the_expensive_method_fixes_and_breaks():
    # 8 problems by score; the two lowest nobody solves, SC fixes the middle ones, breaks one top
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    rate = [0.0, 0.0, 0.4, 0.6, 0.4, 0.6, 1.0, 1.0]
    cot = [False, False, False, False, False, True, True, True]
    sc = [False, False, True, True, True, True, True, False]
    bins = by_score_bin(scores[::-1], rate[::-1], cot[::-1], sc[::-1], n_bins=4)  # order-free
    assert [b["n"] for b in bins] == [2, 2, 2, 2]
    assert [b["share_unsolved"] for b in bins] == [1.0, 0.0, 0.0, 0.0]
    assert [(b["fixes"], b["breaks"]) for b in bins] == [(0, 0), (2, 0), (1, 0), (0, 1)]
    assert bins[1]["pass_rate"] == pytest.approx(0.5) and bins[3]["cheap_accuracy"] == 1.0
    assert bins[0]["score_max"] == 0.2
    with pytest.raises(WorkbenchError, match="one value each"):
        by_score_bin(scores, rate[:3], cot, sc)
