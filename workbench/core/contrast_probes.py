"""Probes that tell reasoning from difficulty, and how the three directions relate, per layer.

On sampled chains (several per problem), per layer, out of fold (folds by problem, so that no
problem's chains are on both sides) with percentile 95% intervals from resampling problems:

* ``auroc_pooled``: the pooled direction's projection scores, AUROC over all chains (today's
  probe; it rewards knowing which problems are hard);
* ``auroc_within``: the within-problem direction's scores, AUROC over pairs of a correct and an
  incorrect chain *of the same problem* only (chance 0.5 when the states carry nothing beyond the
  problem); ``auroc_within_of_pooled``: the same pairs ranked by the pooled direction's scores;
* ``spearman_pass_rate``: the difficulty direction's scores at the last prompt token, Spearman
  correlation with the problems' pass rates (before any reasoning is written).

`length_control` scores the chains by their length alone (shorter = predicted right) with the same
two AUROCs and intervals: a state probe's within-problem AUROC above it is more than chain length.
`token_control` runs the state probes' own pooled and within-problem directions (fitted out of
fold) on each chain's bag of tokens (the frequency of each token id among its generated tokens)
instead of its states: what the written text alone gives, with no model in the loop.

`direction_cosines` gives the cosines among the three directions (fitted on all problems) with
intervals from refitting them on resampled problems, and the share of the pooled direction's
squared norm that lies along the difficulty direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Bool, Float
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import roc_auc_score
from torch import Tensor

from workbench.checks import check_finite
from workbench.core.contrast import KINDS, ProblemStats, cosines, directions, problem_index
from workbench.errors import WorkbenchError

__all__ = [
    "ContrastProbeConfig",
    "contrast_probes",
    "direction_cosines",
    "interval_row",
    "length_control",
    "problem_folds",
    "token_control",
    "within_auroc",
    "within_pairs",
]


@dataclass(frozen=True, kw_only=True)
class ContrastProbeConfig:
    """Folds and bootstrap of the contrast probes."""

    n_folds: int = 5
    """Cross-validation folds, by problem."""
    n_bootstrap: int = 200
    """Resamples of problems for the 95% intervals."""
    seed: int = 0
    """Seed of the folds and the resamples."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.n_folds < 2 or self.n_bootstrap < 1:
            raise WorkbenchError("contrast probes need n_folds >= 2 and n_bootstrap >= 1")


def problem_folds(n_problems: int, n_folds: int, seed: int) -> list[Tensor]:
    """Each fold's held-out problems (a shuffled split of 0..n_problems-1)."""
    if n_problems < n_folds:
        raise WorkbenchError(f"{n_problems} problems cannot make {n_folds} folds")
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n_problems))
    return list(torch.tensor_split(perm, n_folds))


