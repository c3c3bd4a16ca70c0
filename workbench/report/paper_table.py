"""A table shaped like the ALS paper's Table 1, from finished runs, beside the paper's numbers.

One row per (dataset, prompt, method) of every finished run: accuracy with its Wilson interval,
seconds per problem, the paper's trade-off score (its Eq. 1) and its % change against CoT, the exact
McNemar p against CoT, and for the P2 prompt the share of valid JSON outputs. Time is quoted only
like for like: from the run's `retimed.json` (every arm decoded again together on the first test
problems, `workbench.experiment.retime`) where there is one, else from the test rows when the arm
was decoded in one batch with CoT (`timed_with_cot`); otherwise the seconds are marked and no
trade-off is given. The paper's own accuracy and trade-off (Qwen-2.5-7B-Instruct and
Llama-3.1-8B-Instruct, their hardware) stand beside the rows they correspond to, labelled as theirs.

Our trade-off normalises time by the slowest arm of our setting; the paper's by the slowest of CoT,
Self-Consistency, LatentSeek and ALS (in practice SC or LatentSeek, several times slower than CoT),
so the two scales differ: compare the % changes against CoT, not the scores.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workbench.core.artifacts import read_json
from workbench.core.evaluation import tradeoff_scores
from workbench.experiment.rundir import RunDir

__all__ = ["PAPER_MODELS", "load_paper_numbers", "paper_rows", "paper_table", "render_markdown"]

PAPER_MODELS = ("Qwen-2.5-7B-Instruct", "Llama-3.1-8B-Instruct")

_DATASETS = {"gsm8k": "GSM8K", "math": "MATH-500", "toy": "toy sums"}
_PROMPTS = {"p1": "P1", "p2": "P2", "workbench": "ours (P1's instruction in the user turn)"}
_METHODS = {
    "cot": ("CoT (greedy)", "CoT"),
    "als": ("ALS, ours (selected on validation)", None),
    "als-reference": ("ALS, the authors' configuration (tau 0.1, alpha on validation)", "ALS"),
    "als-reference-always": ("ALS, the authors' update always on (alpha 0.3)", None),
    "als-gated": ("ALS-Gated (the authors' configuration + JSON gate)", "ALS-Gated"),
    "random-control": ("random direction, our setting", None),
}
"""Our arm -> (its label, the paper's method it corresponds to)."""


def _setting(run: RunDir) -> tuple[str, str, str]:
    """(dataset, prompt, the paper's prompt it stands for) of a run."""
    settings = run.settings()
    dataset = _DATASETS.get(settings["als"]["dataset"], settings["als"]["dataset"])
    fmt = settings.get("prompt", {}).get("format", "workbench")
    return dataset, _PROMPTS.get(fmt, fmt), "P2" if fmt == "p2" else "P1"


def _times(run: RunDir, test: list[dict]) -> tuple[dict[str, float], dict[str, str]]:
    """Like-for-like seconds per problem of each arm, and how each was timed."""
    if run.retimed_path.exists():
        retimed = read_json(run.retimed_path)
        how = f"re-timed together, first {retimed['n']} problems"
        arms = {a["method"]: a["seconds_per_problem"] for a in retimed["arms"]}
        return arms, {name: how for name in arms}
    seconds, how = {}, {}
    for row in test:
        timed = row.get("timed_with_cot", "unknown")
        if timed in ("is cot", "together"):
            seconds[row["method"]] = row["seconds_per_problem"]
            how[row["method"]] = "decoded in one batch with CoT"
        else:
            how[row["method"]] = f"not like for like ({timed})"
    if len(seconds) < 2:  # CoT alone: nothing to compare its time with
        return {}, {name: "not like for like (no arm timed with CoT)" for name in how}
    return seconds, how


def _paper_lookup(paper: Mapping[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["dataset"], r["prompt"], r["method"]): r for r in paper["rows"]}


def paper_rows(run: RunDir, paper: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table's rows for one finished run (see the module docstring)."""
    results = read_json(run.results_path)
    test = results["test"]
    dataset, prompt, paper_prompt = _setting(run)
    seconds, how = _times(run, test)
    timed = {r["method"]: r["accuracy"] for r in test if r["method"] in seconds}
    scores = tradeoff_scores(timed, seconds)
    theirs = _paper_lookup(paper)
    rows = []
    for r in test:
        label, paper_method = _METHODS.get(r["method"], (r["method"], None))
        ref = theirs.get((dataset, paper_prompt, paper_method)) if paper_method else None
        score = scores.get(r["method"], {"tradeoff": None, "tradeoff_change_vs_cot": None})
        rows.append(
            {
                "run": run.root.name,
                "dataset": dataset,
                "prompt": prompt,
                "method": r["method"],
                "label": label,
                "n": r["n"],
                "correct": r["correct"],
                "accuracy": r["accuracy"],
                "ci": (r["ci_low"], r["ci_high"]),
                "seconds": seconds.get(r["method"]),
                "timed": how.get(r["method"], "not like for like"),
                "tradeoff": score["tradeoff"],
                "tradeoff_change_vs_cot": score["tradeoff_change_vs_cot"],
                "mcnemar_p": r.get("mcnemar_p"),
                "json_valid": r.get("json_valid"),
                "json_whole": r.get("json_whole"),
                "correct_whole": r.get("correct_whole"),
                "intervention_rate": r["intervention_rate"],
                "paper": {m: (ref or {}).get(m) for m in PAPER_MODELS},
            }
        )
    return rows


def paper_table(folders: Iterable[str | Path], paper: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of every finished run among `folders` (unfinished ones are left out)."""
    rows = []
    for folder in folders:
        run = RunDir.of(folder)
        if run.results_path.exists() and run.settings_path.exists():
            rows += paper_rows(run, paper)
    return rows


def _num(value: float | None, fmt: str) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt % value


def _paper_cell(cell: list[float] | None) -> str:
    return "" if cell is None else f"{cell[0]:.1f} / {cell[2]:.1f}"


def _json_cell(row: Mapping[str, Any]) -> str:
    """Valid P2 outputs of n; then how many were nothing but the object (the authors' MATH-500
    reading) and how many of those were right (runs from before it was counted show the first)."""
    if row["json_valid"] is None:
        return ""
    cell = f"{row['json_valid']}/{row['n']}"
    if row.get("json_whole") is not None:
        cell += f"; whole {row['json_whole']}, right {row['correct_whole']}"
    return cell


def render_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as one Markdown table (accuracy in %, as the paper prints it)."""
    head = (
        "| dataset | prompt | method | n | accuracy % [95% CI] | s / problem | timed | trade-off "
        "| vs CoT | McNemar p | valid JSON (whole output; right) | "
        + " | ".join(f"{m} (theirs): acc / trade-off" for m in PAPER_MODELS)
        + " |"
    )
    lines = [head, "|" + "---|" * (11 + len(PAPER_MODELS))]
    for r in rows:
        lo, hi = r["ci"]
        change = r["tradeoff_change_vs_cot"]
        cells = [
            r["dataset"],
            r["prompt"],
            r["label"],
            str(r["n"]),
            f"{100 * r['accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]",
            _num(r["seconds"], "%.2f"),
            r["timed"],
            _num(r["tradeoff"], "%.1f"),
            "" if change is None or r["method"] == "cot" else f"{change:+.1f}%",
            _num(r["mcnemar_p"], "%.2g"),
            _json_cell(r),
            *(_paper_cell(r["paper"][m]) for m in PAPER_MODELS),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def load_paper_numbers(path: str | Path) -> dict[str, Any]:
    """The paper's Table 1 as committed (`analyses/data/als_paper_table1.json`)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
