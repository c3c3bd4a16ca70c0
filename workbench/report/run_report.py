"""Figures and `report.html` of a run folder, rebuilt from what is on disk (after `als run`, and
again after `als probe` adds its tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.core.artifacts import jsonl_exists, read_json, read_jsonl, read_rows, save_figure
from workbench.core.directions import cosine_matrix
from workbench.errors import WorkbenchError
from workbench.experiment.rundir import RunDir
from workbench.report.contrast_plots import difficulty_strata_curves
from workbench.report.html import Section, interval, write_report
from workbench.report.plotting import (
    accuracy_bars,
    agreement_heatmap,
    cosine_heatmap,
    early_curve,
    frontier,
    layer_curve,
    pca_scatter,
    selection_grid,
    trajectory_plot,
)
from workbench.report.sweep_plots import (
    rule_deltas,
    sweep_by_alpha,
    sweep_deltas,
    sweep_frontier,
    sweep_heatmaps,
)

__all__ = ["build_run_report", "fit_probe_figures", "run_figures", "unfinished_figures"]


def _ci(row: dict[str, Any]) -> str:
    return interval(row["accuracy"], row["ci_low"], row["ci_high"])


def _verdict(results: dict[str, Any]) -> str:
    """The result in one sentence: which way ALS moved accuracy on test, with n, CIs and p."""
    cot, als = results["test"][:2]
    p = als["mcnemar_p"]
    if p is not None and p < 0.05:
        verdict = f"ALS {'raised' if als['accuracy'] > cot['accuracy'] else 'lowered'} accuracy"
    else:
        verdict = "ALS did not change accuracy detectably"
    return (
        f"{verdict} on {cot['n']} held-out {results['config']['dataset']} problems: ALS "
        f"{_ci(als)} vs CoT {_ci(cot)}; exact McNemar p = {p:.3g} ({als['only_method']} fixed "
        f"by ALS, {als['only_base']} broken)."
    )


def _details(results: dict[str, Any], selection: dict[str, Any]) -> list[str]:
    """What the verdict rests on: ALS's setting and intervention rate, then each other arm."""
    als, *others = results["test"][1:]
    best = selection["best"]
    lines = [
        f"{_rate(als).strip()} Chosen on the validation split: layer {best['layer']}, alpha "
        f"{best['alpha']:g} (relative), tau {best['tau']:.3f} (quantile "
        f"{best['tau_quantile']:g} of fit-token cosines)."
    ]
    for row in others:  # the reference and control arms
        lines.append(
            f"{row['method']}{_ARMS.get(row['method'], '')}: {_ci(row)}, McNemar p = "
            f"{row['mcnemar_p']:.3g} vs CoT ({row['only_method']} fixed, {row['only_base']} "
            f"broken).{_rate(row)}"
        )
    return lines


_ARMS = {
    "als-reference": (
        " (the ALS authors' configuration: a vector fit on the final normalised state, added at the"
        " last block's input where its raw cosine with the vector is below tau 0.1, absolute alpha"
        " on the unit vector chosen on validation, newest position only, not persisting; its"
        " departures from their code are listed under --als.reference in `als run --help`)"
    ),
    "als-reference-always": (
        " (the authors' update with the gate always open, alpha 0.3: what runs before 2026-12-03"
        " called the reference arm)"
    ),
    "als-gated": " (ALS-Gated: the authors' configuration with their JSON gate)",
    "random-control": " (a random direction of the same norm at the selected setting)",
}


def _rate(row: dict[str, Any]) -> str:
    """Intervention rate, and the trade-off score where the arm was timed like for like."""
    text = f" Steered {100 * row['intervention_rate']:.1f}% of tokens"
    if row.get("tradeoff") is not None and row.get("timed_with_cot") == "together":
        change = row.get("tradeoff_change_vs_cot")  # None where CoT's own score is 0
        versus = "" if change is None else f"{change:+.1f}% vs CoT, "
        text += f"; trade-off {row['tradeoff']:.1f} ({versus}decoded in one batch with CoT)"
    return text + "."


