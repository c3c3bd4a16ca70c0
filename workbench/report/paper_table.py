"""A table shaped like the ALS paper's Table 1, from finished runs, beside the paper's numbers.

One row per (dataset, prompt, method) of every finished run: accuracy with its Wilson interval and
its change against CoT in points with the exact McNemar p, seconds per problem and their ratio to
CoT's, the paper's trade-off score (its Eq. 1) with its % change against CoT and the time
normaliser it used, and for the P2 prompt the share of valid JSON outputs. Time is quoted only like
for like: from the run's `retimed.json` (every arm decoded again together on the first test
problems, `workbench.experiment.retime`) where there is one, else from the test rows when the arm
was decoded in one batch with CoT (`timed_with_cot`); otherwise the seconds are marked. The
paper's own accuracy and trade-off (Qwen-2.5-7B-Instruct and Llama-3.1-8B-Instruct, their
hardware) stand beside the rows they correspond to, labelled as theirs.

The trade-off score normalises time by one method's time, and its % change against CoT moves with
that normaliser as much as with accuracy (`workbench.core.evaluation.tradeoff_scores`). The paper's
normaliser is the slowest of its block, in practice Self-Consistency or LatentSeek. So the score is
given with its normaliser stated, and only where a setting holds an iterative method (SC,
LatentSeek) timed together with the others: a re-timing (`retimed.json`) that decoded one, else
`als compare` (`compare/table.json`, written with the normaliser), else the router table of a
folder of the run's sampled test chains (`als route --retime N`: CoT and SC@k re-timed together,
every row charged its tokens at its method's rate, the ALS arms at CoT's rate times their ratio in
the run's re-timing; accuracy on the whole test split). There accuracy and seconds are
both taken on the problems every method of that record decoded (its n is stated), and that is the
one % change per arm; elsewhere the score reads "n/a" and the accuracy change and time ratio are
what the table shows. `results.json` and `retimed.json` carry no score of their own unless they
hold an iterative method (the same definition, so the same number).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from workbench.core.artifacts import read_json
from workbench.core.evaluation import (
    TimeNormaliser,
    is_iterative,
    iterative_normaliser,
    tradeoff_scores,
    wilson_interval,
)
from workbench.experiment.router_retime import retimed_path
from workbench.experiment.rundir import RunDir, SamplesDir

__all__ = [
    "PAPER_MODELS",
    "load_paper_numbers",
    "paper_recomputed",
    "paper_rows",
    "paper_table",
    "render_markdown",
    "router_records",
]

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

NO_ITERATIVE = "n/a (no iterative method timed together)"
"""The trade-off cell of a setting without SC or LatentSeek timed together with the others."""

_ROUNDING = 0.2
"""How far a printed score of the paper may sit from Eq. 1 on its printed (rounded) numbers."""


def _label(method: str) -> tuple[str, str | None]:
    """(label, the paper's method) of an arm of ours or an iterative method of `als compare`."""
    if method in _METHODS:
        return _METHODS[method]
    if method.startswith("sc@"):
        return f"Self-Consistency (k={method[3:]})", "SC"
    if method.startswith("latentseek"):
        reward = method.partition("-")[2]
        return f"LatentSeek ({reward} reward)" if reward else "LatentSeek", "LatentSeek"
    return method, None


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


def _compare_retimed(run: RunDir) -> bool:
    """Whether `als compare` decoded CoT again beside the baselines (`--compare.retime true`),
    so that its methods were timed together (else its CoT rows are the run's own)."""
    cot = run.compare_rows("cot")
    return cot.exists() or cot.with_name(cot.name + ".gz").exists()


def _score_record(run: RunDir) -> dict[str, Any] | None:
    """The like-for-like record of the setting that holds an iterative method (SC, LatentSeek),
    with the trade-off of each of its methods on the problems they all decoded; None without
    one. A re-timing (`retimed.json`) that decoded an iterative arm comes first (accuracy and
    seconds recomputed from it), then `als compare` run with `retime` (its own scores, written
    with their normaliser; tables from before the normaliser was recorded are not used)."""
    if run.retimed_path.exists():
        retimed = read_json(run.retimed_path)
        arms = {a["method"]: a for a in retimed["arms"]}
        seconds = {name: a["seconds_per_problem"] for name, a in arms.items()}
        normaliser = iterative_normaliser(seconds)
        if normaliser is not None:
            result = tradeoff_scores(
                {name: a["accuracy"] for name, a in arms.items()}, seconds, normaliser=normaliser
            )
            return {
                "source": f"re-timed together, first {retimed['n']} problems",
                "n": retimed["n"],
                "normaliser": normaliser,
                "scores": result["scores"],
                "arms": arms,
                "cot_accuracy": arms.get("cot", {}).get("accuracy"),
            }
    if run.compare_table_path.exists() and _compare_retimed(run):
        table = {e["method"]: e for e in read_json(run.compare_table_path)}
        named = [e for e in table.values() if e.get("tradeoff_normaliser")]
        if named:
            n = named[0]["tradeoff_n"]
            return {
                "source": f"als compare, timed together, on the {n} problems all decoded",
                "n": n,
                "normaliser": TimeNormaliser(
                    named[0]["tradeoff_normaliser"], named[0]["tradeoff_normaliser_seconds"]
                ),
                "scores": {
                    name: {k: e.get(k) for k in ("tradeoff", "tradeoff_change_vs_cot")}
                    for name, e in table.items()
                },
                "arms": table,
                "cot_accuracy": None,  # each entry has its own: cot_accuracy_same
            }
    return None


def _router_record(samples: SamplesDir) -> dict[str, Any] | None:
    """The score record of a router table (`als route`) whose seconds were re-timed: its
    unrouted rows (CoT, SC@k, the run's ALS arms), scored with SC@k as the normaliser; None
    when the table is missing or was not re-timed (its seconds would not compare)."""
    if not samples.router_table_path.exists() or not retimed_path(samples).exists():
        return None
    table = read_json(samples.router_table_path)["table"]
    arms = {r["method"]: r for r in table if not r["method"].startswith("router")}
    seconds = {m: a["seconds_per_problem"] for m, a in arms.items()}
    seconds = {m: t for m, t in seconds.items() if t is not None}
    normaliser = iterative_normaliser(seconds)
    if normaliser is None or "cot" not in arms:
        return None
    accuracy = {m: arms[m]["accuracy"] for m in seconds}
    n_timed = read_json(retimed_path(samples))["n"]
    n = arms["cot"]["n"]
    return {
        "source": f"als route: CoT and {_label(normaliser.method)[0]} re-timed together, first "
        f"{n_timed} problems; the arms' tokens on all {n}",
        "n": n,
        "normaliser": normaliser,
        "scores": tradeoff_scores(accuracy, seconds, normaliser=normaliser)["scores"],
        "arms": arms,
        "cot_accuracy": arms["cot"]["accuracy"],
    }


def router_records(folders: Iterable[str | Path]) -> dict[str, dict[str, Any]]:
    """By the name of the run they route: the score records of the folders among `folders` that
    hold a re-timed router table (`_router_record`)."""
    out = {}
    for folder in folders:
        samples = SamplesDir(Path(folder))
        if samples.router_table_path.exists() and samples.settings_path.exists():
            record = _router_record(samples)
            if record is not None:
                out[Path(samples.settings()["source_run"]).name] = record
    return out


def _paper_lookup(paper: Mapping[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["dataset"], r["prompt"], r["method"]): r for r in paper["rows"]}


def paper_recomputed(paper: Mapping[str, Any]) -> dict[tuple[str, str, str], dict[str, float]]:
    """The paper's trade-off of each of its rows recomputed by its Eq. 1 from its own printed
    accuracy and time (time normalised by the slowest method of its block): (dataset, prompt,
    method) -> {model: score}. Where it differs from the printed score by more than rounding
    explains (0.2), the printed score does not follow Eq. 1: 11 of its 34 rows, one of them by
    0.6 (Llama GSM8K P1 ALS), the others by 1.6 to 27."""
    out: dict[tuple[str, str, str], dict[str, float]] = {}
    blocks: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in paper["rows"]:
        blocks.setdefault((r["dataset"], r["prompt"]), []).append(r)
    for (dataset, prompt), rows in blocks.items():
        for model in PAPER_MODELS:
            cells = {r["method"]: r[model] for r in rows if r.get(model)}
            if not cells:
                continue
            slowest = max(cells.items(), key=lambda kv: kv[1][1])
            result = tradeoff_scores(
                {m: c[0] / 100 for m, c in cells.items()},
                {m: c[1] for m, c in cells.items()},
                normaliser=TimeNormaliser(slowest[0], slowest[1][1]),
                base="CoT",
            )
            for method, score in result["scores"].items():
                out.setdefault((dataset, prompt, method), {})[model] = score["tradeoff"]
    return out


def _paper_sc_ratio(theirs: Mapping[tuple[str, str, str], Any], dataset: str, prompt: str):
    """The paper's SC time over its CoT time in the block of this setting (Qwen-7B), or None."""
    cot = (theirs.get((dataset, prompt, "CoT")) or {}).get(PAPER_MODELS[0])
    sc = (theirs.get((dataset, prompt, "SC")) or {}).get(PAPER_MODELS[0])
    return sc[1] / cot[1] if cot and sc and cot[1] > 0 else None


def _row(
    run: RunDir,
    setting: tuple[str, str, str],
    r: Mapping[str, Any],
    **fields: Any,
) -> dict[str, Any]:
    dataset, prompt, _ = setting
    label, _ = _label(r["method"])
    return {
        "run": run.root.name,
        "model": run.settings()["model"]["name"],
        "dataset": dataset,
        "prompt": prompt,
        "method": r["method"],
        "label": label,
        "n": r["n"],
        "correct": r.get("correct", round(r["accuracy"] * r["n"])),
        "accuracy": r["accuracy"],
        "ci": (r["ci_low"], r["ci_high"])
        if "ci_low" in r
        else wilson_interval(round(r["accuracy"] * r["n"]), r["n"]),
        "mcnemar_p": r.get("mcnemar_p"),
        "json_valid": r.get("json_valid"),
        "json_whole": r.get("json_whole"),
        "correct_whole": r.get("correct_whole"),
        "intervention_rate": r.get("intervention_rate"),
        **fields,
    }


def _normaliser_json(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The score record's normaliser as the rows carry it (with the record's n and source), or
    None without a record."""
    if record is None:
        return None
    return {**record["normaliser"].to_json(), "n": record["n"], "source": record["source"]}


def _tradeoff_fields(
    method: str, record: Mapping[str, Any] | None, normaliser: dict[str, Any] | None
) -> dict[str, Any]:
    """The trade-off cells of `method`: its score and % change against CoT from the score
    record, or a note saying why there is none; the normaliser only beside a score."""
    if record is None:
        score, note = {}, NO_ITERATIVE
    elif method in record["scores"]:
        score, note = record["scores"][method], None
    else:
        score, note = {}, f"n/a (not timed with {_label(record['normaliser'].method)[0]})"
    return {
        "tradeoff": score.get("tradeoff"),
        "tradeoff_change_vs_cot": score.get("tradeoff_change_vs_cot"),
        "tradeoff_note": note,
        "normaliser": normaliser if note is None else None,
    }


def _paper_fields(
    method: str,
    block: tuple[str, str],
    theirs: Mapping[tuple[str, str, str], Any],
    recomputed: Mapping[tuple[str, str, str], dict[str, float]],
) -> dict[str, Any]:
    """The paper's cells of the method `method` corresponds to in the (dataset, paper prompt)
    `block`: its printed numbers per model and their Eq. 1 recomputation (empty for an arm with
    no counterpart in the paper)."""
    _, paper_method = _label(method)
    key = (*block, paper_method)
    ref = theirs.get(key) if paper_method else None
    return {
        "paper": {m: (ref or {}).get(m) for m in PAPER_MODELS},
        "paper_recomputed": recomputed.get(key, {}) if paper_method else {},
    }


def _comparison(
    setting: tuple[str, str, str], record: Mapping[str, Any] | None, paper: Mapping[str, Any]
) -> Callable[[str], dict[str, Any]]:
    """The cells a row takes beside its measured ones, by method: the trade-off cells from the
    score record, then the paper's cells for the setting's block and its SC-to-CoT time ratio.
    The paper's lookups are built once, here."""
    dataset, _, paper_prompt = setting
    theirs = _paper_lookup(paper)
    recomputed = paper_recomputed(paper)
    sc_ratio = _paper_sc_ratio(theirs, dataset, paper_prompt)
    normaliser = _normaliser_json(record)

    def fields(method: str) -> dict[str, Any]:
        return {
            **_tradeoff_fields(method, record, normaliser),
            **_paper_fields(method, (dataset, paper_prompt), theirs, recomputed),
            "paper_sc_time_ratio": sc_ratio,
        }

    return fields


def _test_measures(
    r: Mapping[str, Any],
    cot: Mapping[str, Any] | None,
    seconds: Mapping[str, float],
    how: Mapping[str, str],
) -> dict[str, Any]:
    """A test arm's time and its changes against CoT's test row: seconds only where timed like
    for like (`_times`), none of the changes on CoT's own row."""
    t = seconds.get(r["method"])
    return {
        "seconds": t,
        "timed": how.get(r["method"], "not like for like"),
        "accuracy_change_vs_cot": None
        if cot is None or r["method"] == "cot"
        else 100 * (r["accuracy"] - cot["accuracy"]),
        "seconds_vs_cot": None
        if t is None or not seconds.get("cot") or r["method"] == "cot"
        else t / seconds["cot"],
    }


def _record_measures(entry: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """An iterative method's time and its changes against CoT within the score record (CoT's
    accuracy on the same problems where the entry states it, else the record's)."""
    base = entry.get("cot_accuracy_same", record["cot_accuracy"])
    cot_seconds = record["arms"].get("cot", {}).get("seconds_per_problem")
    t = entry["seconds_per_problem"]
    return {
        "seconds": t,
        "timed": record["source"],
        "accuracy_change_vs_cot": None if base is None else 100 * (entry["accuracy"] - base),
        "seconds_vs_cot": t / cot_seconds if cot_seconds else None,
    }


def _test_rows(
    run: RunDir,
    setting: tuple[str, str, str],
    test: list[dict[str, Any]],
    times: tuple[dict[str, float], dict[str, str]],
    comparison: Callable[[str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per test arm of the run, in the order of its results."""
    seconds, how = times
    cot = next((r for r in test if r["method"] == "cot"), None)
    return [
        _row(run, setting, r, **_test_measures(r, cot, seconds, how), **comparison(r["method"]))
        for r in test
    ]


def _iterative_rows(
    run: RunDir,
    setting: tuple[str, str, str],
    record: Mapping[str, Any] | None,
    ours: set[str],
    comparison: Callable[[str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per iterative method of the score record that is not among the run's own arms
    `ours`, in the record's order; none without a record."""
    rows = []
    for name, entry in (record or {}).get("arms", {}).items():
        if name in ours or not is_iterative(name):
            continue
        measures = _record_measures(entry, record)
        rows.append(_row(run, setting, entry, **measures, **comparison(name)))
    return rows


def paper_rows(
    run: RunDir, paper: Mapping[str, Any], router: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The table's rows for one finished run (see the module docstring): the run's test arms,
    then the iterative methods of the record that gives the setting its trade-off score
    (`router`: a router table's record, `router_records`, used when the run has none)."""
    test = read_json(run.results_path)["test"]
    setting = _setting(run)
    times = _times(run, test)
    record = _score_record(run) or router
    comparison = _comparison(setting, record, paper)
    rows = _test_rows(run, setting, test, times, comparison)
    return rows + _iterative_rows(run, setting, record, {r["method"] for r in test}, comparison)


def paper_table(folders: Iterable[str | Path], paper: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of every finished run among `folders` (unfinished ones are left out)."""
    folders = list(folders)
    routers = router_records(folders)
    rows = []
    for folder in folders:
        run = RunDir.of(folder)
        if run.results_path.exists() and run.settings_path.exists():
            rows += paper_rows(run, paper, routers.get(run.root.name))
    return rows


def _num(value: float | None, fmt: str) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt % value


def _paper_cell(cell: list[float] | None, recomputed: float | None) -> str:
    """Their accuracy / trade-off as printed; where the printed score does not follow Eq. 1 from
    their own accuracy and time, the recomputed score follows in brackets."""
    if cell is None:
        return ""
    text = f"{cell[0]:.1f} / {cell[2]:.1f}"
    if recomputed is not None and abs(recomputed - cell[2]) > _ROUNDING:
        text += f" (Eq. 1: {recomputed:.1f})"
    return text


def _json_cell(row: Mapping[str, Any]) -> str:
    """Valid P2 outputs of n; then how many were nothing but the object (the authors' MATH-500
    reading) and how many of those were right (runs from before it was counted show the first)."""
    if row["json_valid"] is None:
        return ""
    cell = f"{row['json_valid']}/{row['n']}"
    if row.get("json_whole") is not None:
        cell += f"; whole {row['json_whole']}, right {row['correct_whole']}"
    return cell


def _normaliser_cell(row: Mapping[str, Any]) -> str:
    norm = row["normaliser"]
    if norm is None:
        return "none"
    return f"{_label(norm['method'])[0]}, {norm['seconds']:.2f} s ({norm['source']})"


def _tradeoff_cell(row: Mapping[str, Any]) -> str:
    if row["tradeoff_note"] is not None:
        return row["tradeoff_note"]
    return _num(row["tradeoff"], "%.1f") or "n/a"


def _change(value: float | None, fmt: str, method: str) -> str:
    return "" if value is None or method == "cot" else fmt % value


def _sensitivity(rows: list[dict[str, Any]]) -> str | None:
    """One worked example of how the % change moves with the normaliser, from the setting and
    arm where it moves most: the slowest arm timed here as the normaliser (what this table used
    before the normaliser was stated), against the paper's SC-to-CoT time ratio times CoT's."""
    best = None
    settings: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["seconds"] is not None and r["tradeoff_note"] == NO_ITERATIVE:
            settings.setdefault((r["run"], r["dataset"], r["prompt"]), []).append(r)
    for key, group in settings.items():
        by = {r["method"]: r for r in group}
        ratio = group[0]["paper_sc_time_ratio"]
        if "cot" not in by or len(by) < 2 or ratio is None:
            continue
        acc = {m: r["accuracy"] for m, r in by.items()}
        sec = {m: r["seconds"] for m, r in by.items()}
        slowest = max(sec, key=sec.__getitem__)
        low = TimeNormaliser(slowest, sec[slowest])
        high = TimeNormaliser(f"{ratio:.2f} x CoT", ratio * sec["cot"])
        a = tradeoff_scores(acc, sec, normaliser=low)["scores"]
        b = tradeoff_scores(acc, sec, normaliser=high)["scores"]
        for m in by:
            x, y = a[m]["tradeoff_change_vs_cot"], b[m]["tradeoff_change_vs_cot"]
            moved = None if m == "cot" or x is None or y is None else abs(x - y)
            if moved is not None and (best is None or moved > best[0]):
                best = (moved, key, by[m], low, high, x, y, ratio)
    if best is None:
        return None
    _, (_, dataset, prompt), r, low, high, x, y, ratio = best
    return (
        f"The score moves with its normaliser: from the same {dataset} {prompt} rows, "
        f"{r['label']} changes the score against CoT by {x:+.1f}% with the slowest arm timed "
        f"here as the normaliser ({_label(low.method)[0]}, {low.seconds:.2f} s), and by "
        f"{y:+.1f}% with a normaliser {ratio:.2f} times CoT's seconds ({high.seconds:.2f} s; "
        f"the paper's Qwen-7B Self-Consistency took {ratio:.2f} times its CoT's time in this "
        f"block), while its accuracy is {abs(r['accuracy_change_vs_cot']):.1f} points "
        f"{'below' if r['accuracy_change_vs_cot'] < 0 else 'above'} CoT's and its time "
        f"{r['seconds_vs_cot']:.2f} times CoT's. Neither number is a "
        "property of the method, and neither is quoted in the table."
    )


def _paper_note(rows: list[dict[str, Any]]) -> str | None:
    """The paper's printed scores that do not follow its Eq. 1, with the recomputed ones; the
    worked example is the row whose printed % change against CoT is largest (MATH-500 P2 ALS,
    the abstract's "up to 101%")."""
    cots = {(r["dataset"], r["prompt"]): r for r in rows if r["method"] == "cot"}
    off, example = False, None
    for r in rows:
        cot = cots.get((r["dataset"], r["prompt"]))
        for m in PAPER_MODELS:
            cell, again = r["paper"].get(m), r["paper_recomputed"].get(m)
            if cell is None or again is None or abs(again - cell[2]) <= _ROUNDING:
                continue
            off = True
            cot_cell = None if cot is None else cot["paper"].get(m)
            cot_again = None if cot is None else cot["paper_recomputed"].get(m)
            if r["method"] == "cot" or not cot_cell or not cot_again:
                continue
            printed = 100 * (cell[2] / cot_cell[2] - 1)
            if example is None or printed > example[0]:
                recomputed = 100 * (again / cot_again - 1)
                example = (printed, r, m, cell, again, cot_cell, cot_again, recomputed)
    if not off:
        return None
    text = (
        "Their columns are as printed; where a printed trade-off does not follow Eq. 1 from their "
        "own accuracy and time (by more than their rounding explains), the recomputed score "
        "follows in brackets."
    )
    if example is not None:
        printed, r, m, cell, again, cot_cell, cot_again, recomputed = example
        text += (
            f" So {m}'s {r['dataset']} {_paper_prompt(r)} {_label(r['method'])[1]} is printed at "
            f"{cell[2]:.1f} against CoT's {cot_cell[2]:.1f} ({printed:+.0f}%), but Eq. 1 on "
            f"their own accuracy and time gives {again:.1f} against {cot_again:.1f} "
            f"({recomputed:+.1f}%)."
        )
    return text


def _paper_prompt(row: Mapping[str, Any]) -> str:
    return "P2" if row["prompt"] == "P2" else "P1"


NOTE = (
    "**The trade-off score** (the paper's Eq. 1: (accuracy in % + 100 - time in % of the "
    "normaliser's) / 2) weighs time as much as accuracy, and time enters only as a fraction of "
    "one method's time, the normaliser. It can rank methods timed together against one stated "
    "normaliser, as the paper's Table 1 does with Self-Consistency or LatentSeek setting the "
    "scale. It cannot say whether a method is more accurate, and its % change against CoT is not "
    "a property of the method: it moves with the normaliser as much as with accuracy. So it is "
    "given only where a setting holds an iterative method (SC, LatentSeek) timed together with "
    "the others, that method's seconds the normaliser (column 'time normaliser', with the "
    "problems the score is taken on), and reads "
    f'"{NO_ITERATIVE}" elsewhere: there read the accuracy change (points, with McNemar p) '
    "and the time ratio against CoT, which are measured."
)


_MODEL_NAMES = {
    "embedded": "Qwen2.5-Coder-0.5B-Instruct",
    "coder-1.5b": "Qwen2.5-Coder-1.5B-Instruct",
}
"""Readers' names of the packaged models (`workbench.sources.embedded`)."""


def render_markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as one Markdown table (accuracy in %, as the paper prints it), then what the
    trade-off score can and cannot show."""
    head = (
        "| dataset | prompt | model | method | n | accuracy % [95% CI] | accuracy vs CoT (points) "
        "| McNemar p | s / problem | timed | time vs CoT | trade-off (Eq. 1) | trade-off vs CoT "
        "| time normaliser (Eq. 1) | valid JSON (whole output; right) | "
        + " | ".join(f"{m} (theirs): acc / trade-off" for m in PAPER_MODELS)
        + " |"
    )
    lines = [head, "|" + "---|" * (15 + len(PAPER_MODELS))]
    for r in rows:
        lo, hi = r["ci"]
        cells = [
            r["dataset"],
            r["prompt"],
            _MODEL_NAMES.get(r["model"], r["model"]),
            r["label"],
            str(r["n"]),
            f"{100 * r['accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]",
            _change(r["accuracy_change_vs_cot"], "%+.1f", r["method"]),
            _num(r["mcnemar_p"], "%.2g"),
            _num(r["seconds"], "%.2f"),
            r["timed"],
            _change(r["seconds_vs_cot"], "%.2fx", r["method"]),
            _tradeoff_cell(r),
            _change(r["tradeoff_change_vs_cot"], "%+.1f%%", r["method"]),
            _normaliser_cell(r),
            _json_cell(r),
            *(_paper_cell(r["paper"][m], r["paper_recomputed"].get(m)) for m in PAPER_MODELS),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [NOTE, _sensitivity(rows), _paper_note(rows)]
    return "\n".join(lines) + "\n\n" + "\n\n".join(n for n in notes if n) + "\n"


def load_paper_numbers(path: str | Path) -> dict[str, Any]:
    """The paper's Table 1 as committed (`analyses/data/als_paper_table1.json`)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
