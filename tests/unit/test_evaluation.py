"""Statistics: Wilson intervals and exact McNemar against known values."""

from __future__ import annotations

import math

import pytest

from workbench.core.evaluation import mcnemar_exact, paired_counts, wilson_interval


def test_wilson_known_values():
    lo, hi = wilson_interval(10, 40)  # textbook value: [0.1419, 0.4019]
    assert lo == pytest.approx(0.1419, abs=1e-4) and hi == pytest.approx(0.4019, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_mcnemar_exact():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    # b=1, c=9: two-sided binomial tail 2 * (1 + 10) / 2**10
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)


def test_paired_counts_use_shared_ids_only():
    base = {"a": True, "b": True, "c": False, "d": False}
    other = {"a": True, "b": False, "c": True, "e": True}
    assert paired_counts(base, other) == {
        "n": 3,
        "both": 1,
        "only_base": 1,
        "only_other": 1,
        "neither": 0,
    }