_CAPTIONS = {
    "test_accuracy": (
        "Test accuracy of each arm with its 95% Wilson interval. Look whether ALS's interval "
        "clears CoT's: overlapping intervals mean this many problems cannot tell them apart (the "
        "paired McNemar p in the table is the sharper test)."
    ),
    "layer_separation": (
        "How far apart correct and incorrect generations sit along each layer's direction (d′, "
        "in-sample, so optimistic); the dashed line marks the layer chosen on validation. The "
        "candidate layers are not read off this curve: they are those with the best "
        "cross-validated AUROC on the fit split, so the chosen layer need not sit at its peak."
    ),
    "direction_norm": (
        "The direction's length relative to the mean hidden-state norm at its layer. Near 0 a "
        "relative alpha barely moves the state; a large ratio means the same alpha is a big push."
    ),
    "direction_cosines": (
        "Cosine between the layers' directions. A warm block along the diagonal means neighbouring "
        "layers share one direction; pale cells mean the direction changes with depth."
    ),
    "selection_grid": (
        "Validation accuracy of every condition (95% interval) against CoT's (grey band). Look "
        "for points whose interval clears the band; where every interval overlaps it, the pick "
        "is close to a coin toss and the test split decides."
    ),
    "probe_auroc": (
        "Out-of-fold AUROC of the success direction by layer, beside the shuffled-label control. "
        "Look for layers well above the control (about 0.5): they carry a readable success signal."
    ),
    "probe_accuracy": (
        "Balanced accuracy of a logistic probe by layer (0.5 is chance). Look whether it peaks at "
        "the layers where the AUROC does."
    ),
    "probe_effect": (
        "Cohen's d between correct and incorrect generations along the direction (about 0.5 is a "
        "medium effect). The peak marks where success and failure separate most."
    ),
    "probe_early": (
        "AUROC from the first k generated tokens only. Look how soon the curve leaves the chance "
        "line: early separation is what lets a gate act before the reasoning goes wrong."
    ),
    "probe_difficulty": (
        "The fit probe's AUROC over all pairs of a correct and an incorrect problem, and over the "
        "pairs whose problems had the same pass rate in the sampled chains (the gray line: that "
        "pass rate alone as the score). Look how far the within-strata curve falls toward 0.5: "
        "what remains is what the state knows beyond the difficulty those chains measured."
    ),
    "probe_trajectories": (
        "Mean cosine to the success direction at each generated token (95% bands); crosses mark "
        "where steering fired, the dashed line is tau. Look whether steered runs sit above CoT's "
        "and whether incorrect runs drift below correct ones."
    ),
    "probe_pca": (
        "Each fit problem's state in the first two principal components, with the success and "
        "failure centroids. Look whether the groups separate; overlapping clouds mean a weak "
        "direction."
    ),
    "sweep_heatmap": (
        "Validation accuracy over alpha and tau quantile, one panel per layer set. Look for a "
        "consistent region rather than a single bright cell, which is likely noise."
    ),
    "sweep_deltas": (
        "Accuracy change vs CoT against the intervention rate, ALS beside its controls. ALS helps "
        "only where its points sit above zero while the random, shuffled and negated controls do "
        "not."
    ),
    "sweep_rules": (
        "Accuracy change vs CoT per update rule, each beside its controls at the same settings. "
        "Look for a rule whose ALS points clear both zero and its controls."
    ),
    "sweep_by_alpha": (
        "Tokens, repetition and next-token effects as alpha grows. Look for the alpha where "
        "repetition or token counts start to climb: beyond it steering breaks the text."
    ),
    "sweep_frontier": (
        "Accuracy (95% CI) against generated tokens per problem for every condition. Up and to "
        "the left is better: fewer tokens at the same or higher accuracy."
    ),
    "compare_frontier": (
        "Accuracy (95% CI) against seconds per problem (log axis), one point per method. Up and "
        "to the left is better; a costlier method earns its place only by sitting clearly higher."
    ),
    "compare_agreement": (
        "Share of shared problems on which two methods agree (both right or both wrong). Near 1 "
        "the methods solve the same problems; lower values mean they fail on different ones."
    ),
}
"""What to look for in each figure of the report."""


