"""Statistics of graded runs: accuracy with Wilson intervals, exact McNemar tests, cost summaries.

Pure Python/NumPy on tidy rows (one dict per problem); no model code here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest, bootstrap

from workbench.errors import WorkbenchError

__all__ = [
    "ITERATIVE_METHODS",
    "TimeNormaliser",
    "is_iterative",
    "iterative_normaliser",
    "mcnemar_exact",
    "paired_counts",
    "repetition_rate",
    "tradeoff_fields",
    "tradeoff_gap",
    "tradeoff_scores",
    "wilson_interval",
    "with_tradeoff_fields",
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


ITERATIVE_METHODS = ("sc", "latentseek")
"""The iterative test-time methods whose time sets the paper's normaliser: Self-Consistency (a
method named `sc` or `sc@k`) and LatentSeek (`latentseek`, `latentseek-self`, ...)."""


def is_iterative(method: str) -> bool:
    """Whether `method` names Self-Consistency or LatentSeek (see `ITERATIVE_METHODS`)."""
    name = method.lower()
    return name in ITERATIVE_METHODS or name.startswith(("sc@", "latentseek-"))


@dataclass(frozen=True)
class TimeNormaliser:
    """The time that the trade-off score (the paper's Eq. 1) scales to 100: the seconds per
    problem of `method`, timed together with the methods scored."""

    method: str
    """The method whose time sets the scale (the paper's: the slowest of its block, in practice
    Self-Consistency or LatentSeek)."""
    seconds: float
    """Its seconds per problem."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise WorkbenchError(f"a time normaliser needs seconds > 0, not {self.seconds}")

    @property
    def iterative(self) -> bool:
        """Whether an iterative method (SC, LatentSeek) sets it, as in the paper's Table 1."""
        return is_iterative(self.method)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "seconds": self.seconds, "iterative": self.iterative}


def iterative_normaliser(seconds: Mapping[str, float]) -> TimeNormaliser | None:
    """The paper's normaliser among methods timed together: the slowest iterative method (SC,
    LatentSeek) of `seconds`; None where none of them is iterative (no score can then be given:
    see `tradeoff_scores`)."""
    timed = {
        name: t
        for name, t in seconds.items()
        if is_iterative(name) and t is not None and math.isfinite(t) and t > 0
    }
    if not timed:
        return None
    name = max(timed, key=timed.__getitem__)
    return TimeNormaliser(name, timed[name])


def tradeoff_scores(
    accuracy: Mapping[str, float],
    seconds: Mapping[str, float],
    *,
    normaliser: TimeNormaliser | None,
    base: str = "cot",
) -> dict[str, Any]:
    """The ALS paper's trade-off score (its Eq. 1) of each method of one setting, with its %
    change against `base`, under an explicit time normaliser:

        score = (accuracy in % + (100 - normalised time)) / 2,
        normalised time = 100 x seconds per problem / normaliser.seconds.

    The score moves with the normaliser as much as with accuracy: with a normaliser near CoT's
    time a method that is faster than CoT gains a large % at lower accuracy; with the normaliser
    several times CoT's (as an SC or LatentSeek arm sets it) the same rows give a small one. So
    the normaliser is given, not found: the paper's is the slowest iterative method timed with
    the others (`iterative_normaliser`). With `normaliser` None every score is None (n/a).
    Methods compared so must be timed like for like; a method without a finite time or accuracy
    gets None.

    Returns {"normaliser": `TimeNormaliser.to_json()` or None, "scores": {method: {"tradeoff",
    "tradeoff_change_vs_cot"}}} (the change in %, None where `base`'s score is missing or 0)."""
    scores: dict[str, float | None] = {}
    for name, acc in accuracy.items():
        t = seconds.get(name, math.nan)
        ok = normaliser is not None and t is not None and math.isfinite(acc) and math.isfinite(t)
        scores[name] = (100 * acc + 100 - 100 * t / normaliser.seconds) / 2 if ok else None
    ref = scores.get(base)
    return {
        "normaliser": None if normaliser is None else normaliser.to_json(),
        "scores": {
            name: {
                "tradeoff": score,
                "tradeoff_change_vs_cot": (
                    None if score is None or not ref else 100 * (score - ref) / ref
                ),
            }
            for name, score in scores.items()
        },
    }


def tradeoff_fields(result: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The fields a table row carries for `method` from a `tradeoff_scores` result: the score,
    its % change against CoT, and the normaliser's method and seconds (all None without one)."""
    blank = {"tradeoff": None, "tradeoff_change_vs_cot": None}
    norm = result["normaliser"] or {}
    return {
        **result["scores"].get(method, blank),
        "tradeoff_normaliser": norm.get("method"),
        "tradeoff_normaliser_seconds": norm.get("seconds"),
    }


def _gap(ca, sa, cb, sb, sn, axis=-1):
    """Eq. 1's score of a minus that of b: 50 (acc_a - acc_b) - 50 (t_a - t_b) / t_norm."""
    acc = np.mean(ca, axis=axis) - np.mean(cb, axis=axis)
    time = (np.mean(sa, axis=axis) - np.mean(sb, axis=axis)) / np.mean(sn, axis=axis)
    return 50 * acc - 50 * time


def tradeoff_gap(
    correct_a: Sequence[bool],
    seconds_a: Sequence[float],
    correct_b: Sequence[bool],
    seconds_b: Sequence[float],
    seconds_norm: Sequence[float],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """The trade-off score (`tradeoff_scores`) of method a minus that of method b on the same
    problems (the arrays aligned by problem), time normalised by the mean of `seconds_norm`
    (the normalising method's seconds per problem), with a percentile 95% interval from
    resampling problems (scipy's paired bootstrap; the normaliser is resampled too)."""
    data = tuple(np.asarray(x, float) for x in (correct_a, seconds_a, correct_b, seconds_b))
    data += (np.asarray(seconds_norm, float),)
    if len({len(x) for x in data}) != 1 or len(data[0]) < 2:
        raise WorkbenchError("tradeoff_gap needs the same problems (at least 2) for every array")
    point = float(_gap(*data))
    res = bootstrap(
        data,
        _gap,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return {"value": point, "ci_low": float(ci.low), "ci_high": float(ci.high)}


def repetition_rate(tokens: Sequence[int], n: int = 4) -> float:
    """Share of the n-grams of a sequence that repeat an earlier n-gram (0: none; loops -> 1)."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def with_tradeoff_fields(
    rows: Sequence[Mapping[str, Any]], *, timed: set[str] | None = None
) -> list[dict[str, Any]]:
    """Summary rows (``method``, ``accuracy``, ``seconds_per_problem``) with `tradeoff_fields`:
    the rows whose method is in `timed` (all when None: rows timed like for like) enter the
    score, normalised by the slowest iterative method among them (`iterative_normaliser`);
    every row gets the normaliser's fields."""
    scored = [r for r in rows if timed is None or r["method"] in timed]
    seconds = {r["method"]: r["seconds_per_problem"] for r in scored}
    result = tradeoff_scores(
        {r["method"]: r["accuracy"] for r in scored},
        seconds,
        normaliser=iterative_normaliser(seconds),
    )
    return [{**r, **tradeoff_fields(result, r["method"])} for r in rows]