def _boot_weights(n: int, cfg: ContrastProbeConfig) -> Tensor:
    """One row of problem counts per resample (problems drawn with replacement)."""
    idx = np.random.default_rng(cfg.seed).integers(0, n, size=(cfg.n_bootstrap, n))
    counts = np.zeros((cfg.n_bootstrap, n))
    np.add.at(counts, (np.arange(cfg.n_bootstrap)[:, None], idx), 1)
    return torch.from_numpy(counts).float()


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _oof_scores(
    stats: ProblemStats,
    states: Float[Tensor, "n layer d_model"],
    place: Tensor,
    folds: Sequence[Tensor],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold scores: chains on the pooled and within directions (n, layer), midpoint
    centred as `workbench.core.probing` does, and problems' prompt states on the difficulty
    direction (problem, layer)."""
    n_p = len(stats.problem_ids)
    pooled = torch.full(states.shape[:2], float("nan"))
    within = torch.full(states.shape[:2], float("nan"))
    prompt = torch.full((n_p, states.shape[1]), float("nan"))
    for held in folds:
        w = torch.ones(1, n_p)
        w[0, held] = 0.0
        u = _unit(directions(stats, w)[0])  # (kind, layer, d)
        rows = torch.isin(place, held)
        x = states[rows].float()
        for k, out in ((0, pooled), (1, within)):
            mid = _train_midpoint(stats, w, u[k])
            out[rows] = torch.einsum("nld,ld->nl", x, u[k]) - mid
        prompt[held] = torch.einsum("pld,ld->pl", stats.prompt[held], u[2])
    return pooled.double().numpy(), within.double().numpy(), prompt.double().numpy()


def _train_midpoint(stats: ProblemStats, w: Tensor, u: Tensor) -> Tensor:
    """(mu_correct + mu_incorrect) / 2 . u over the training problems, per layer."""
    mu_c = torch.einsum("bp,pld->ld", w, stats.correct_sum) / (w @ stats.n_correct).clamp_min(1)
    mu_i = torch.einsum("bp,pld->ld", w, stats.incorrect_sum) / (w @ stats.n_incorrect).clamp_min(1)
    return ((mu_c + mu_i) / 2 * u).sum(-1)


def within_pairs(
    scores: np.ndarray, labels: np.ndarray, place: np.ndarray, n_problems: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per problem: the Mann-Whitney count of its (correct, incorrect) pairs ranked right (ties
    half), and its number of such pairs. `scores` is (n,) or (n, layer); counts follow."""
    s = scores if scores.ndim == 2 else scores[:, None]
    wins = np.zeros((n_problems, s.shape[1]))
    pairs = np.zeros(n_problems)
    for p in range(n_problems):
        rows = place == p
        y = labels[rows]
        n1, n0 = int(y.sum()), int((~y).sum())
        if n1 == 0 or n0 == 0:
            continue
        ranks = rankdata(s[rows], axis=0)
        wins[p] = ranks[y].sum(0) - n1 * (n1 + 1) / 2
        pairs[p] = n1 * n0
    return (wins if scores.ndim == 2 else wins[:, 0]), pairs


def within_auroc(scores: np.ndarray, labels: np.ndarray, problem_ids: Sequence[str]) -> float:
    """AUROC over the pairs of a correct and an incorrect chain of the same problem only: 0.5
    when the scores carry nothing beyond which problem a chain is of."""
    _, place = problem_index(problem_ids)
    wins, pairs = within_pairs(
        np.asarray(scores), np.asarray(labels, bool), place.numpy(), int(place.max()) + 1
    )
    if pairs.sum() == 0:
        raise WorkbenchError("no problem has both a correct and an incorrect chain")
    return float(wins.sum() / pairs.sum())


def _interval(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def interval_row(
    layer: int | None, metric: str, value: float, boot: np.ndarray, n: int
) -> dict[str, Any]:
    """A tidy row: the value with the percentile 95% interval of its finite resamples `boot`."""
    lo, hi = _interval(boot)
    return {
        "layer": layer,
        "metric": metric,
        "value": float(value),
        "ci_low": lo,
        "ci_high": hi,
        "n": n,
    }


def _pooled_auroc_boot(s: np.ndarray, y: np.ndarray, place: np.ndarray, counts: np.ndarray):
    out = np.full(len(counts), np.nan)
    for b, c in enumerate(counts):
        rows = np.repeat(np.arange(len(y)), c[place].astype(int))
        if y[rows].any() and not y[rows].all():
            out[b] = roc_auc_score(y[rows], s[rows])
    return out


def _pooled_row(
    layer: int | None,
    metric: str,
    s: np.ndarray,
    y: np.ndarray,
    place: np.ndarray,
    counts: np.ndarray,
) -> dict[str, Any]:
    """The AUROC row of scores `s` over all chains, its resamples drawn by problem."""
    return interval_row(
        layer, metric, roc_auc_score(y, s), _pooled_auroc_boot(s, y, place, counts), len(y)
    )


def _within_row(
    layer: int | None,
    metric: str,
    s: np.ndarray,
    y: np.ndarray,
    place: np.ndarray,
    counts: np.ndarray,
) -> dict[str, Any]:
    """The within-problem AUROC row of scores `s`; its resamples reweight the problems' pair
    counts (`counts`: one row of problem weights per resample)."""
    wins, pairs = within_pairs(s, y, place, counts.shape[1])
    boot = (counts @ wins) / np.maximum(counts @ pairs, 1e-12)
    return interval_row(layer, metric, wins.sum() / pairs.sum(), boot, int(pairs.sum()))


def _spearman_boot(s: np.ndarray, r: np.ndarray, counts: np.ndarray) -> np.ndarray:
    out = np.full(len(counts), np.nan)
    for b, c in enumerate(counts):
        idx = np.repeat(np.arange(len(r)), c.astype(int))
        if np.ptp(r[idx]) > 0:
            out[b] = spearmanr(s[idx], r[idx]).statistic
    return out


def length_control(
    lengths: Sequence[int] | np.ndarray,
    labels: Sequence[bool] | np.ndarray,
    problem_ids: Sequence[str],
    cfg: ContrastProbeConfig = ContrastProbeConfig(),
) -> list[dict[str, Any]]:
    """Rows (layer None) of ``auroc_pooled_of_length`` and ``auroc_within_of_length``: the
    chains ranked by minus their generated tokens, with the probes' problem resamples."""
    _, place_t = problem_index(problem_ids)
    place, n_p = place_t.numpy(), int(place_t.max()) + 1
    y, s = np.asarray(labels, bool), -np.asarray(lengths, float)
    counts = _boot_weights(n_p, cfg).numpy()
    if not within_pairs(s, y, place, n_p)[1].any():
        raise WorkbenchError("no problem has both a correct and an incorrect chain")
    return [
        _pooled_row(None, "auroc_pooled_of_length", s, y, place, counts),
        _within_row(None, "auroc_within_of_length", s, y, place, counts),
    ]


def token_frequencies(tokens: Sequence[Sequence[int]]) -> Float[Tensor, "n 1 vocab"]:
    """Each chain's bag of tokens: the share of each token id among its tokens, over the ids
    that occur in any chain (one "layer", so that the state probes take it)."""
    vocab = {t: i for i, t in enumerate(sorted({t for chain in tokens for t in chain}))}
    out = torch.zeros(len(tokens), 1, max(len(vocab), 1))
    for n, chain in enumerate(tokens):
        if chain:
            ids = torch.tensor([vocab[t] for t in chain])
            out[n, 0].index_add_(0, ids, torch.full((len(chain),), 1.0 / len(chain)))
    return out


def token_control(
    tokens: Sequence[Sequence[int]],
    labels: Sequence[bool] | np.ndarray,
    problem_ids: Sequence[str],
    cfg: ContrastProbeConfig = ContrastProbeConfig(),
) -> list[dict[str, Any]]:
    """Rows (layer None) of ``auroc_pooled_of_tokens`` and ``auroc_within_of_tokens``: the
    pooled and within-problem directions fitted out of fold, with the probes' folds and problem
    resamples, on the chains' bags of tokens (`token_frequencies`) instead of their states."""
    freq = token_frequencies(tokens)
    y_t = torch.as_tensor(np.asarray(labels, bool))
    stats = ProblemStats.from_rows(freq, freq, y_t, problem_ids)  # the prompt slot is unused
    if not bool(stats.mixed.any()):
        raise WorkbenchError("no problem has both a correct and an incorrect chain")
    _, place_t = problem_index(problem_ids)
    n_p = len(stats.problem_ids)
    folds = problem_folds(n_p, cfg.n_folds, cfg.seed)
    pooled, within, _ = _oof_scores(stats, freq, place_t, folds)
    y, place = y_t.numpy(), place_t.numpy()
    counts = _boot_weights(n_p, cfg).numpy()
    return [
        _pooled_row(None, "auroc_pooled_of_tokens", pooled[:, 0], y, place, counts),
        _within_row(None, "auroc_within_of_tokens", within[:, 0], y, place, counts),
    ]


def contrast_probes(
    states: Float[Tensor, "n layer d_model"],
    prompt_states: Float[Tensor, "n layer d_model"],
    labels: Bool[Tensor, " n"],
    problem_ids: Sequence[str],
    layers: Sequence[int],
    cfg: ContrastProbeConfig = ContrastProbeConfig(),
    *,
    stats: ProblemStats | None = None,
) -> list[dict[str, Any]]:
    """Tidy rows (layer, metric, value, ci_low, ci_high, n) of the four measures of the module
    docstring; column j of the states is model layer `layers[j]`. `stats`: these rows'
    `ProblemStats`, when the caller has them already."""
    if states.shape[1] != len(layers):
        raise WorkbenchError(f"states hold {states.shape[1]} layers, not the {len(layers)} named")
    if stats is None:
        stats = ProblemStats.from_rows(states, prompt_states, labels, problem_ids)
    n_mixed = int(stats.mixed.sum())
    if n_mixed < 2:
        raise WorkbenchError(
            f"{n_mixed} of {len(stats.problem_ids)} problems have both a correct and "
            "an incorrect chain; the within-problem probe needs at least 2 (sample more problems, "
            "more chains, or at a higher temperature)"
        )
    _, place_t = problem_index(problem_ids)
    n_p = len(stats.problem_ids)
    folds = problem_folds(n_p, cfg.n_folds, cfg.seed)
    pooled, within, prompt = _oof_scores(stats, states, place_t, folds)
    y, place = labels.numpy().astype(bool), place_t.numpy()
    counts = _boot_weights(n_p, cfg).numpy()
    rate = stats.pass_rate.numpy()
    rows: list[dict[str, Any]] = []
    for j, layer in enumerate(layers):
        rows.append(_pooled_row(layer, "auroc_pooled", pooled[:, j], y, place, counts))
        for metric, s in (("auroc_within", within[:, j]), ("auroc_within_of_pooled", pooled[:, j])):
            rows.append(_within_row(layer, metric, s, y, place, counts))
        rho = spearmanr(prompt[:, j], rate).statistic
        rows.append(
            interval_row(
                layer, "spearman_pass_rate", rho, _spearman_boot(prompt[:, j], rate, counts), n_p
            )
        )
    return rows


def direction_cosines(
    stats: ProblemStats, layers: Sequence[int], cfg: ContrastProbeConfig = ContrastProbeConfig()
) -> list[dict[str, Any]]:
    """Per layer: the cosine of each pair of the three directions and the share of the pooled
    direction's squared norm along the difficulty one (cos^2), each with a 95% interval from
    refitting on resampled problems; and the mixed problems that the within direction rests on."""
    point = directions(stats)[0]
    boot = directions(stats, _boot_weights(len(stats.problem_ids), cfg))
    k = {name: i for i, name in enumerate(KINDS)}
    pairs = [("pooled", "within"), ("pooled", "difficulty"), ("within", "difficulty")]
    n_mixed = int(stats.mixed.sum())
    rows = []
    for j, layer in enumerate(layers):
        for a, b in pairs:
            c = cosines(point[k[a], j], point[k[b], j]).item()
            cb = cosines(boot[:, k[a], j], boot[:, k[b], j]).numpy()
            rows.append(interval_row(layer, f"cos_{a}_{b}", c, cb, len(stats.problem_ids)))
            if (a, b) == ("pooled", "difficulty"):
                rows.append(
                    interval_row(
                        layer, "pooled_share_along_difficulty", c * c, cb**2, len(stats.problem_ids)
                    )
                )
        for name in KINDS:
            norm = point[k[name], j].norm().item()
            rows.append(
                interval_row(
                    layer,
                    f"norm_{name}",
                    norm,
                    boot[:, k[name], j].norm(dim=-1).numpy(),
                    n_mixed if name == "within" else len(stats.problem_ids),
                )
            )
    return rows