def _captioned(figs: dict[str, Any], names: Any) -> list[tuple[Any, str]]:
    """The figures `names` of `figs`, each with its caption."""
    return [(figs[name], _CAPTIONS.get(name, "")) for name in names]


def _layer_figures(layers: list[dict[str, Any]], figs: dict[str, Any]) -> None:
    """The per-layer probe curves: AUROC (with its shuffled control), accuracy, effect size."""
    mg = [r for r in layers if r["position"] == "mean_generated"]
    figs["probe_auroc"] = layer_curve(
        [r for r in mg if r["metric"] in ("auroc", "auroc_shuffled")],
        title="Cross-validated AUROC by layer (mean over generated tokens)",
        y_label="AUROC",
    )
    figs["probe_accuracy"] = layer_curve(
        [r for r in layers if r["metric"] == "probe_balanced_accuracy"],
        title="Logistic probe balanced accuracy by layer",
        y_label="balanced accuracy",
    )
    figs["probe_effect"] = layer_curve(
        [r for r in mg if r["metric"] == "cohens_d"],
        title="Effect size by layer",
        y_label="Cohen's d",
    )


def fit_probe_figures(run: str | Path | RunDir) -> dict[str, Any]:
    """The fit split's probe figures from `probe/layers` and `probe/early` alone (what `als probe
    --probe.fit_only true` leaves in a run that is not finished): the per-layer curves, and early
    prediction at the layer with the best out-of-fold AUROC."""
    run = RunDir.of(run)
    if not jsonl_exists(run.probe_table("layers")):
        raise WorkbenchError(f"{run.root} has no probe tables: run `als probe` first")
    layers = read_jsonl(run.probe_table("layers"))
    figs: dict[str, Any] = {}
    _layer_figures(layers, figs)
    auroc = [r for r in layers if r["metric"] == "auroc" and r["position"] == "mean_generated"]
    best = max(auroc, key=lambda r: r["value"])["layer"]
    figs["probe_early"] = early_curve(
        [r for r in read_jsonl(run.probe_table("early")) if r["layer"] == best],
        title=f"How early does the state tell success from failure (layer {best}, fit split)",
    )
    _difficulty_figure(run, figs)
    return figs


def _difficulty_figure(run: RunDir, figs: dict[str, Any]) -> None:
    """`probe_difficulty` where `als probe --probe.difficulty_from` wrote its table."""
    if jsonl_exists(run.probe_table("difficulty")):
        figs["probe_difficulty"] = difficulty_strata_curves(
            read_jsonl(run.probe_table("difficulty"))
        )


_SPEC_KEYS = ("alpha_units", "site", "positions", "persistence", "rule")
"""The control's steering settings that the selection table leaves out (the grid's own)."""


def _as_grid_row(control: dict[str, Any]) -> dict[str, Any]:
    """The validation control as a row of the selection grid (its layer, alpha, tau)."""
    row = {k: v for k, v in control.items() if k not in (*_SPEC_KEYS, "layers")}
    layers = control.get("layers") or []
    if layers:
        row["layer"] = layers[0] if len(layers) == 1 else "+".join(map(str, layers))
    return row


def _selection_text(selection: dict[str, Any]) -> str:
    """How the pick was made: the rule, with its tie-breaks, and whether a tie decided it."""
    grid, best, cot = selection["grid"], selection["best"], selection["val_cot"]
    text = (
        "Every condition tried on the validation split. The pick: the highest validation "
        "accuracy; ties go to the smaller alpha, then to the condition that steers fewer tokens "
        "(the least change that does as well)."
    )
    if not grid:
        return text
    top = max(r["accuracy"] for r in grid)
    tied = [r for r in grid if r["accuracy"] == top]
    count = f"{tied[0]['correct']}/{tied[0]['n']}; " if "correct" in tied[0] else ""
    score = f"{top:.3f} ({count}CoT {cot['accuracy']:.3f})"
    q = best["tau_quantile"]
    gate = "always on (tau quantile 1)" if q >= 1 else f"tau quantile {q:g}"
    setting = f"layer {best['layer']}, alpha {best['alpha']:g}, {gate}"
    if len(tied) == len(grid) > 1:
        every = "both" if len(grid) == 2 else f"all {len(grid)}"
        text += f" Here {every} conditions tie at {score}, so the tie rule alone chose "
    elif len(tied) > 1:
        text += f" Here {len(tied)} of {len(grid)} conditions tie at the best, {score}; the "
        text += "tie rule chose "
    else:
        text += f" Here one condition scored best, {score}: "
    return text + setting + "."


