"""Figure builders: tidy rows in, a plotly figure out. No I/O and no `show()` here;
`workbench.artifacts.save_figure` writes HTML and PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

__all__ = ["accuracy_bars", "cosine_heatmap", "layer_curve"]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#7f7f7f"]


def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
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


def layer_curve(
    rows: Sequence[Mapping[str, Any]], *, title: str = "Separation by layer", y_label: str = "value"
) -> go.Figure:
    """One line per `metric` over `layer`, with a band where rows carry `ci_low`/`ci_high`."""
    fig = go.Figure()
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    for i, metric in enumerate(metrics):
        sub = sorted((r for r in rows if r["metric"] == metric), key=lambda r: r["layer"])
        color = _COLORS[i % len(_COLORS)]
        x = [r["layer"] for r in sub]
        if all(r.get("ci_low") is not None for r in sub):
            fig.add_trace(
                go.Scatter(
                    x=x + x[::-1],
                    y=[r["ci_high"] for r in sub] + [r["ci_low"] for r in sub][::-1],
                    fill="toself",
                    fillcolor=color,
                    opacity=0.15,
                    line={"width": 0},
                    hoverinfo="skip",
                    showlegend=False,
                    name=f"{metric} 95% CI",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[r["value"] for r in sub],
                mode="lines+markers",
                name=metric,
                line={"color": color},
            )
        )
    return _layout(fig, title, "layer", y_label)


def accuracy_bars(
    rows: Sequence[Mapping[str, Any]], *, title: str = "Accuracy (95% Wilson CI)"
) -> go.Figure:
    """Bars of `accuracy` per `method` with error bars from `ci_low`/`ci_high`."""
    fig = go.Figure(
        go.Bar(
            x=[r["method"] for r in rows],
            y=[r["accuracy"] for r in rows],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [r["ci_high"] - r["accuracy"] for r in rows],
                "arrayminus": [r["accuracy"] - r["ci_low"] for r in rows],
            },
            text=[f"{r['accuracy']:.2f} (n={r['n']})" for r in rows],
            textposition="outside",
            marker_color=_COLORS[: len(rows)],
        )
    )
    fig.update_yaxes(range=[0, 1])
    return _layout(fig, title, "method", "accuracy")


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
    fig = _layout(fig, title, "layer", "layer")
    fig.update_layout(width=560, height=520)
    return fig
