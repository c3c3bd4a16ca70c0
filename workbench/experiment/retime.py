"""Like-for-like time: every test arm of a finished run decoded again, together, on its first
problems.

A row's seconds are its share of the forward passes it took part in, so they compare across arms
only when the arms decoded in one continuous batch, in one process, on the same machine. A run
whose arms were decoded at different times (resumed across sessions, an arm added later, the
machine shared) has test seconds that do not compare; the trade-off score, which weighs time as
much as accuracy, then means nothing. `retime_stage` decodes every test arm again in one batch on
the first `n` test problems, checks that greedy decoding reproduced the run's own tokens, and
writes the seconds per problem of each arm (`retimed.json`): the time that tables quote.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from workbench.core.artifacts import read_json, read_rows, write_json
from workbench.core.evaluation import with_tradeoff_fields
from workbench.core.records import summarize
from workbench.errors import WorkbenchError
from workbench.experiment.pipeline import (
    ALSRunConfig,
    selection_plan,
    test_arms,
    tradeoff_fields_of,
)
from workbench.experiment.publish import MANIFEST
from workbench.experiment.rundir import RunDir
from workbench.methods.cot import run_arms

__all__ = ["restate_tradeoff", "retime_stage", "retimed_tradeoff"]

logger = logging.getLogger(__name__)


def retime_stage(
    bridge: Any, run: RunDir, cfg: ALSRunConfig, n: int, *, data_dir: str | None = None
) -> dict[str, Any]:
    """Decode every test arm of the finished `run` together on its first `n` test problems
    (rows in `test-retimed/`, resumable) and write `retimed.json`: per arm, accuracy, seconds
    and tokens per problem on these problems, and how many generations equal the run's own test
    rows token for token, with the trade-off fields (`retimed_tradeoff`), which are None while
    the arms hold no iterative method, as a run's test arms do not."""
    run.require_finished()
    problems = run.problems("test", data_dir=data_dir)
    if not 1 <= n <= len(problems):
        raise WorkbenchError(f"retime n must lie in 1..{len(problems)}, not {n}")
    arms = test_arms(run, cfg, selection_plan(bridge, run, cfg, data_dir=data_dir))
    outs = {name: run.root / "test-retimed" / f"{name}.jsonl" for name in arms}
    start = time.perf_counter()
    rows = run_arms(
        bridge,
        problems[:n],
        arms,
        outs=outs,
        generation=run.generation(),
        prompt=run.prompt(),
    )
    wall = time.perf_counter() - start
    summaries = {name: summarize(arm_rows, method=name) for name, arm_rows in rows.items()}
    calls = {r.get("decode_call") for arm_rows in rows.values() for r in arm_rows}
    table = []
    for name, arm_rows in rows.items():
        saved = {r["id"]: r["tokens"] for r in read_rows(run.rows_path("test", name))}
        same = sum(saved.get(r["id"]) == r["tokens"] for r in arm_rows)
        if same < len(arm_rows):
            logger.warning(
                "%s: %d of %d re-decoded generations differ from the run's",
                name,
                len(arm_rows) - same,
                len(arm_rows),
            )
        s = summaries[name]
        table.append(
            {
                "method": name,
                "n": s.n,
                "accuracy": s.accuracy,
                "seconds_per_problem": s.seconds_per_problem,
                "tokens_per_problem": s.tokens_per_problem,
                "identical_to_run": same,
            }
        )
    result = {
        "n": n,
        "problems": [p.id for p in problems[:n]],
        "batch_size": run.generation().batch_size,
        "one_decode_call": len(calls) == 1,
        "wall_seconds_this_call": round(wall, 1),
        "arms": retimed_tradeoff(table),
    }
    write_json(run.retimed_path, result)
    return result


def retimed_tradeoff(arms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Re-timed arms with the trade-off fields by the one definition (`tradeoff_fields_of` in
    `workbench.experiment.pipeline`): accuracy and seconds on the re-timed problems, time
    normalised by the slowest iterative method among them, so None while none is iterative."""
    return with_tradeoff_fields(arms)


def restate_tradeoff(run: str | Path | RunDir) -> list[str]:
    """Rewrite the trade-off fields of a finished run's `results.json` and `retimed.json` by the
    one definition, from the accuracies and seconds they hold (nothing is decoded, no model is
    loaded), and, in a published copy, their entries in `MANIFEST.json`. Files from before
    2026-12-07 carry scores whose time was normalised by the slowest arm of the file (CoT or a
    steered arm), so that `results.json`, `retimed.json` and the paper table gave three
    different % changes for one arm; after this they carry None where no iterative method was
    timed, with the normaliser named. Returns the files rewritten."""
    run = RunDir.of(run)
    done = []
    if run.results_path.exists():
        results = read_json(run.results_path)
        results["test"] = tradeoff_fields_of(results["test"])
        write_json(run.results_path, results)
        done.append(run.results_path.name)
    if run.retimed_path.exists():
        retimed = read_json(run.retimed_path)
        retimed["arms"] = retimed_tradeoff(retimed["arms"])
        write_json(run.retimed_path, retimed)
        done.append(run.retimed_path.name)
    manifest = run.root / MANIFEST
    if manifest.exists():
        listed = read_json(manifest)
        for name in done:
            if name in listed["files"]:
                data = (run.root / name).read_bytes()
                listed["files"][name] = {
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
        write_json(manifest, listed)
    return done
