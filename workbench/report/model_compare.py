"""Two models on the same problems: probe curves on relative depth, and who fixes what.

Tidy rows in, a figure or a table out; the reading of run folders is the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from workbench.report.plotting import COLORS, add_curve, layout

__all__ = ["depth_curves", "paired_outcomes"]


def depth_curves(
    curves: Mapping[str, tuple[int, Sequence[Mapping[str, Any]]]],
    *,
    title: str = "Which depth carries the direction? Two models",
) -> go.Figure:
    """Per model (name -> (its number of layers, its per-layer rows with value / ci_low /
    ci_high)), the curve over relative depth layer / n_layers, with its 95% band."""
    fig = go.Figure()
    for i, (name, (n_layers, rows)) in enumerate(curves.items()):
        rows = sorted(rows, key=lambda r: r["layer"])
        x = [r["layer"] / n_layers for r in rows]
        add_curve(fig, x, rows, name, COLORS[i % len(COLORS)])
    fig.add_hline(y=0.5, line_dash="dot", line_color="gray")
    return layout(fig, title, "relative depth (layer / n_layers)", "cross-validated AUROC")


def paired_outcomes(
    small: Mapping[str, Sequence[Mapping[str, Any]]],
    large: Mapping[str, Sequence[Mapping[str, Any]]],
) -> dict[str, int]:
    """On the problems both models decoded: CoT right/wrong for each model, and what the larger
    model's CoT does on the problems where steering the smaller one broke (CoT right, ALS wrong)
    or fixed (CoT wrong, ALS right) the answer. Each argument maps an arm ('cot', 'als') to its
    rows."""

    def verdicts(rows: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
        return {r["id"]: bool(r["correct"]) for r in rows}

    s_cot, l_cot = verdicts(small["cot"]), verdicts(large["cot"])
    s_als = verdicts(small.get("als", []))
    both = sorted(set(s_cot) & set(l_cot))
    broke = [p for p in both if p in s_als and s_cot[p] and not s_als[p]]
    fixed = [p for p in both if p in s_als and not s_cot[p] and s_als[p]]
    return {
        "problems": len(both),
        "both_right": sum(s_cot[p] and l_cot[p] for p in both),
        "only_small_right": sum(s_cot[p] and not l_cot[p] for p in both),
        "only_large_right": sum(l_cot[p] and not s_cot[p] for p in both),
        "both_wrong": sum(not s_cot[p] and not l_cot[p] for p in both),
        "small_als_broke": len(broke),
        "large_cot_right_where_small_als_broke": sum(l_cot[p] for p in broke),
        "small_als_fixed": len(fixed),
        "large_cot_right_where_small_als_fixed": sum(l_cot[p] for p in fixed),
    }
