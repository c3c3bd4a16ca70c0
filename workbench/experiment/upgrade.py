"""Convert a run folder written before als-workbench 0.2 to the current record names.

0.2 summarises every method through `workbench.core.records.summarize`, so the summaries in a run
folder's JSON files use one set of names. Older folders used four: this renames them in place
(``gen_tokens`` and ``mean_generated_tokens`` -> ``tokens_per_problem``, ``sec_per_problem`` ->
``seconds_per_problem``, ``only_cot`` / ``only_als`` -> ``only_base`` / ``only_method``,
``mcnemar_p_vs_cot`` -> ``mcnemar_p`` with ``base: "cot"``). The graded JSONL rows did not change.
`als upgrade RUN` runs it; a second run changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.artifacts import read_json, write_json
from workbench.experiment.rundir import RunDir

__all__ = ["RENAMED", "upgrade_run"]

RENAMED = {
    "gen_tokens": "tokens_per_problem",
    "mean_generated_tokens": "tokens_per_problem",
    "sec_per_problem": "seconds_per_problem",
    "only_cot": "only_base",
    "only_als": "only_method",
    "mcnemar_p_vs_cot": "mcnemar_p",
}


def _renamed(value: Any) -> Any:
    if isinstance(value, list):
        return [_renamed(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {RENAMED.get(k, k): _renamed(v) for k, v in value.items()}
    paired = value.get("only_cot") is not None or "mcnemar_p_vs_cot" in value
    if paired and "base" not in value:
        out["base"] = "cot"
    return out


def upgrade_run(run: str | Path | RunDir) -> list[Path]:
    """Rename the old summary fields in the run folder's JSON files; return the files changed."""
    run = RunDir.of(run)
    changed = []
    for path in (
        run.results_path,
        run.selection_path,
        run.summary_path,
        run.compare_table_path,
        run.sweep_selection_path,
    ):
        if not path.exists():
            continue
        old = read_json(path)
        new = _renamed(old)
        if new != old:
            write_json(path, new)
            changed.append(path)
    return changed
