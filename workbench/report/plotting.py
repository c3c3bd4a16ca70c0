"""Figure builders: tidy rows in, a plotly figure out. No I/O and no `show()` here;
`workbench.core.artifacts.save_figure` writes HTML and PNG."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

__all__ = [
    "accuracy_bars",
    "add_curve",
    "agreement_heatmap",
    "cosine_heatmap",
    "early_curve",
    "error_bars",
    "frontier",
    "layer_curve",
    "pca_scatter",
    "selection_grid",
    "trajectory_plot",
]

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#7f7f7f"]


def layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    """The house style (white template, fixed size, legend below), shared by figure modules."""
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        template="plotly_white",
        width=760,
        height=440,
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def error_bars(rows: Sequence[Mapping[str, Any]], key: str = "accuracy") -> dict[str, Any]:
    """Plotly `error_y` from each row's `key` and its `ci_low` / `ci_high`."""
    return {
        "type": "data",
        "symmetric": False,
        "array": [r["ci_high"] - r[key] for r in rows],
        "arrayminus": [r[key] - r["ci_low"] for r in rows],
    }


def _band(x: list, low: list, high: list, color: str) -> go.Scatter:
    """A shaded 95% band between `low` and `high` (no legend entry, no hover)."""
    return go.Scatter(
        x=x + x[::-1],
        y=high + low[::-1],
        fill="toself",
        fillcolor=color,
        opacity=0.15,
        line={"width": 0},
        hoverinfo="skip",
        showlegend=False,
    )


def layer_curve(
    rows: Sequence[Mapping[str, Any]], *, title: str = "Separation by layer", y_label: str = "value"
) -> go.Figure:
    """One line per `metric` over `layer`, with a band where rows carry `ci_low`/`ci_high`."""
    fig = go.Figure()
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    for i, metric in enumerate(metrics):
        sub = sorted((r for r in rows if r["metric"] == metric), key=lambda r: r["layer"])
        add_curve(fig, [r["layer"] for r in sub], sub, metric, COLORS[i % len(COLORS)])
    return layout(fig, title, "layer", y_label)


def add_curve(
    fig: go.Figure, x: list, rows: Sequence[Mapping[str, Any]], name: str, color: str
) -> None:
    """One line of `rows`' values over `x`, with its 95% band where every row has `ci_low` /
    `ci_high`."""
    if all(r.get("ci_low") is not None for r in rows):
        fig.add_trace(_band(x, [r["ci_low"] for r in rows], [r["ci_high"] for r in rows], color))
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[r["value"] for r in rows],
            mode="lines+markers",
            name=name,
            line={"color": color},
        )
    )


def accuracy_bars(
    rows: Sequence[Mapping[str, Any]], *, title: str = "Accuracy (95% Wilson CI)"
) -> go.Figure:
    """Bars of `accuracy` per `method` with error bars from `ci_low`/`ci_high`; each bar's value
    (and its count, where rows carry `correct`) is written just above its interval's upper cap,
    so that no label sits on an error bar."""
    fig = go.Figure(
        go.Bar(
            x=[r["method"] for r in rows],
            y=[r["accuracy"] for r in rows],
            error_y=error_bars(rows),
            marker_color=COLORS[: len(rows)],
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    for r in rows:
        count = f"{r['correct']}/{r['n']}" if r.get("correct") is not None else f"n={r['n']}"
        fig.add_annotation(
            x=r["method"],
            y=r["ci_high"],
            text=f"{r['accuracy']:.3f} ({count})",
            showarrow=False,
            yanchor="bottom",
            yshift=6,
            font={"size": 11},
        )
    fig.update_yaxes(range=[0, 1])
    return layout(fig, title, "method", "accuracy")


def cosine_heatmap(
    matrix: Sequence[Sequence[float]],
    layers: Sequence[int],
    *,
    title: str = "Cosine between layers' directions",
) -> go.Figure:
    """Heatmap of a layer x layer cosine-similarity matrix."""
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=list(layers),
            y=list(layers),
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            reversescale=True,
            colorbar={"title": "cos"},
        )
    )
    fig = layout(fig, title, "layer", "layer")
    fig.update_layout(width=560, height=520)
    return fig


