"""Pooled, within-problem and difficulty directions and their probes, on planted signals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.core.contrast import ProblemStats, cosines, directions
from workbench.core.contrast_probes import (
    ContrastProbeConfig,
    contrast_probes,
    direction_cosines,
    length_control,
    token_control,
    token_frequencies,
    within_auroc,
)
from workbench.errors import WorkbenchError

D = 16
CFG = ContrastProbeConfig(n_folds=4, n_bootstrap=50, seed=0)


def _chains(n_problems: int = 80, k: int = 8, *, difficulty: float, within: float, seed: int = 0):
    """Sampled chains with planted signals: a problem's easiness e_p sets its chains' success
    probability and (times `difficulty`) shifts its prompt and chain states along axis 0; a
    chain's success shifts its own state along axis 1 (times `within`). Noise elsewhere."""
    g = torch.Generator().manual_seed(seed)
    easy = torch.randn(n_problems, generator=g)
    p = torch.sigmoid(2 * easy).repeat_interleave(k)
    labels = torch.rand(n_problems * k, generator=g) < p
    e = easy.repeat_interleave(k)
    states = torch.randn(n_problems * k, 2, D, generator=g)
    states[:, :, 0] += difficulty * e[:, None]
    states[:, :, 1] += within * labels.float()[:, None]
    prompt = torch.randn(n_problems, 2, D, generator=g).repeat_interleave(k, 0) * 0.3
    prompt[:, :, 0] += e[:, None]
    ids = [f"p{i}" for i in range(n_problems) for _ in range(k)]
    return states, prompt, labels, ids


def _metric(rows, metric, layer=0):
    (row,) = [r for r in rows if r["metric"] == metric and r["layer"] == layer]
    return row


def test_difficulty_only_signal_is_pooled_not_within():
    states, prompt, labels, ids = _chains(difficulty=3.0, within=0.0)
    rows = contrast_probes(states, prompt, labels, ids, [0, 1], CFG)
    assert _metric(rows, "auroc_pooled")["value"] > 0.75
    for metric in ("auroc_within", "auroc_within_of_pooled"):
        row = _metric(rows, metric)
        assert abs(row["value"] - 0.5) < 0.08
        assert row["ci_low"] < 0.5 < row["ci_high"]
    assert _metric(rows, "spearman_pass_rate")["value"] > 0.6


def test_within_signal_is_found_by_the_within_probe():
    states, prompt, labels, ids = _chains(difficulty=0.0, within=2.0)
    rows = contrast_probes(states, prompt, labels, ids, [0, 1], CFG)
    row = _metric(rows, "auroc_within")
    assert row["value"] > 0.8 and row["ci_low"] > 0.7


def test_directions_point_along_their_planted_axes():
    states, prompt, labels, ids = _chains(n_problems=200, difficulty=3.0, within=2.0)
    stats = ProblemStats.from_rows(states, prompt, labels, ids)
    pooled, within, difficulty = directions(stats)[0][:, 0]
    assert within[1] / within.norm() > 0.95  # difficulty cancels inside a problem
    assert abs(within[0]) / within.norm() < 0.15
    assert difficulty[0] / difficulty.norm() > 0.95  # toward easier
    assert pooled[0] > 0 and pooled[1] > 0  # the pooled direction mixes both


def test_within_direction_is_one_weight_per_problem():
    # two mixed problems: one with 1 correct vs 7 incorrect, one with 7 vs 1; gaps +1 and +3
    states = torch.zeros(16, 1, 2)
    labels = torch.tensor([1] + [0] * 7 + [1] * 7 + [0], dtype=torch.bool)
    states[0, 0, 0] = 1.0
    states[8:15, 0, 0] = 3.0
    ids = ["a"] * 8 + ["b"] * 8
    stats = ProblemStats.from_rows(states, torch.zeros_like(states), labels, ids)
    within = directions(stats)[0, 1, 0]
    assert torch.allclose(within, torch.tensor([2.0, 0.0]))  # (1 + 3) / 2, not pair-weighted


def test_difficulty_direction_is_the_least_squares_slope():
    rate_to_state = torch.tensor([0.5, -2.0, 0.0])
    prompt = torch.tensor([0.0, 0.25, 0.5, 1.0])[:, None, None] * rate_to_state
    labels = torch.tensor([0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1], dtype=torch.bool)
    ids = [f"p{i}" for i in range(4) for _ in range(4)]
    states = torch.randn(16, 1, 3)
    stats = ProblemStats.from_rows(states, prompt.repeat_interleave(4, 0), labels, ids)
    assert torch.allclose(stats.pass_rate, torch.tensor([0.0, 0.25, 0.5, 1.0]))
    assert torch.allclose(directions(stats)[0, 2, 0], rate_to_state, atol=1e-6)


