"""The report of a folder of sampled chains: the chains, reasoning or difficulty, the router.

`build_samples_report` writes ``report.html`` and the figures (HTML + PNG) into the folder from
its tables (`summary.json`, ``contrast/``, ``router/``), whichever exist; it decodes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.artifacts import read_json, read_jsonl, save_figure
from workbench.experiment.contrast_run import chain_controls
from workbench.experiment.rundir import SamplesDir
from workbench.report.contrast_plots import (
    CONTRAST_LABELS,
    contrast_cosine_curves,
    contrast_probe_curves,
    router_frontier,
)
from workbench.report.html import Section, interval, write_report

__all__ = ["build_samples_report", "samples_figures"]


def _chains_section(samples: SamplesDir) -> Section:
    s = read_json(samples.summary_path)
    rows = [
        {"what": "problems", "value": s["problems"]},
        {"what": "sampled chains", "value": s["samples"]},
        {"what": "per-chain accuracy", "value": round(s["per_sample"]["accuracy"], 3)},
        {"what": f"{s['sc']['method']} accuracy", "value": round(s["sc"]["accuracy"], 3)},
        {"what": "problems with both outcomes", "value": s["mixed_problems"]},
        {"what": "problems with none right", "value": s["none_correct"]},
        {"what": "problems with all right", "value": s["all_correct"]},
    ]
    settings = samples.settings()
    cfg = settings["sampling"]
    text = (
        f"{cfg['k']} chains per problem at temperature {cfg['temperature']}, top-p {cfg['top_p']} "
        f"(sample j of problem i seeded {cfg['seed']} + i k + j), of the {settings['split']} "
        f"split of {settings['source_run']}."
    )
    return ("Sampled chains", text, [], rows)


def _contrast_section(
    samples: SamplesDir, figs: dict[str, Any], controls: list[dict[str, Any]]
) -> Section:
    summary = read_json(samples.contrast_summary_path)
    rows = [
        {
            "measure": CONTRAST_LABELS[metric],
            "best layer": b["layer"],
            "value [95% CI]": interval(b["value"], b["ci_low"], b["ci_high"]),
        }
        for metric, b in summary["best"].items()
    ]
    rows += [
        {
            "measure": CONTRAST_LABELS[r["metric"]],
            "best layer": "-",
            "value [95% CI]": interval(r["value"], r["ci_low"], r["ci_high"]),
        }
        for r in controls
    ]
    text = (
        f"{summary['mixed_problems']} of {summary['problems']} problems have both a right and a "
        "wrong chain: the within-problem AUROC ranks only their pairs (chance 0.5 if the states "
        "carry nothing beyond which problem a chain is of). A pooled AUROC well above the "
        "within-problem one says the probe knows which problems are hard rather than which "
        "chains reason well. The last four rows are controls without the model: chains "
        "scored by their length alone (shorter = right), and the same two directions fitted "
        "on each chain's bag of tokens instead of its states; a state probe must beat them to "
        "show more than the written text. Folds and intervals are by problem."
    )
    captions = [
        (figs["contrast_probes"], "The probes by layer, 95% intervals over problems."),
        (
            figs["contrast_cosines"],
            "Cosines among the three directions, and the pooled "
            "direction's share along difficulty (cos^2).",
        ),
    ]
    return ("Reasoning or difficulty", text, captions, rows)


def _versus_sc(row: dict[str, Any]) -> dict[str, Any]:
    """The row's McNemar p against SC@k everywhere, its trade-off score and the score's gap to
    SC@k's with its interval."""
    gap = row.get("tradeoff_gap_vs_sc") or {}
    return {
        "mcnemar_p_vs_sc": row.get("mcnemar_p_vs_sc"),
        "tradeoff": row.get("tradeoff"),
        "gap to SC's trade-off [95% CI]": interval(
            gap.get("value"), gap.get("ci_low"), gap.get("ci_high"), digits=1
        ),
    }


def _bins_text(out: dict[str, Any]) -> str:
    """One sentence per score quartile: where SC fixes and breaks CoT."""
    if "by_score" not in out:
        return ""
    parts = [
        f"quartile {b['bin'] + 1}: {b['share_unsolved']:.0%} solved by no sample, "
        f"{b['fixes']} fixed / {b['breaks']} broken"
        for b in out["by_score"]
    ]
    rho = out.get("spearman_test_pass_rate")
    lead = "" if rho is None else f" The test scores' Spearman with pass rate: {rho:.2f}."
    return f"{lead} By score quartile, lowest (predicted hardest) first, SC@k against CoT: " + (
        "; ".join(parts) + "."
    )


def _router_section(samples: SamplesDir, figs: dict[str, Any]) -> Section:
    out = read_json(samples.router_table_path)
    keys = (
        "method",
        "accuracy",
        "ci_low",
        "ci_high",
        "mcnemar_p",
        "tokens_per_problem",
        "seconds_per_problem",
        "share_expensive",
    )
    rows = [{**{k: r.get(k) for k in keys}, **_versus_sc(r)} for r in out["table"]]
    text = (
        f"Predicted hard: a low projection of the last prompt token on the difficulty direction "
        f"(layer {out['layer']}); each budget's threshold is that quantile of the validation "
        f"problems' scores. Timing: {out['timing']}. Trade-off: the paper's Eq. 1 score, time "
        "normalised by SC's seconds (SC's time counts as 100); the gap to SC's score has a 95% "
        "interval from resampling problems." + _bins_text(out)
    )
    return ("The direction as a router", text, [(figs["router_tokens"], "")], rows)


def samples_figures(
    samples: SamplesDir, controls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Every figure the folder's tables allow, by name; `controls`: the folder's
    `chain_controls` rows, when the caller has them already."""
    figs: dict[str, Any] = {}
    probes = samples.contrast_table("probes")
    if probes.exists():
        if controls is None:
            controls = chain_controls(samples)
        figs["contrast_probes"] = contrast_probe_curves(read_jsonl(probes), controls=controls)
        cosines = read_jsonl(samples.contrast_table("cosines"))
        figs["contrast_cosines"] = contrast_cosine_curves(cosines)
    if (samples.router_table_path).exists():
        table = read_json(samples.router_table_path)["table"]
        figs["router_tokens"] = router_frontier(table)
        figs["router_seconds"] = router_frontier(table, cost="seconds_per_problem")
    return figs


def build_samples_report(samples: str | Path | SamplesDir) -> Path:
    """Write the folder's figures and `report.html`; return the report's path."""
    samples = SamplesDir.of_samples(samples)
    has_probes = samples.contrast_table("probes").exists()
    controls = chain_controls(samples) if has_probes else []
    figs = samples_figures(samples, controls)
    for name, fig in figs.items():
        save_figure(fig, samples.figures / name)
    sections = [_chains_section(samples)] if samples.summary_path.exists() else []
    if "contrast_probes" in figs:
        sections.append(_contrast_section(samples, figs, controls))
    if "router_tokens" in figs:
        sections.append(_router_section(samples, figs))
    title = f"Sampled chains: {samples.root.name}"
    return write_report(samples.report_path, title, sections)