def early_curve(rows: Sequence[Mapping[str, Any]], *, title: str = "Early prediction") -> go.Figure:
    """AUROC vs the number k of first generated tokens, one line per layer, with CI error bars."""
    fig = go.Figure()
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    for i, layer in enumerate(layers):
        sub = [r for r in rows if r["layer"] == layer]
        fig.add_trace(
            go.Scatter(
                x=[str(r["k"]) for r in sub],
                y=[r["value"] for r in sub],
                error_y=error_bars(sub, "value"),
                mode="lines+markers",
                name=f"layer {layer}",
                line={"color": COLORS[i % len(COLORS)]},
            )
        )
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey", annotation_text="chance")
    return layout(fig, title, "first k generated tokens", "AUROC (out of fold)")


def trajectory_plot(
    bands: Sequence[Mapping[str, Any]],
    *,
    fired: Sequence[Mapping[str, Any]] = (),
    tau: float | None = None,
    title: str = "Cosine to the success direction while decoding",
) -> go.Figure:
    """Mean cosine per decoding step with a 95% band, one line per group; `fired` rows
    (step, group, mean, rate) mark the steps where steering fired."""
    fig = go.Figure()
    groups = list(dict.fromkeys(b["group"] for b in bands))
    for i, group in enumerate(groups):
        sub = [b for b in bands if b["group"] == group]
        color = COLORS[i % len(COLORS)]
        x = [b["step"] for b in sub]
        fig.add_trace(_band(x, [b["ci_low"] for b in sub], [b["ci_high"] for b in sub], color))
        fig.add_trace(
            go.Scatter(
                x=x, y=[b["mean"] for b in sub], mode="lines", name=group, line={"color": color}
            )
        )
    if fired:
        fig.add_trace(
            go.Scatter(
                x=[f["step"] for f in fired],
                y=[f["mean"] for f in fired],
                mode="markers",
                name="steering fired",
                marker={"symbol": "x", "size": 6, "color": "black"},
                customdata=[f["rate"] for f in fired],
                hovertemplate="step %{x}: fired in %{customdata:.0%} of steered runs",
            )
        )
    if tau is not None:
        fig.add_hline(y=tau, line_dash="dash", line_color="grey", annotation_text="tau")
    return layout(fig, title, "generated token", "cos(h_t, v)")


def pca_scatter(
    points: Sequence[Mapping[str, Any]],
    centroids: Sequence[Mapping[str, Any]] = (),
    *,
    title: str = "States in the fit split's PCA plane",
    axis_labels: tuple[str, str] = ("PC1", "PC2"),
) -> go.Figure:
    """Scatter of per-problem states (x, y, group, id) with centroids (x, y, label) as stars."""
    fig = go.Figure()
    groups = list(dict.fromkeys(p["group"] for p in points))
    for i, group in enumerate(groups):
        sub = [p for p in points if p["group"] == group]
        fig.add_trace(
            go.Scatter(
                x=[p["x"] for p in sub],
                y=[p["y"] for p in sub],
                mode="markers",
                name=group,
                text=[p.get("id", "") for p in sub],
                opacity=0.7,
                marker={"color": COLORS[i % len(COLORS)], "size": 7},
            )
        )
    for c in centroids:
        fig.add_trace(
            go.Scatter(
                x=[c["x"]],
                y=[c["y"]],
                mode="markers+text",
                name=c["label"],
                text=[c["label"]],
                textposition="top center",
                marker={"symbol": "star", "size": 16, "color": "black"},
            )
        )
    return layout(fig, title, *axis_labels)


