"""Statistics of graded runs: accuracy with Wilson intervals, exact McNemar tests, cost summaries.

Pure Python/NumPy on tidy rows (one dict per problem); no model code here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from scipy.stats import binomtest

__all__ = [
    "mcnemar_exact",
    "paired_counts",
    "repetition_rate",
    "tradeoff_scores",
    "wilson_interval",
]


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n (scipy); (nan, nan) when n = 0."""
    if n == 0:
        return (math.nan, math.nan)
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c (1.0 when b + c = 0)."""
    if b + c == 0:
        return 1.0
    return float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)


def paired_counts(base: Mapping[str, bool], other: Mapping[str, bool]) -> dict[str, int]:
    """Counts over shared ids: both right, only base right (b), only other right (c), both wrong."""
    shared = sorted(set(base) & set(other))
    out = Counter()
    for pid in shared:
        out[(bool(base[pid]), bool(other[pid]))] += 1
    return {
        "n": len(shared),
        "both": out[(True, True)],
        "only_base": out[(True, False)],
        "only_other": out[(False, True)],
        "neither": out[(False, False)],
    }


def tradeoff_scores(
    accuracy: Mapping[str, float], seconds: Mapping[str, float], base: str = "cot"
) -> dict[str, dict[str, float | None]]:
    """The ALS paper's trade-off score (its Eq. 1) of each method of one setting, with its %
    change against `base`: (accuracy in % + (100 - normalised time)) / 2, where the normalised
    time is 100 x seconds per problem / that of the slowest method of the setting. Methods
    compared so must be timed like for like (the score moves with time as much as with
    accuracy). A method without a finite time or accuracy gets None."""
    finite = [s for s in seconds.values() if math.isfinite(s) and s > 0]
    slowest = max(finite) if finite else math.nan
    scores: dict[str, float | None] = {}
    for name, acc in accuracy.items():
        t = seconds.get(name, math.nan)
        ok = math.isfinite(acc) and math.isfinite(t) and math.isfinite(slowest)
        scores[name] = (100 * acc + 100 - 100 * t / slowest) / 2 if ok else None
    ref = scores.get(base)
    return {
        name: {
            "tradeoff": score,
            "tradeoff_change_vs_cot": (
                None if score is None or not ref else 100 * (score - ref) / ref
            ),
        }
        for name, score in scores.items()
    }


def repetition_rate(tokens: Sequence[int], n: int = 4) -> float:
    """Share of the n-grams of a sequence that repeat an earlier n-gram (0: none; loops -> 1)."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)
