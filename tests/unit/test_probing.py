"""Cross-validated probing on planted signals: layer localisation, no leakage, early prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from jaxtyping import TypeCheckError
from sklearn.metrics import roc_auc_score

from workbench.core.probing import (
    ProbeConfig,
    cv_folds,
    oof_projection_scores,
    probe_layers,
)
from workbench.errors import WorkbenchError

CFG = ProbeConfig(n_bootstrap=200)
LAYERS = (0, 4, 8, 12, 16, 20)


def planted(n=200, layers=6, d=16, signal_layer=3, shift=2.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.rand(n, generator=g) < 0.5
    u = torch.randn(d, generator=g)
    u = u / u.norm()
    states = torch.randn(n, layers, d, generator=g)
    states[:, signal_layer] += shift * labels[:, None].float() * u
    return states, labels


@pytest.fixture(scope="module")
def table():
    states, labels = planted()
    return probe_layers(states, labels, LAYERS, CFG, position="last")


def row(rows, layer, metric):
    (r,) = [r for r in rows if r["layer"] == layer and r["metric"] == metric]
    return r


def test_table_is_tidy(table):
    metrics = {"auroc", "cohens_d", "probe_accuracy", "probe_balanced_accuracy", "auroc_shuffled"}
    assert len(table) == len(LAYERS) * len(metrics)
    assert {r["metric"] for r in table} == metrics
    for r in table:
        assert set(r) == {"layer", "position", "metric", "value", "ci_low", "ci_high", "n"}
        assert r["position"] == "last" and r["n"] == 200
        assert r["ci_low"] <= r["value"] <= r["ci_high"]


def test_planted_layer_is_found_and_others_are_null(table):
    auroc = row(table, 12, "auroc")
    assert auroc["value"] > 0.9 and auroc["ci_low"] > 0.8
    assert row(table, 12, "probe_accuracy")["value"] > 0.8
    assert row(table, 12, "probe_balanced_accuracy")["value"] > 0.8
    assert row(table, 12, "cohens_d")["ci_low"] > 1.0
    shuffled = row(table, 12, "auroc_shuffled")
    assert shuffled["ci_low"] < 0.5 < shuffled["ci_high"]
    for layer in (0, 4, 8, 16, 20):
        r = row(table, layer, "auroc")
        assert r["ci_low"] < 0.5 < r["ci_high"], r


def test_deterministic_with_seed(table):
    states, labels = planted()
    assert probe_layers(states, labels, LAYERS, CFG, position="last") == table


def test_folds_partition_and_are_disjoint():
    labels = planted()[1]
    folds = cv_folds(labels, 5, seed=3)
    assert len(folds) == 5
    tests = np.concatenate([te for _, te in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(200))
    for train, test in folds:
        assert not set(train) & set(test)
        assert len(train) + len(test) == 200
    # folds are lowered to the smaller class size
    small = torch.tensor([True, True, True] + [False] * 10)
    assert len(cv_folds(small, 5, seed=0)) == 3


def test_oof_scores_match_naive_reference():
    states, labels = planted(n=60, d=8)
    x, y = states[:, 3].numpy().astype(np.float64), labels.numpy()
    folds = cv_folds(labels, 4, seed=1)
    expected = np.full(len(y), np.nan)
    for train, test in folds:
        mu_pos = x[train][y[train]].mean(0)
        mu_neg = x[train][~y[train]].mean(0)
        v = mu_pos - mu_neg
        expected[test] = (x[test] - (mu_pos + mu_neg) / 2) @ (v / np.linalg.norm(v))
    got = oof_projection_scores(states[:, 3], labels, folds)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_scoring_never_uses_the_scored_example():
    # Moving one example changes only the scores of the other folds' examples, never its own
    # fold's direction (which is fit without it).
    states, labels = planted(n=40, d=8)
    folds = cv_folds(labels, 4, seed=0)
    _, test0 = folds[0]
    before = oof_projection_scores(states[:, 3], labels, folds)
    moved = states[:, 3].clone()
    moved[test0[0]] += 100.0
    after = oof_projection_scores(moved, labels, folds)
    others = np.setdiff1d(test0, test0[:1])
    np.testing.assert_allclose(after[others], before[others], rtol=1e-5, atol=1e-5)


def test_bootstrap_auroc_matches_sklearn():
    from workbench.core.probing import _auroc_b

    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=(5, 50)), 1)  # ties on purpose
    y = rng.random((5, 50)) < 0.4
    np.testing.assert_allclose(
        _auroc_b(s, y), [roc_auc_score(yy, ss) for ss, yy in zip(s, y, strict=True)]
    )


def test_wide_states_use_pca_probe():
    states, labels = planted(n=40, layers=1, d=64, signal_layer=0, shift=4.0)
    rows = probe_layers(states, labels, (7,), ProbeConfig(n_bootstrap=50, shuffled_control=False))
    assert row(rows, 7, "probe_accuracy")["value"] > 0.8


def test_early_prediction_sees_signal_only_after_token_five():
    """What `als probe` does for early prediction: each generation's state is the mean of its
    first k generated-token states (fewer if it is shorter), probed like any other state."""
    g = torch.Generator().manual_seed(0)
    n, d = 120, 8
    labels = torch.arange(n) % 2 == 0
    u = torch.randn(d, generator=g)
    u = u / u.norm()
    trajectories = []
    for i in range(n):
        t = torch.randn(int(70 + i % 30), 2, d, generator=g)
        t[5:, 1] += 1.0 * labels[i].float() * u
        trajectories.append(t)
    cfg = ProbeConfig(n_bootstrap=200, shuffled_control=False)
    at = {}
    for k in (1, 4, 64, None):
        states = torch.stack([t[:k].mean(0) for t in trajectories])
        for r in probe_layers(states, labels, (10, 20), cfg):
            if r["metric"] == "auroc":
                at[r["layer"], k] = r
    for k in (1, 4):
        assert at[20, k]["ci_low"] < 0.5 < at[20, k]["ci_high"], at[20, k]
    for k in (64, None):
        assert at[20, k]["value"] > 0.85
        assert at[10, k]["ci_low"] < 0.5 < at[10, k]["ci_high"]


def test_errors():
    states, labels = planted(n=20)
    one = torch.zeros(20, dtype=torch.bool)
    one[0] = True
    with pytest.raises(WorkbenchError, match="at least 2"):
        probe_layers(states, one, LAYERS, CFG)
    # Shapes that disagree: the annotations' run-time check (on in the tests) or, without it, the
    # library's own one-line error.
    with pytest.raises((WorkbenchError, TypeCheckError)):
        probe_layers(states[:19], labels, LAYERS, CFG)
    with pytest.raises(WorkbenchError, match="do not match"):
        probe_layers(states, labels, LAYERS[:5], CFG)
    with pytest.raises((WorkbenchError, TypeCheckError)):
        oof_projection_scores(states[:10, 0], labels, cv_folds(labels, 2, 0))
    with pytest.raises(WorkbenchError, match="n_folds"):
        ProbeConfig(n_folds=1)
