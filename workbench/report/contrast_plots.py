"""Figures of the difficulty-controlled analysis (`workbench.experiment.contrast_run`): tidy rows
in, a plotly figure out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from workbench.report.plotting import COLORS, error_bars, layer_curve, layout

__all__ = [
    "CONTRAST_LABELS",
    "contrast_cosine_curves",
    "contrast_probe_curves",
    "difficulty_strata_curves",
    "router_frontier",
]

CONTRAST_LABELS: dict[str, str] = {
    "auroc_pooled": "pooled AUROC (all chains)",
    "auroc_within": "within-problem AUROC (within direction)",
    "auroc_within_of_pooled": "within-problem AUROC (pooled direction)",
    "spearman_pass_rate": "last prompt token: Spearman with pass rate",
    "auroc_pooled_of_length": "control: chain length, pooled AUROC",
    "auroc_within_of_length": "control: chain length, within-problem AUROC",
    "auroc_pooled_of_tokens": "control: bag of tokens, pooled AUROC",
    "auroc_within_of_tokens": "control: bag of tokens, within-problem AUROC",
    "cos_pooled_within": "cos(pooled, within)",
    "cos_pooled_difficulty": "cos(pooled, difficulty)",
    "cos_within_difficulty": "cos(within, difficulty)",
    "pooled_share_along_difficulty": "pooled's share along difficulty (cos^2)",
    "auroc": "AUROC, all pairs",
    "auroc_within_difficulty": "AUROC within strata of pass rate",
    "auroc_of_difficulty": "pass rate alone",
}
"""Reader's names of the tables' metrics."""


def _relabel(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    return [{**r, "metric": CONTRAST_LABELS[m]} for m in metrics for r in rows if r["metric"] == m]


def contrast_probe_curves(
    rows: Sequence[Mapping[str, Any]],
    *,
    controls: Sequence[Mapping[str, Any]] = (),
    title: str = "Reasoning or difficulty? Probes by layer",
) -> go.Figure:
    """Pooled AUROC, within-problem AUROC (of both directions) and the last-prompt Spearman with
    pass rate over layers, 95% bands; AUROC's chance (0.5) marked, and each within-problem
    control row (layer None: chain length, bag of tokens) as a gray level in the legend."""
    metrics = ("auroc_pooled", "auroc_within", "auroc_within_of_pooled", "spearman_pass_rate")
    fig = layer_curve(_relabel(rows, metrics), title=title, y_label="AUROC / Spearman rho")
    fig.add_hline(y=0.5, line_dash="dot", line_color="gray", annotation_text="AUROC chance")
    span = [min(r["layer"] for r in rows), max(r["layer"] for r in rows)] if rows else [0, 1]
    dashes = iter(("dash", "dashdot", "longdash"))
    for r in controls:
        if r["metric"].startswith("auroc_within_of_"):
            _level(
                fig,
                span,
                r,
                next(dashes, "dot"),
                f"{CONTRAST_LABELS[r['metric']]} {r['value']:.3f}",
            )
    fig.update_layout(height=500, legend={"orientation": "h", "y": -0.25})
    return fig


def difficulty_strata_curves(
    rows: Sequence[Mapping[str, Any]], *, title: str | None = None
) -> go.Figure:
    """A greedy run's fit probe by layer (`workbench.core.strata`): the AUROC over all pairs and
    within strata of a pass rate measured by sampled chains, 95% bands; chance (0.5) and the pass
    rate's own AUROC (the layer-None row) as levels."""
    per_layer = [r for r in rows if r["layer"] is not None]
    fig = layer_curve(
        _relabel(per_layer, ("auroc", "auroc_within_difficulty")),
        title=title or _strata_title(rows),
        y_label="AUROC",
    )
    fig.add_hline(y=0.5, line_dash="dot", line_color="gray", annotation_text="chance")
    span = [min(r["layer"] for r in per_layer), max(r["layer"] for r in per_layer)]
    for r in rows:
        if r["metric"] == "auroc_of_difficulty":
            ci = f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            name = f"{CONTRAST_LABELS[r['metric']]} {r['value']:.3f} {ci}"
            _level(fig, span, r, "dash", name)
    fig.update_layout(height=500, legend={"orientation": "h", "y": -0.25})
    return fig


def _level(fig: go.Figure, span: list, row: Mapping[str, Any], dash: str, name: str) -> None:
    """A row without a layer (a control) as a gray horizontal level over the layers `span`."""
    line = {"color": "gray", "dash": dash}
    fig.add_trace(go.Scatter(x=span, y=[row["value"]] * 2, mode="lines", line=line, name=name))


def _strata_title(rows: Sequence[Mapping[str, Any]]) -> str:
    model = rows[0].get("difficulty_model", "") if rows else ""
    chains = f"the {model} model's sampled chains" if model else "sampled chains"
    return f"The fit probe beyond difficulty: AUROC within strata of pass rate ({chains})"


def contrast_cosine_curves(
    rows: Sequence[Mapping[str, Any]], *, title: str = "How the three directions relate, by layer"
) -> go.Figure:
    """Cosines among the pooled, within-problem and difficulty directions over layers, and the
    pooled direction's share along difficulty, 95% bands."""
    metrics = (
        "cos_pooled_within",
        "cos_pooled_difficulty",
        "cos_within_difficulty",
        "pooled_share_along_difficulty",
    )
    fig = layer_curve(_relabel(rows, metrics), title=title, y_label="cosine / share")
    fig.add_hline(y=0.0, line_dash="dot", line_color="gray")
    fig.update_layout(height=500, legend={"orientation": "h", "y": -0.25})
    return fig


def router_frontier(
    table: Sequence[Mapping[str, Any]],
    *,
    cost: str = "tokens_per_problem",
    title: str = "The direction as a router: accuracy against cost",
) -> go.Figure:
    """Accuracy (95% Wilson intervals) against `cost` for every method of a router table: the
    routers over their budgets as lines (difficulty-routed, random-routed), the fixed methods
    (CoT, SC@k, ALS arms, the oracle) as points; a method without that cost (an ALS arm with no
    re-timed seconds) is left out."""
    table = [r for r in table if r[cost] is not None]
    fig = go.Figure()
    lines = {"router@": "difficulty router", "router-random@": "random router"}
    for i, (prefix, name) in enumerate(lines.items()):
        rows = sorted((r for r in table if r["method"].startswith(prefix)), key=lambda r: r[cost])
        fig.add_trace(
            go.Scatter(
                x=[r[cost] for r in rows],
                y=[r["accuracy"] for r in rows],
                error_y=error_bars(rows),
                text=[f"{r['budget']:.0%} to SC" for r in rows],
                mode="lines+markers",
                name=name,
                line={"color": COLORS[i], "dash": "solid" if i == 0 else "dot"},
            )
        )
    fixed = [r for r in table if not any(r["method"].startswith(p) for p in lines)]
    for j, r in enumerate(fixed):
        fig.add_trace(
            go.Scatter(
                x=[r[cost]],
                y=[r["accuracy"]],
                error_y=error_bars([r]),
                mode="markers",
                name=r["method"],
                marker={"size": 10, "color": COLORS[(j + 2) % len(COLORS)]},
            )
        )
    label = {
        "tokens_per_problem": "generated tokens per problem",
        "seconds_per_problem": "seconds per problem",
    }.get(cost, cost)
    return layout(fig, title, label, "accuracy")
