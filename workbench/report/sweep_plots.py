"""Figure builders for sweeps: rows of `workbench.experiment.sweeps.sweep_table` in, a plotly figure
out. No I/O and no `show()` here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.report.plotting import COLORS, error_bars, layout

__all__ = ["rule_deltas", "sweep_by_alpha", "sweep_deltas", "sweep_frontier", "sweep_heatmaps"]

_KIND_NAMES = {"als": "ALS direction", "random": "random", "shuffled": "shuffled labels"}


def _kind(row: Mapping[str, Any]) -> str:
    kind = row["direction"].split(":")[0]
    return _KIND_NAMES.get(kind, kind)


def _by_kind(
    table: Sequence[Mapping[str, Any]], x: str, y: str, *, grouped: bool = False
) -> list[go.Scatter]:
    """One marker trace per direction kind: `y` (with the accuracy CI) against `x`."""
    traces = []
    for i, kind in enumerate(dict.fromkeys(map(_kind, table))):
        sub = [r for r in table if _kind(r) == kind]
        traces.append(
            go.Scatter(
                x=[r[x] for r in sub],
                y=[r[y] for r in sub],
                error_y=error_bars(sub),
                mode="markers",
                name=kind,
                text=[r["name"] for r in sub],
                marker={"size": 9, "color": COLORS[i % len(COLORS)]},
                offsetgroup=kind if grouped else None,
            )
        )
    return traces


def sweep_heatmaps(table: Sequence[Mapping[str, Any]], *, direction: str = "als") -> go.Figure:
    """Accuracy over alpha x tau quantile, one panel per layer set (one direction kind)."""
    rows = [r for r in table if r["direction"] == direction]
    sets = list(dict.fromkeys(r["layers"] for r in rows)) or ["-"]
    fig = make_subplots(rows=1, cols=len(sets), subplot_titles=[f"layers {s}" for s in sets])
    alphas = sorted({r["alpha"] for r in rows})
    taus = sorted({r["tau_quantile"] for r in rows})
    for j, s in enumerate(sets, 1):
        z = [
            [
                next(
                    (
                        r["accuracy"]
                        for r in rows
                        if r["layers"] == s and r["alpha"] == a and r["tau_quantile"] == q
                    ),
                    None,
                )
                for a in alphas
            ]
            for q in taus
        ]
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=[str(a) for a in alphas],
                y=[str(q) for q in taus],
                zmin=0,
                zmax=1,
                colorscale="Viridis",
                showscale=j == 1,
                texttemplate="%{z:.2f}",
            ),
            row=1,
            col=j,
        )
    fig.update_layout(
        title=f"Validation accuracy over alpha x tau ({direction})",
        template="plotly_white",
        width=320 * len(sets) + 200,
        height=420,
    )
    fig.update_xaxes(title_text="alpha (relative)")
    fig.update_yaxes(title_text="tau quantile", col=1)
    return fig


def sweep_deltas(
    table: Sequence[Mapping[str, Any]], *, title: str = "Accuracy change vs CoT"
) -> go.Figure:
    """Accuracy minus CoT per condition (with the condition's CI shifted alike), ALS vs controls,
    against the intervention rate."""
    fig = go.Figure(_by_kind(table, "intervention_rate", "delta_vs_cot"))
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    return layout(fig, title, "intervention rate", "accuracy - CoT accuracy")


def rule_deltas(
    table: Sequence[Mapping[str, Any]], *, title: str = "Accuracy change vs CoT by update rule"
) -> go.Figure:
    """Per update rule (x), every condition's accuracy minus CoT with its 95% CI, coloured by
    direction: the ALS direction beside its controls at the same settings."""
    rules = list(dict.fromkeys(r["rule"] for r in table))
    fig = go.Figure(_by_kind(table, "rule", "delta_vs_cot", grouped=True))
    fig.update_layout(scattermode="group")
    fig.update_xaxes(categoryorder="array", categoryarray=rules)
    fig.add_hline(y=0, line_dash="dot", line_color="grey")
    return layout(fig, title, "update rule", "accuracy - CoT accuracy")


_BY_ALPHA = (
    ("tokens_per_problem", "generated tokens / problem"),
    ("repetition", "repeated 4-gram share"),
    ("kl_at_steered", "KL at steered steps (nats)"),
    ("entropy_delta_at_steered", "entropy change at steered steps"),
)


def sweep_by_alpha(
    table: Sequence[Mapping[str, Any]],
    *,
    cot: Mapping[str, Any] | None = None,
    title: str = "Tokens, repetition and next-token effects vs alpha",
) -> go.Figure:
    """Four panels over alpha, one line per direction kind and update rule (means over the other
    factors); `cot` (a row with tokens_per_problem and repetition) draws CoT's level as a dotted
    line."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[label for _, label in _BY_ALPHA])
    groups = list(dict.fromkeys((_kind(r), r["rule"]) for r in table))
    for i, (kind, rule) in enumerate(groups):
        sub = [r for r in table if (_kind(r), r["rule"]) == (kind, rule)]
        alphas = sorted({r["alpha"] for r in sub})
        for j, (key, _) in enumerate(_BY_ALPHA):
            ys = []
            for a in alphas:
                vals = [r[key] for r in sub if r["alpha"] == a and r.get(key) is not None]
                ys.append(sum(vals) / len(vals) if vals else None)
            fig.add_trace(
                go.Scatter(
                    x=alphas,
                    y=ys,
                    mode="lines+markers",
                    name=f"{kind}, {rule}",
                    legendgroup=f"{kind}, {rule}",
                    showlegend=j == 0,
                    line={"color": COLORS[i % len(COLORS)]},
                ),
                row=j // 2 + 1,
                col=j % 2 + 1,
            )
    if cot is not None:
        for j, (key, _) in enumerate(_BY_ALPHA[:2]):
            if cot.get(key) is not None:
                fig.add_hline(y=cot[key], line_dash="dot", line_color="grey", row=1, col=j + 1)
    fig.update_xaxes(title_text="alpha (relative)")
    fig.update_layout(
        title=title, template="plotly_white", width=900, height=640, legend={"orientation": "h"}
    )
    return fig


def sweep_frontier(
    table: Sequence[Mapping[str, Any]],
    *,
    cot: Mapping[str, Any] | None = None,
    title: str = "Efficiency-accuracy frontier of the sweep",
) -> go.Figure:
    """Accuracy (95% CI) against generated tokens per problem, one point per condition, coloured
    by direction kind; `cot` (accuracy, ci_low, ci_high, tokens_per_problem) is the reference
    point."""
    fig = go.Figure(_by_kind(table, "tokens_per_problem", "accuracy"))
    if cot is not None:
        fig.add_trace(
            go.Scatter(
                x=[cot["tokens_per_problem"]],
                y=[cot["accuracy"]],
                error_y=error_bars([cot]),
                mode="markers+text",
                text=["CoT"],
                textposition="top center",
                name="greedy CoT",
                marker={"size": 12, "symbol": "diamond", "color": "black"},
            )
        )
    return layout(fig, title, "generated tokens per problem", "accuracy")
