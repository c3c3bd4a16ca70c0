"""AUROC within strata of an outside difficulty (`workbench.core.strata`): planted signals and
invariants."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from workbench.core.strata import StrataConfig, strata_rows, stratified_auroc
from workbench.errors import WorkbenchError


def _planted(n: int = 900, seed: int = 0):
    """Problems in 9 strata of pass rate k/8; success drawn with probability k/8."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 9, n)
    y = rng.random(n) < k / 8
    return rng, k, y


def _brute(scores, labels, strata) -> float:
    wins = pairs = 0.0
    for i, j in itertools.product(range(len(labels)), repeat=2):
        if labels[i] and not labels[j] and strata[i] == strata[j]:
            pairs += 1
            wins += 1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0.0
    return wins / pairs


def test_equals_counting_the_pairs_by_hand_ties_half():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 4, 40).astype(float)  # many ties
    y = rng.random(40) < 0.5
    strata = rng.integers(0, 3, 40)
    assert stratified_auroc(s, y, strata.tolist()) == pytest.approx(_brute(s, y, strata))


def test_one_stratum_is_the_ordinary_auroc():
    rng = np.random.default_rng(2)
    s, y = rng.normal(size=200), rng.random(200) < 0.3
    assert stratified_auroc(s, y, [0] * 200) == pytest.approx(roc_auc_score(y, s))


def test_a_difficulty_only_signal_falls_to_chance_within_strata():
    rng, k, y = _planted()
    s = k + rng.normal(scale=0.5, size=len(k))  # the state knows the stratum, nothing more
    assert roc_auc_score(y, s) > 0.75
    assert stratified_auroc(s, y, k.tolist()) == pytest.approx(0.5, abs=0.06)


def test_a_signal_within_strata_is_kept():
    rng, k, y = _planted()
    s = 1.5 * y + rng.normal(size=len(k))  # the state knows the outcome, not the stratum
    assert stratified_auroc(s, y, k.tolist()) > 0.8


def test_rows_share_resamples_and_report_the_outside_measure_alone():
    rng, k, y = _planted(300)
    scores = np.column_stack([k + rng.normal(size=300), 1.5 * y + rng.normal(size=300)])
    rows = strata_rows(scores, y, k.tolist(), k / 8, [3, 7], StrataConfig(n_bootstrap=100))
    by = {(r["layer"], r["metric"]): r for r in rows}
    assert set(by) == {
        (3, "auroc"),
        (3, "auroc_within_difficulty"),
        (7, "auroc"),
        (7, "auroc_within_difficulty"),
        (None, "auroc_of_difficulty"),
    }
    assert by[None, "auroc_of_difficulty"]["value"] == pytest.approx(roc_auc_score(y, k / 8))
    assert by[3, "auroc"]["value"] == pytest.approx(roc_auc_score(y, scores[:, 0]))
    assert (
        by[3, "auroc_within_difficulty"]["value"] < 0.6 < by[7, "auroc_within_difficulty"]["value"]
    )
    for r in rows:
        assert r["ci_low"] <= r["value"] <= r["ci_high"]
    pairs = sum(int(y[k == s].sum() * (~y[k == s]).sum()) for s in range(9))
    assert by[3, "auroc_within_difficulty"]["n"] == pairs
    assert by[3, "auroc"]["n"] == int(y.sum() * (~y).sum())


def test_strata_without_both_outcomes_and_mismatched_shapes_are_refused():
    y = np.array([True, True, False, False])
    with pytest.raises(WorkbenchError, match="both a correct and an incorrect"):
        stratified_auroc(np.arange(4.0), y, [0, 0, 1, 1])
    with pytest.raises(WorkbenchError, match="do not match"):
        strata_rows(np.zeros((4, 2)), y, [0, 1, 0, 1], np.zeros(4), [0])
