"""What a probe knows beyond a difficulty measured elsewhere: AUROC within strata.

A greedy run has one generation per problem, so the within-problem AUROC of
`workbench.core.contrast_probes` has no pairs there. A difficulty measured elsewhere (the pass rate
of sampled chains on the same problems, possibly by another model) still separates the two: rank
only the pairs of a correct and an incorrect generation whose problems fall in the same stratum of
that difficulty (the same number of correct samples out of the same number). The stratified AUROC
is 0.5 when the scores carry nothing beyond the stratum, and it approaches the within-problem AUROC
as the strata narrow. It controls for the difficulty that was measured, not for what the probed
model finds hard and the measuring one does not: with another model's pass rates, read it as
"beyond what that model finds hard".

Intervals: percentile 95% from resampling the problems with replacement, the same resamples for
every layer and measure (so that the all-pairs and the within-strata AUROC compare pair by pair).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Bool, Float

from workbench.checks import check_finite
from workbench.core.contrast_probes import interval_row, within_pairs
from workbench.errors import WorkbenchError

__all__ = ["StrataConfig", "strata_index", "strata_rows", "stratified_auroc"]


@dataclass(frozen=True, kw_only=True)
class StrataConfig:
    """Resampling of the stratified AUROC."""

    n_bootstrap: int = 1000
    """Resamples of the problems for the 95% intervals."""
    seed: int = 0
    """Seed of the resamples."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.n_bootstrap < 1:
            raise WorkbenchError(f"n_bootstrap must be at least 1, got {self.n_bootstrap}")


def strata_index(strata: Sequence[Hashable]) -> tuple[np.ndarray, int]:
    """Each example's stratum as 0..k-1 (in order of first appearance), and k."""
    order: dict[Hashable, int] = {}
    index = np.array([order.setdefault(s, len(order)) for s in strata], dtype=int)
    return index, len(order)


def _auroc_by_group(s: np.ndarray, y: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per column of `s` (n, m): the AUROC over the (correct, incorrect) pairs within a group;
    NaN where no group has both outcomes."""
    wins, pairs = within_pairs(s, y, group, n_groups)
    total = pairs.sum()
    return wins.sum(0) / total if total > 0 else np.full(s.shape[1], np.nan)


def stratified_auroc(
    scores: Float[np.ndarray, " n"], labels: Bool[np.ndarray, " n"], strata: Sequence[Hashable]
) -> float:
    """AUROC over the pairs of a correct and an incorrect example of the same stratum only."""
    group, k = strata_index(strata)
    y = np.asarray(labels, bool)
    value = _auroc_by_group(np.asarray(scores, float)[:, None], y, group, k)[0]
    if np.isnan(value):
        raise WorkbenchError("no stratum holds both a correct and an incorrect example")
    return float(value)


def strata_rows(
    scores: Float[np.ndarray, "n layer"],
    labels: Bool[np.ndarray, " n"],
    strata: Sequence[Hashable],
    difficulty: Float[np.ndarray, " n"],
    layers: Sequence[int],
    cfg: StrataConfig = StrataConfig(),
) -> list[dict[str, Any]]:
    """Tidy rows (layer, metric, value, ci_low, ci_high, n). Per layer (column j of `scores` is
    model layer `layers[j]`): ``auroc`` over all pairs and ``auroc_within_difficulty`` over the
    pairs within a stratum (n: the pairs ranked). One row with layer None,
    ``auroc_of_difficulty``: `difficulty` itself (higher = easier) as the score of success, what
    the outside measure alone predicts."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    d = np.asarray(difficulty, float)
    if s.shape != (len(y), len(layers)) or len(strata) != len(y) or d.shape != y.shape:
        raise WorkbenchError(
            f"scores {s.shape}, {len(y)} labels, {len(strata)} strata, {d.shape} difficulties "
            f"and {len(layers)} layers do not match"
        )
    group, k = strata_index(strata)
    zero = np.zeros(len(y), dtype=int)
    within = _auroc_by_group(s, y, group, k)
    if np.isnan(within).all():
        raise WorkbenchError("no stratum holds both a correct and an incorrect example")
    sd = np.column_stack([s, d])
    everything = _auroc_by_group(sd, y, zero, 1)
    rng = np.random.default_rng(cfg.seed)
    boot_all = np.full((cfg.n_bootstrap, sd.shape[1]), np.nan)
    boot_within = np.full((cfg.n_bootstrap, s.shape[1]), np.nan)
    for b in range(cfg.n_bootstrap):
        idx = rng.integers(0, len(y), len(y))
        boot_all[b] = _auroc_by_group(sd[idx], y[idx], zero, 1)
        boot_within[b] = _auroc_by_group(s[idx], y[idx], group[idx], k)
    n_within = int((np.bincount(group[y], minlength=k) * np.bincount(group[~y], minlength=k)).sum())
    n_all = int(y.sum() * (~y).sum())
    rows = []
    for j, layer in enumerate(layers):
        rows.append(interval_row(layer, "auroc", everything[j], boot_all[:, j], n_all))
        rows.append(
            interval_row(layer, "auroc_within_difficulty", within[j], boot_within[:, j], n_within)
        )
    rows.append(interval_row(None, "auroc_of_difficulty", everything[-1], boot_all[:, -1], n_all))
    return rows
