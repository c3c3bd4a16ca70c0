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

import logging
import time
from typing import Any

from workbench.core.artifacts import read_rows, write_json
from workbench.core.evaluation import tradeoff_scores
from workbench.core.records import summarize
from workbench.errors import WorkbenchError
from workbench.experiment.pipeline import ALSRunConfig, selection_plan, test_arms
from workbench.experiment.rundir import RunDir
from workbench.methods.cot import run_arms

__all__ = ["retime_stage"]

logger = logging.getLogger(__name__)


def retime_stage(
    bridge: Any, run: RunDir, cfg: ALSRunConfig, n: int, *, data_dir: str | None = None
) -> dict[str, Any]:
    """Decode every test arm of the finished `run` together on its first `n` test problems
    (rows in `test-retimed/`, resumable) and write `retimed.json`: per arm, seconds and tokens
    per problem, the paper's trade-off score on these problems, and how many generations equal
    the run's own test rows token for token."""
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
    scores = tradeoff_scores(
        {name: s.accuracy for name, s in summaries.items()},
        {name: s.seconds_per_problem for name, s in summaries.items()},
    )
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
                **scores[name],
                "identical_to_run": same,
            }
        )
    result = {
        "n": n,
        "problems": [p.id for p in problems[:n]],
        "batch_size": run.generation().batch_size,
        "one_decode_call": len(calls) == 1,
        "wall_seconds_this_call": round(wall, 1),
        "arms": table,
    }
    write_json(run.retimed_path, result)
    return result
