"""Datasets for the lm-eval tasks in this folder that are not files (lm-eval `custom_dataset`)."""

from __future__ import annotations

from typing import Any


def toy_test(**_: Any):
    """The toy test split as a `datasets.DatasetDict` with question / answer ("#### N")."""
    import datasets

    from workbench.sources.toy import toy_problems

    rows = [{"question": p.question, "answer": f"#### {p.answer}"} for p in toy_problems("test")]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
