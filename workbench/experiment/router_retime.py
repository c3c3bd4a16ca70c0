"""Like-for-like seconds for the router's table: CoT and the sampled chains decoded again, one
right after the other in one process, on the test split's first problems.

The run's CoT rows and the test split's sampled chains were decoded at different times, in
different batches, beside other work, so their seconds do not compare, and the trade-off score
weighs time as much as accuracy. `router_retime` decodes the run's greedy CoT on its first `n`
test problems, then the k sampled chains of the same problems (the same seeds), checks that both
reproduce the committed tokens, and writes each method's seconds per generated token
(``router/retimed.json``). `token_rates` turns that into a rate per row source; the router table
multiplies each chosen row's generated tokens by its source's rate (`retimed_seconds`). An ALS arm
takes CoT's rate times its seconds-per-token ratio to CoT in the run's own ``retimed.json`` (its
arms decoded together with CoT), when the run has one; otherwise it has no re-timed seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.core.artifacts import read_json, write_json
from workbench.errors import WorkbenchError
from workbench.experiment.rundir import RunDir, SamplesDir
from workbench.methods.baselines import SCConfig
from workbench.methods.cot import run_cot
from workbench.methods.sampling import run_samples

__all__ = ["retimed_path", "retimed_seconds", "router_retime", "row_seconds", "token_rates"]

logger = logging.getLogger(__name__)


def retimed_path(test_samples: SamplesDir) -> Path:
    """Where `router_retime` writes (beside the router's table)."""
    return test_samples.router_table_path.with_name("retimed.json")


def _timed(decode: Any, saved: Mapping[str, list[int]]) -> dict[str, Any]:
    """Wall time and tokens of one decode, and how many of its rows equal `saved` (id -> tokens)."""
    start = time.perf_counter()
    rows = decode()
    wall = time.perf_counter() - start
    tokens = sum(r["generated_tokens"] for r in rows)
    same = sum(saved.get(r["id"]) == r["tokens"] for r in rows)
    if same < len(rows):
        logger.warning("%d of %d re-decoded generations differ", len(rows) - same, len(rows))
    return {
        "rows": len(rows),
        "wall_seconds": round(wall, 3),
        "generated_tokens": tokens,
        "seconds_per_token": wall / max(tokens, 1),
        "identical_to_committed": same,
    }


def router_retime(
    bridge: Any,
    run: str | Path | RunDir,
    test_samples: str | Path | SamplesDir,
    n: int,
    *,
    data_dir=None,
) -> dict[str, Any]:
    """Decode the run's CoT, then the sampled chains, of its first `n` test problems, in this
    process; write and return their seconds per token (`retimed_path`)."""
    run = RunDir.of(run).require_finished()
    test_samples = SamplesDir.of_samples(test_samples)
    problems = run.problems("test", data_dir=data_dir)
    if not 1 <= n <= len(problems):
        raise WorkbenchError(f"router retime n must lie in 1..{len(problems)}, not {n}")
    sub = problems[:n]
    sampling = SCConfig(**test_samples.settings()["sampling"])
    generation, prompt = run.generation(), run.prompt()
    cot_saved = {r["id"]: r["tokens"] for r in run.rows("test", "cot")}
    sample_saved = {r["id"]: r["tokens"] for r in test_samples.sample_rows()}
    cot = _timed(
        lambda: run_cot(bridge, sub, generation=generation, prompt=prompt, progress=False),
        cot_saved,
    )
    sc = _timed(
        lambda: run_samples(
            bridge, sub, sampling, generation=generation, prompt=prompt, progress=False
        ),
        sample_saved,
    )
    result = {
        "n": n,
        "problems": [p.id for p in sub],
        "batch_size": generation.batch_size,
        "order": "CoT, then the sampled chains, one right after the other in one process",
        "cot": cot,
        "sample": {**sc, "k": sampling.k},
    }
    write_json(retimed_path(test_samples), result)
    return result


def token_rates(test_samples: SamplesDir, run: RunDir) -> dict[str, float] | None:
    """Seconds per generated token by row source (``cot``, ``sc``, and each ALS arm the run
    re-timed beside CoT); None when `router_retime` has not run."""
    path = retimed_path(test_samples)
    if not path.exists():
        return None
    timed = read_json(path)
    rates = {"cot": timed["cot"]["seconds_per_token"], "sc": timed["sample"]["seconds_per_token"]}
    if run.retimed_path.exists():
        arms = {a["method"]: a for a in read_json(run.retimed_path)["arms"]}
        base = arms.get("cot")
        for name, arm in arms.items():
            if name != "cot" and base and arm["tokens_per_problem"] and base["tokens_per_problem"]:
                ratio = (arm["seconds_per_problem"] / arm["tokens_per_problem"]) / (
                    base["seconds_per_problem"] / base["tokens_per_problem"]
                )
                rates[name] = rates["cot"] * ratio
    return rates


def _source(row: Mapping[str, Any]) -> str:
    method = str(row.get("routed_to", row["method"]))
    return "sc" if method.startswith("sc@") else method


def row_seconds(row: Mapping[str, Any], rates: Mapping[str, float] | None) -> float | None:
    """One row's seconds: its generated tokens at its source's re-timed rate (None when the
    source has none), or its own decode's seconds without `rates`."""
    if rates is None:
        return float(row["seconds"])
    rate = rates.get(_source(row))
    return None if rate is None else row["generated_tokens"] * rate


def retimed_seconds(rows: Sequence[Mapping[str, Any]], rates: Mapping[str, float]) -> float | None:
    """Seconds per problem of `rows` at the re-timed rates: each row's generated tokens times
    its source's rate; None when a source has no rate."""
    seconds = [row_seconds(r, rates) for r in rows]
    return None if None in seconds else sum(seconds) / len(rows)