def _selection_figure(selection: dict[str, Any]) -> Any:
    return selection_grid(selection["val_cot"], selection["grid"], selection.get("val_control"))


def unfinished_figures(run: str | Path | RunDir) -> dict[str, Any]:
    """The figures a run that is still decoding already has data for: the fit split's probe
    (`fit_probe_figures`) once `als probe --probe.fit_only true` ran, and the validation grid
    once selection is done."""
    run = RunDir.of(run)
    figs: dict[str, Any] = {}
    if jsonl_exists(run.probe_table("layers")):
        figs.update(fit_probe_figures(run))
    if run.selection_path.exists():
        figs["selection_grid"] = _selection_figure(run.selection())
    if not figs:
        raise WorkbenchError(
            f"{run.root} has no results, probe tables or selection yet: run `als run` (or "
            "`als probe --probe.fit_only true`) first"
        )
    return figs


_FIT_PROBE_FIGURES = ("probe_auroc", "probe_accuracy", "probe_effect", "probe_early")
"""The fit split's probe figures, in the report's order."""


def _fit_probe_section(run: RunDir, figs: dict[str, Any]) -> Section | None:
    """The fit split's probe alone (`als probe --probe.fit_only true` on a finished run)."""
    if not jsonl_exists(run.probe_table("layers")):
        return None
    figs.update(fit_probe_figures(run))
    names = [n for n in (*_FIT_PROBE_FIGURES, "probe_difficulty") if n in figs]
    text = "The fit split's per-layer probes (`als probe --probe.fit_only true`); no trajectories."
    return (
        "Which layers carry the direction (als probe, fit split)",
        text,
        _captioned(figs, names),
        [],
    )


def _probe_section(run: RunDir, figs: dict[str, Any]) -> Section | None:
    if not run.has_probe():
        return _fit_probe_section(run, figs)
    summary = read_json(run.probe_summary_path)
    _layer_figures(read_jsonl(run.probe_table("layers")), figs)
    early = read_jsonl(run.probe_table("early"))
    best, steered = summary["best_layer"], summary["steered_layer"]
    figs["probe_early"] = early_curve(
        [r for r in early if r["layer"] in {best, steered}],
        title="How early does the trajectory tell success from failure",
    )
    figs["probe_trajectories"] = trajectory_plot(
        read_jsonl(run.probe_table("trajectory_bands")),
        fired=read_jsonl(run.probe_table("steering_fired")),
        tau=summary.get("tau"),
        title=f"Cosine to the success direction at layer {steered} while decoding (test split)",
    )
    pts = read_jsonl(run.probe_table("pca_points"))
    cents = summary["pca_centroids"]
    ev = summary["pca_explained"]
    figs["probe_pca"] = pca_scatter(
        pts,
        [
            {"x": cents["success"][0], "y": cents["success"][1], "label": "success centroid"},
            {"x": cents["failure"][0], "y": cents["failure"][1], "label": "failure centroid"},
        ],
        title=f"States at layer {steered} in the fit split's PCA plane",
        axis_labels=(f"PC1 ({ev[0]:.0%})", f"PC2 ({ev[1]:.0%})"),
    )
    b = summary["best_auroc"]
    e16 = summary["early_auroc_k16_at_best_layer"]
    text = (
        f"Best layer by cross-validated AUROC: {best} (AUROC {b['value']:.3f}, 95% CI "
        f"[{b['ci_low']:.3f}, {b['ci_high']:.3f}], n={b['n']})."
    )
    if e16:
        text += (
            f" From the first 16 generated tokens only: AUROC {e16['value']:.3f} "
            f"[{e16['ci_low']:.3f}, {e16['ci_high']:.3f}]."
        )
    text += (
        f" The table: mean cosine to the direction at layer {steered} over generated tokens, and"
        " the share of tokens below tau (where the gate would fire), averaged over the problems"
        " of each group."
    )
    drift = [{"group": g, **d} for g, d in summary["drift_by_group"].items()]
    names = [*_FIT_PROBE_FIGURES, "probe_trajectories", "probe_pca"]
    _difficulty_figure(run, figs)
    names += ["probe_difficulty"] if "probe_difficulty" in figs else []
    section = "Which layers carry the direction (als probe)"
    return (section, text, _captioned(figs, names), drift)