def frontier(
    table: Sequence[Mapping[str, Any]], *, title: str = "Efficiency-accuracy frontier"
) -> go.Figure:
    """Accuracy (95% CI) against seconds per problem (log scale), one point per method.

    A method run on fewer problems than the others is labelled with its n."""
    fig = go.Figure()
    n_max = max((r["n"] for r in table), default=0)
    for i, r in enumerate(table):
        label = r["method"] if r["n"] == n_max else f"{r['method']} (n={r['n']})"
        fig.add_trace(
            go.Scatter(
                x=[r["seconds_per_problem"]],
                y=[r["accuracy"]],
                mode="markers+text",
                name=label,
                text=[label],
                textposition="top center" if i % 2 == 0 else "bottom center",  # neighbours apart
                error_y=error_bars([r]),
                marker={"size": 11, "color": COLORS[i % len(COLORS)]},
            )
        )
    secs = [r["seconds_per_problem"] for r in table if r["seconds_per_problem"] > 0]
    if secs:  # room for the labels at both ends (log axis: range in log10 units), 1-2-5 ticks
        lo, hi = min(secs) / 1.6, max(secs) * 1.6
        ticks = [
            m * 10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            for m in (1, 2, 5)
        ]  # fmt: skip
        ticks = [t for t in ticks if lo <= t <= hi]
        labels = [f"{t:g}" for t in ticks]
        fig.update_xaxes(range=[math.log10(lo), math.log10(hi)], tickvals=ticks, ticktext=labels)
    fig.update_xaxes(type="log")
    return layout(fig, title, "seconds per problem (log)", "accuracy")


def agreement_heatmap(
    verdicts: Sequence[Mapping[str, Any]], *, title: str = "Per-problem agreement between methods"
) -> go.Figure:
    """Share of shared problems on which two methods' verdicts (correct / incorrect) agree."""
    by_method: dict[str, dict[str, bool]] = {}
    for v in verdicts:
        by_method.setdefault(v["method"], {})[v["id"]] = bool(v["correct"])
    names = list(by_method)
    z = []
    for a in names:
        row = []
        for b in names:
            shared = set(by_method[a]) & set(by_method[b])
            same = sum(by_method[a][i] == by_method[b][i] for i in shared)
            row.append(same / len(shared) if shared else float("nan"))
        z.append(row)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            text=[[f"{v:.2f}" for v in row] for row in z],
            texttemplate="%{text}",
            colorbar={"title": "agree"},
        )
    )
    fig = layout(fig, title, "method", "method")
    fig.update_layout(width=560, height=520)
    return fig


def _condition(row: Mapping[str, Any]) -> str:
    q = "always" if row["tau_quantile"] >= 1 else f"q{row['tau_quantile']:g}"
    return f"L{row['layer']} a{row['alpha']:g} {q}"


def selection_grid(
    cot: Mapping[str, Any],
    grid: Sequence[Mapping[str, Any]],
    control: Mapping[str, Any] | None = None,
    *,
    title: str = "Validation accuracy of every condition (95% Wilson CI)",
) -> go.Figure:
    """Each grid condition's accuracy (`layer`, `alpha`, `tau_quantile`, `accuracy`, `ci_low`,
    `ci_high`) as a point with its interval, one colour per layer, against CoT's accuracy and
    interval as a horizontal band; the random-direction control, if given, as its own point."""
    x_all = [_condition(r) for r in grid] + (["random control"] if control else [])
    fig = go.Figure(
        _band(x_all, [cot["ci_low"]] * len(x_all), [cot["ci_high"]] * len(x_all), "grey")
    )
    fig.add_trace(
        go.Scatter(
            x=x_all,
            y=[cot["accuracy"]] * len(x_all),
            mode="lines",
            name=f"CoT {cot['accuracy']:.2f}",
            line={"color": "grey", "dash": "dash"},
        )
    )
    points = [(f"layer {ly}", [r for r in grid if r["layer"] == ly]) for ly in _layers(grid)]
    if control:
        points.append(("random direction", [control]))
    for i, (name, rows) in enumerate(points):
        fig.add_trace(
            go.Scatter(
                x=[_condition(r) if r is not control else "random control" for r in rows],
                y=[r["accuracy"] for r in rows],
                error_y=error_bars(rows),
                mode="markers",
                name=name,
                marker={"color": COLORS[i % len(COLORS)], "size": 9},
            )
        )
    top = max(r["ci_high"] for r in [cot, *grid, *([control] if control else [])])
    fig.update_yaxes(range=[0, min(1.0, top + 0.1)])
    fig = layout(fig, title, "condition (layer, alpha, tau quantile)", "accuracy")
    fig.update_layout(height=520, legend={"orientation": "h", "y": -0.5})
    return fig


def _layers(grid: Sequence[Mapping[str, Any]]) -> list[int]:
    return sorted({r["layer"] for r in grid})
