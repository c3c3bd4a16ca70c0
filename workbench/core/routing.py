"""The direction as a router of compute: spend samples only where a failure is predicted.

A failure predictor reads each problem before decoding (e.g. the last prompt token's projection
on the difficulty direction: low = predicted hard). The router sends the problems it calls hard
to an expensive method (SC@k) and the rest to a cheap one (greedy CoT). A *budget* is the share
of problems sent to the expensive method; its threshold is the score quantile of that share on
problems disjoint from the test set (validation), so that nothing about the test problems sets it.
A routed row is the chosen method's row, costs and all: the router's tokens and seconds are what
it spent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError

__all__ = ["Routed", "budget_threshold", "by_score_bin", "route_rows", "routed_summary"]


def budget_threshold(validation_scores: Sequence[float], budget: float) -> float:
    """The score below which a share `budget` of the validation problems falls: problems scoring
    below it are called hard (`budget` 0: none; 1: all)."""
    if not 0.0 <= budget <= 1.0:
        raise WorkbenchError(f"a budget is a share of problems in [0, 1], not {budget}")
    s = np.sort(np.asarray(validation_scores, dtype=float))
    if len(s) == 0:
        raise WorkbenchError("a budget's threshold needs validation scores")
    if budget == 0.0:
        return -np.inf
    if budget == 1.0:
        return np.inf
    k = round(budget * len(s))  # the k lowest are hard: cut between s[k-1] and s[k]
    if k == 0:
        return float(s[0])
    if k >= len(s):
        return float(np.nextafter(s[-1], np.inf))
    return float((s[k - 1] + s[k]) / 2)


@dataclass(frozen=True)
class Routed:
    """Each test problem's row from the method the router chose for it."""

    rows: list[dict[str, Any]]
    """Rows, in the order of the problems; ``routed_to`` names the method."""
    hard: np.ndarray
    """Which problems were sent to the expensive method."""


def route_rows(
    scores: Mapping[str, float],
    threshold: float,
    cheap: Sequence[Mapping[str, Any]],
    expensive: Sequence[Mapping[str, Any]],
    *,
    method: str = "router",
) -> Routed:
    """Per problem of `cheap` (rows with ``id``), the `expensive` row where its score is below
    `threshold`, else the cheap row; every problem needs a score and an expensive row."""
    by_id = {r["id"]: r for r in expensive}
    missing = [r["id"] for r in cheap if r["id"] not in by_id or r["id"] not in scores]
    if missing:
        raise WorkbenchError(
            f"{len(missing)} problems lack a score or an expensive row (e.g. {missing[0]})"
        )
    hard = np.array([scores[r["id"]] < threshold for r in cheap])
    rows = []
    for row, is_hard in zip(cheap, hard, strict=True):
        chosen = by_id[row["id"]] if is_hard else row
        rows.append({**chosen, "method": method, "routed_to": chosen["method"]})
    return Routed(rows, hard)


def routed_summary(routed: Routed) -> dict[str, float]:
    """Accuracy, tokens and seconds per problem of a routing, and its share sent to the
    expensive method."""
    rows = routed.rows
    n = len(rows)
    return {
        "n": n,
        "accuracy": sum(bool(r["correct"]) for r in rows) / n,
        "tokens_per_problem": sum(r["generated_tokens"] for r in rows) / n,
        "seconds_per_problem": sum(r["seconds"] for r in rows) / n,
        "share_expensive": float(routed.hard.mean()),
    }


def by_score_bin(
    scores: Sequence[float],
    pass_rate: Sequence[float],
    cheap_correct: Sequence[bool],
    expensive_correct: Sequence[bool],
    n_bins: int = 4,
) -> list[dict[str, Any]]:
    """Where the expensive method helps, by the router's score: the problems (aligned arrays)
    cut into `n_bins` equal-count bins from the lowest score (predicted hardest) up; per bin the
    mean sampled pass rate, the share no sample solves (no vote can fix those), both methods'
    accuracy, and the problems the expensive method fixes (cheap wrong, expensive right) and
    breaks. A router pays off where fixes outnumber breaks."""
    x, r = np.asarray(scores, float), np.asarray(pass_rate, float)
    c, e = np.asarray(cheap_correct, bool), np.asarray(expensive_correct, bool)
    if not len(x) == len(r) == len(c) == len(e) or len(x) < n_bins:
        raise WorkbenchError(f"by_score_bin needs {n_bins}+ problems, one value each per array")
    out = []
    for b, idx in enumerate(np.array_split(np.argsort(x, kind="stable"), n_bins)):
        out.append(
            {
                "bin": b,
                "n": len(idx),
                "score_max": float(x[idx].max()),
                "pass_rate": float(r[idx].mean()),
                "share_unsolved": float((r[idx] == 0).mean()),
                "cheap_accuracy": float(c[idx].mean()),
                "expensive_accuracy": float(e[idx].mean()),
                "fixes": int((~c[idx] & e[idx]).sum()),
                "breaks": int((c[idx] & ~e[idx]).sum()),
            }
        )
    return out