_SWEEP_FIGURES = (
    "sweep_heatmap",
    "sweep_deltas",
    "sweep_rules",
    "sweep_by_alpha",
    "sweep_frontier",
)


def _sweep_section(run: RunDir, figs: dict[str, Any]) -> Section | None:
    """The ablation figures and table (`als sweep`), if the run has finished sweep conditions."""
    from workbench.experiment.sweeps import cot_reference, sweep_table

    val = sweep_table(run, "val") if run.has_sweep() else []
    if not val:
        return None
    cot = cot_reference(read_rows(run.sweep_rows("val", "cot")))
    figs["sweep_heatmap"] = sweep_heatmaps(val)
    figs["sweep_deltas"] = sweep_deltas(val, title="Validation: accuracy change vs CoT")
    figs["sweep_rules"] = rule_deltas(val, title="Validation: update rules vs controls")
    figs["sweep_by_alpha"] = sweep_by_alpha(val, cot=cot)
    figs["sweep_frontier"] = sweep_frontier(val, cot=cot)
    selection = run.sweep_selection_path
    test = read_json(selection)["test"] if selection.exists() else []
    text = (
        "Validation split only; controls: random direction of the same norm, "
        "shuffled-label direction, negated direction."
    )
    if test:
        best = read_json(selection)["validation_best"]
        text += (
            f" Selected on validation: {best['name']}; the test rows below are the "
            "only test evaluations of the sweep."
        )
    return ("Ablations (als sweep)", text, _captioned(figs, _SWEEP_FIGURES), test or val)


def _compare_section(run: RunDir, figs: dict[str, Any]) -> Section | None:
    """The method comparison (`als compare`), if the run has one."""
    if not run.has_compare():
        return None
    table = read_json(run.compare_table_path)
    figs["compare_frontier"] = frontier(table)
    figs["compare_agreement"] = agreement_heatmap(read_jsonl(run.compare_verdicts_path))
    text = (
        "Same batched KV-cached decoding and accounting for every method. A baseline "
        "run on fewer problems (column n: the first n) is compared with CoT and ALS on "
        "those problems only (McNemar p, EAS, ALS speed-up). EAS: accuracy gained per "
        "unit of extra relative compute over CoT (n/a unless a method costs > 1.02x CoT)."
    )
    figs_ = _captioned(figs, ["compare_frontier", "compare_agreement"])
    return ("Methods compared (als compare)", text, figs_, table)


def _separation_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The fit split's in-sample d′ of each layer, as rows of a layer curve."""
    return [
        {"layer": int(k), "metric": "in-sample d′ (fit split)", "value": v}
        for k, v in results["fit_separation"].items()
    ]


def _norm_rows(directions: Any) -> list[dict[str, Any]]:
    """Each layer's direction length over the mean hidden-state norm there, as rows of a layer
    curve."""
    norms = directions.vectors.norm(dim=-1) / directions.mean_norm
    return [
        {"layer": layer, "metric": "||v_l|| / mean ||h_l||", "value": float(n)}
        for layer, n in zip(directions.layers, norms, strict=True)
    ]


def _mark_chosen(fig: Any, selection: dict[str, Any]) -> None:
    """Draw the chosen layer on the separation curve `fig` where one layer was steered (a layer
    set is left unmarked)."""
    chosen = selection["best"].get("layer")
    if isinstance(chosen, int):
        fig.add_vline(
            x=chosen,
            line_dash="dash",
            line_color="grey",
            annotation_text=f"chosen: layer {chosen}",
            annotation_position="bottom right",
        )