def test_bootstrap_weights_equal_duplicated_problems():
    states, prompt, labels, ids = _chains(n_problems=6, k=4, difficulty=1.0, within=1.0)
    stats = ProblemStats.from_rows(states, prompt, labels, ids)
    w = torch.tensor([[2.0, 1, 0, 1, 0, 1]])
    keep = [0, 0, 1, 3, 5]
    rows = [i for p in keep for i in range(4 * p, 4 * p + 4)]
    dup_ids = [f"{ids[i]}-{n}" for n, p in enumerate(keep) for i in range(4 * p, 4 * p + 4)]
    dup = ProblemStats.from_rows(states[rows], prompt[rows], labels[rows], dup_ids)
    assert torch.allclose(directions(stats, w)[0], directions(dup)[0], atol=1e-5)


def test_within_auroc_ranks_only_pairs_of_one_problem():
    labels = np.array([1, 0, 1, 0], bool)
    scores = np.array([10.0, 9.0, 1.0, 0.0])  # problem b sits far below problem a
    assert within_auroc(scores, labels, ["a", "a", "b", "b"]) == 1.0
    with pytest.raises(WorkbenchError, match="both a correct and an incorrect"):
        within_auroc(scores, np.ones(4, bool), ["a", "a", "b", "b"])


def test_cosines_table_shares_and_intervals():
    states, prompt, labels, ids = _chains(difficulty=3.0, within=0.0)
    stats = ProblemStats.from_rows(states, prompt, labels, ids)
    rows = direction_cosines(stats, [0, 1], CFG)
    c = _metric(rows, "cos_pooled_difficulty")
    share = _metric(rows, "pooled_share_along_difficulty")
    assert c["value"] > 0.8 and 0.5 < c["ci_low"] < c["ci_high"] <= 1.0
    assert share["value"] == pytest.approx(c["value"] ** 2)
    assert cosines(torch.zeros(3), torch.ones(3)).item() == 0.0


def test_length_control_scores_shorter_chains_as_right():
    _, _, labels, ids = _chains(difficulty=0.0, within=0.0)
    rng = np.random.default_rng(0)
    y = labels.numpy()
    planted = np.where(y, 200, 300) + rng.integers(-20, 20, len(y))  # right chains shorter
    rows = {r["metric"]: r for r in length_control(planted, y, ids, CFG)}
    assert rows["auroc_within_of_length"]["value"] == 1.0
    assert rows["auroc_pooled_of_length"]["value"] == 1.0
    blind = {r["metric"]: r for r in length_control(rng.integers(100, 400, len(y)), y, ids, CFG)}
    row = blind["auroc_within_of_length"]
    assert abs(row["value"] - 0.5) < 0.08 and row["ci_low"] < 0.5 < row["ci_high"]
    assert row["layer"] is None and row["n"] == sum(
        int(y[i : i + 8].sum()) * int((~y[i : i + 8]).sum()) for i in range(0, len(y), 8)
    )


def test_token_frequencies_are_shares_of_each_chain():
    freq = token_frequencies([[7, 7, 3], [3], []])
    assert freq.shape == (3, 1, 2)  # ids 3 and 7
    assert torch.allclose(freq[:, 0], torch.tensor([[1 / 3, 2 / 3], [1.0, 0.0], [0.0, 0.0]]))


def _token_chains(marker_rate_right: float, seed: int = 0):
    """Chains of random words; a right chain writes token 999 at `marker_rate_right`, a wrong
    one never. Problems differ in difficulty (the pass rate), not in their words."""
    _, _, labels, ids = _chains(difficulty=0.0, within=0.0, seed=seed)
    rng = np.random.default_rng(seed)
    tokens = []
    for right in labels.tolist():
        chain = rng.integers(0, 50, 60).tolist()
        if right and marker_rate_right > 0:
            chain[: int(60 * marker_rate_right)] = [999] * int(60 * marker_rate_right)
        tokens.append(chain)
    return tokens, labels.numpy(), ids


def test_token_control_finds_a_planted_word_and_nothing_without_one():
    rows = {r["metric"]: r for r in token_control(*_token_chains(0.1), CFG)}
    assert rows["auroc_within_of_tokens"]["value"] > 0.95
    assert rows["auroc_pooled_of_tokens"]["value"] > 0.95
    blind = {r["metric"]: r for r in token_control(*_token_chains(0.0), CFG)}
    row = blind["auroc_within_of_tokens"]
    assert abs(row["value"] - 0.5) < 0.08 and row["ci_low"] < 0.5 < row["ci_high"]
    assert row["layer"] is None
