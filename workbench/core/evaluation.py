"""Statistics of graded runs: accuracy with Wilson intervals, exact McNemar tests, cost summaries.

Pure Python/NumPy on tidy rows (one dict per problem); no model code here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from scipy.stats import binomtest

__all__ = ["mcnemar_exact", "paired_counts", "repetition_rate", "wilson_interval"]


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


def repetition_rate(tokens: Sequence[int], n: int = 4) -> float:
    """Share of the n-grams of a sequence that repeat an earlier n-gram (0: none; loops -> 1)."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)