def _main_figures(
    results: dict[str, Any], selection: dict[str, Any], directions: Any
) -> dict[str, Any]:
    """The figures every finished run has, by name: test accuracy, the fit split's separation
    (the chosen layer marked), the directions' sizes and cosines, and the validation grid."""
    sep_rows = _separation_rows(results)
    norm_rows = _norm_rows(directions)
    dataset = results["config"]["dataset"]
    figs: dict[str, Any] = {
        "test_accuracy": accuracy_bars(
            results["test"], title=f"{dataset} test: accuracy of each arm (95% Wilson CI)"
        ),
        "layer_separation": layer_curve(
            sep_rows, title="Separation by layer (fit split, in-sample)", y_label="d′"
        ),
        "direction_norm": layer_curve(
            norm_rows, title="Relative size of the direction by layer", y_label="ratio"
        ),
        "direction_cosines": cosine_heatmap(
            cosine_matrix(directions.vectors).tolist(), directions.layers
        ),
        "selection_grid": _selection_figure(selection),
    }
    _mark_chosen(figs["layer_separation"], selection)
    return figs


def _result_section(results: dict[str, Any], figs: dict[str, Any]) -> Section:
    """Every arm on the test split, with the accuracy figure."""
    return (
        "Result",
        "Every arm on the held-out test problems; each steered arm is paired with CoT on the "
        "same problems (fixed: right only with the arm; broken: right only with CoT). "
        "Steered tokens: interventions per generated token and steered layer.",
        _captioned(figs, ["test_accuracy"]),
        results["test"],
    )


def _direction_section(figs: dict[str, Any]) -> Section:
    """The fit split's separation, the directions' sizes and their cosines (figures only)."""
    return (
        "Where the direction lives (fit split)",
        "In-sample separation of correct and incorrect generations along each layer's "
        "direction "
        "(optimistic: fit and scored on the same problems; see the probe section for "
        "cross-validated numbers), the direction's size, and the cosines between layers.",
        _captioned(figs, ["layer_separation", "direction_norm", "direction_cosines"]),
        [],
    )


def _selection_section(selection: dict[str, Any], figs: dict[str, Any]) -> Section:
    """The validation grid: CoT's row, every condition, and the random-direction control's row
    where the run has one."""
    control = "val_control" in selection
    return (
        "Selection on the validation split",
        _selection_text(selection)
        + (
            " The random-direction control (last row) ran after the pick, at the chosen "
            "layer, alpha and tau quantile; it could not be chosen."
            if control
            else ""
        ),
        _captioned(figs, ["selection_grid"]),
        [selection["val_cot"], *selection["grid"]]
        + ([_as_grid_row(selection["val_control"])] if control else []),
    )


def run_figures(run: str | Path | RunDir) -> tuple[dict[str, Any], list[Section]]:
    """Every figure of a run folder (by name) and the report's sections, built from disk."""
    run = RunDir.of(run)
    results, selection, directions = run.results(), run.selection(), run.directions()
    figs = _main_figures(results, selection, directions)
    sections: list[Section] = [
        _result_section(results, figs),
        _direction_section(figs),
        _selection_section(selection, figs),
    ]
    for extra in (_probe_section, _sweep_section, _compare_section):
        section = extra(run, figs)
        if section is not None:
            sections.append(section)
    sections.append(("Configuration", "", [], [dict(results["config"])]))
    return figs, sections


def build_run_report(run: str | Path | RunDir) -> Path:
    """Write every figure of the run (HTML + PNG) and `report.html`; return the report's path."""
    run = RunDir.of(run)
    figs, sections = run_figures(run)
    for name, fig in figs.items():
        save_figure(fig, run.figures / name)
    results = run.results()
    title = f"ALS run: {results['model']} on {results['config']['dataset']}"
    summary = [_verdict(results), *_details(results, run.selection())]
    return write_report(run.report_path, title, sections, summary=summary)
