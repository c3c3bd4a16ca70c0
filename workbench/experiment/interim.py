"""A test split still decoding, read without touching it: every arm on the problems all arms have
finished.

A long test stage (MATH-500 at 1,024 tokens: hours on a CPU) writes its rows as they finish, in
decoding order: the batch takes the longest prompts first, and a short chain ends sooner. Comparing
arms on their own finished rows would compare different problems; `interim_test` restricts every arm
to the problems that all of them have finished, pairs each with the base arm there (fixed, broken,
exact McNemar), and counts the rows that are the base's generation token for token. The common
problems are still not a random sample of the split, so these numbers describe the rows so far, not
the split: the final table comes from the finished run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.artifacts import read_json, read_jsonl
from workbench.core.records import MethodSummary, summarize
from workbench.errors import WorkbenchError
from workbench.experiment.rundir import RunDir

__all__ = ["InterimArm", "InterimTest", "finished_together", "interim_test", "split_tables"]

Row = Mapping[str, Any]


@dataclass(frozen=True)
class InterimArm:
    """One test arm on the problems every arm has finished."""

    summary: MethodSummary
    """Accuracy, CI, tokens, intervention rate, and the pairing with the base arm."""
    identical_to_base: int
    """Rows whose generated tokens equal the base arm's on the same problem."""
    at_cap: int
    """Rows that stopped at the token cap (finish 'length')."""


@dataclass(frozen=True)
class InterimTest:
    """Where a test split stands."""

    n_split: int
    """Problems in the test split."""
    finished: dict[str, int]
    """Rows finished so far, per arm."""
    n_common: int
    """Problems every arm has finished (the rows compared)."""
    arms: list[InterimArm]
    """Per arm, the base arm first."""


def finished_together(tables: Mapping[str, Sequence[Row]]) -> dict[str, list[Row]]:
    """Each table's rows restricted to the problem ids present in every table, in the order of
    the first table."""
    if not tables:
        return {}
    common = set.intersection(*({r["id"] for r in rows} for rows in tables.values()))
    return {name: [r for r in rows if r["id"] in common] for name, rows in tables.items()}


def split_tables(run: str | Path | RunDir, split: str = "test") -> dict[str, list[Row]]:
    """Every arm's finished rows in one split of `run` (plain or gzipped; a line being written
    is left out), by arm name."""
    run = RunDir.of(run)
    folder = run.root / split
    names = sorted(
        {p.name.removesuffix(".gz").removesuffix(".jsonl") for p in folder.glob("*.jsonl*")}
    )
    return {name: read_jsonl(run.rows_path(split, name), repair=False) for name in names}


def _split_size(run: RunDir) -> int:
    path = run.split_path("test")
    if not path.exists():
        raise WorkbenchError(
            f"{run.root} has no test split yet ({path.name}): run its splits first"
        )
    return int(read_json(path)["n"])


def interim_test(run: str | Path | RunDir, *, base: str = "cot") -> InterimTest:
    """Summarise `run`'s test arms so far on the problems all of them have finished."""
    run = RunDir.of(run)
    tables = split_tables(run)
    if base not in tables:
        raise WorkbenchError(
            f"{run.root / 'test'} has no {base} rows (arms there: {', '.join(tables) or 'none'})"
        )
    tables = {base: tables.pop(base), **tables}
    together = finished_together(tables)
    base_tokens = {r["id"]: r.get("tokens") for r in together[base]}
    arms = []
    for name, rows in together.items():
        summary = summarize(rows, method=name, base=None if name == base else together[base])
        same = sum(
            r.get("tokens") is not None and r["tokens"] == base_tokens[r["id"]] for r in rows
        )
        capped = sum(r["finish"] == "length" for r in rows)
        arms.append(InterimArm(summary, same, capped))
    return InterimTest(
        n_split=_split_size(run),
        finished={name: len(rows) for name, rows in tables.items()},
        n_common=len(together[base]),
        arms=arms,
    )
