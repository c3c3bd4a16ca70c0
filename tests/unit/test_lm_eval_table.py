"""lm-eval prints its results with pytablewriter: with the 2019 release (0.38.0) that a lock once
held, lm-eval 0.4.13's `make_table` set its headers through a setter that release lacks, and the
table came out under `A | B | C | ...`. The lock now holds pytablewriter >= 1.2 (pyproject.toml)."""

from __future__ import annotations

import importlib

from lm_eval.utils import make_table


def test_make_table_prints_lm_eval_headers() -> None:
    results = {
        "results": {
            "gsm8k_local": {
                "alias": "gsm8k_local",
                "exact_match,strict-match": 0.25,
                "exact_match_stderr,strict-match": 0.1637,
            }
        },
        "versions": {"gsm8k_local": 3.0},
        "n-shot": {"gsm8k_local": 0},
        "higher_is_better": {"gsm8k_local": {"exact_match": True}},
    }
    table = make_table(results)
    header = table.splitlines()[0]
    for name in ("Tasks", "Version", "Filter", "n-shot", "Metric", "Value", "Stderr"):
        assert name in header, table
    assert "| A " not in header, table
    assert (
        "gsm8k_local" in table and "0.25" in table and "0.1637" in table and "strict-match" in table
    ), table


def test_lmeval_module_registers_als() -> None:
    module = importlib.import_module("workbench.interop.lmeval")
    from lm_eval.api.registry import get_model

    assert get_model("als") is module.ALSLM
