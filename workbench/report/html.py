"""A self-contained `report.html` for a run: a summary on top, tables formatted for reading and
interactive figures with captions, no wider than the page.

Tables take rows as the library writes them (summaries, selection rows, ...) and format them here:
numbers rounded by what they are (proportions to 3 decimals, rates as percentages, p-values to 2
significant digits), an estimate and its `ci_low`/`ci_high` as one interval (`0.278 [0.236,
0.323]`), paired counts as `fixed / broken`, finish reasons as counts in words, lists joined,
None as a dash; a one-row table with many columns reads down the page as setting | value. Tables
scroll inside their own box when they are wider than the page; figures are responsive up to their
designed width. plotly.js is embedded once, so the page opens offline.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Section", "finish_words", "interval", "number", "p_value", "write_report"]

Section = tuple[str, str, Sequence[Any], Sequence[Mapping[str, Any]]]
"""(heading, paragraph text, plotly figures, table rows); a figure may come as (figure, caption)
where the caption says what to look for in it."""

DASH = "\u2013"
"""What a missing value (None, NaN) reads as."""

_LABELS = {
    "accuracy": "accuracy",
    "tokens_per_problem": "tokens / problem",
    "seconds_per_problem": "seconds / problem",
    "intervention_rate": "steered tokens",
    "no_answer": "no answer",
    "finish": "finished",
    "json_valid": "valid JSON",
    "json_whole": "whole-output JSON",
    "correct_whole": "correct, whole-output JSON",
    "mcnemar_p": "McNemar p",
    "tau_quantile": "tau quantile",
    "n_candidate_layers": "candidate layers (number)",
    "delta_vs_cot": "change vs CoT",
    "eas": "EAS",
    "als_speedup": "ALS speed-up",
    "tradeoff": "trade-off",
    "tradeoff_change_vs_cot": "trade-off vs CoT",
    "tradeoff_n": "trade-off n",
    "cot_accuracy_same": "CoT on these",
    "als_accuracy_same": "ALS on these",
    "forward_passes": "forward passes / problem",
    "backward_passes": "backward passes / problem",
    "mean_cos": "mean cos(h, v)",
    "frac_below_tau": "below tau",
    "timed_with_cot": "timed with CoT",
}
_PERCENT = {"intervention_rate", "frac_below_tau", "repetition"}
"""Rates shown as percentages."""
_PROPORTION = {
    "accuracy",
    "ci_low",
    "ci_high",
    "value",
    "auroc",
    "cot_accuracy_same",
    "als_accuracy_same",
}
"""Proportions in [0, 1], shown to 3 decimals."""
_SIGNED = {"delta_vs_cot"}
_SETTINGS = {"alpha", "alphas", "tau", "tau_quantile", "tau_quantiles", "reference_alpha"}
"""Settings chosen by hand, shown as given (`0.05`, `0.5`)."""
_ESTIMATES = ("accuracy", "value", "auroc", "mean")
"""The column an interval (`ci_low`, `ci_high`) belongs to: the first of these a table has."""
_FINISH = {"stop": "at the answer", "length": "at the cap", "eos": "at EOS"}
_FIRST = (
    "method",
    "name",
    "direction",
    "group",
    "metric",
    "layer",
    "layers",
    "alpha",
    "tau_quantile",
    "tau",
    "n",
    "correct",
    *_ESTIMATES,
    "delta_vs_cot",
    "only_method",
    "mcnemar_p",
)
_LAST = ("no_answer", "json_valid", "json_whole", "correct_whole", "finish")
"""Column order: what a row is and its result first, the diagnostics last (a table wider than the
page scrolls, so the first columns are the ones always in view)."""


def _order(cols: list[str]) -> list[str]:
    first = [c for c in _FIRST if c in cols]
    last = [c for c in _LAST if c in cols]
    return first + [c for c in cols if c not in first and c not in last] + last


def p_value(p: float | None) -> str:
    """`0.43`, `0.0012`, `< 0.001`; a dash for None."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return DASH
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def interval(value: float | None, low: float | None, high: float | None, digits: int = 3) -> str:
    """`0.278 [0.236, 0.323]`: an estimate and its 95% interval."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if low is None or high is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def finish_words(counts: Mapping[str, int]) -> str:
    """`{'stop': 377, 'length': 21, 'eos': 2}` -> `377 stopped at the answer, 21 at the cap,
    2 at EOS` (most frequent first)."""
    order = list(_FINISH)
    reasons = sorted(
        counts, key=lambda r: (-counts[r], order.index(r) if r in order else len(order), r)
    )
    words = [f"{counts[r]:,} {_FINISH.get(r, r)}" for r in reasons]
    if words:
        words[0] = words[0].replace(" ", " stopped ", 1)
    return ", ".join(words) or DASH


def number(value: Any, key: str = "", *, whole: bool | None = None) -> str:
    """One value as it reads in a table: rounded by what `key` names, None as a dash, lists
    joined, mappings as `key: value`, booleans as yes / no. A measurement reads with 3
    significant digits (`6.50`, `14.8`, `284`) unless `whole` (its column holds whole numbers
    only; None: this value is one)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key in _PERCENT and isinstance(value, int | float):
        return f"{100 * value:.1f}%"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if key.endswith("_p") or key == "p":
            return p_value(value)
        if key in _SIGNED:
            return f"{value:+.3f}"
        if key.endswith("change_vs_cot"):
            return f"{value:+.1f}%"
        if key in _PROPORTION:
            return f"{value:.3f}"
        if key in _SETTINGS:
            return f"{value:.3g}"
        whole = value.is_integer() if whole is None else whole
        if whole or abs(value) >= 100 or math.isinf(value):
            return f"{value:,.0f}" if math.isfinite(value) else str(value)
        return f"{value:#.3g}"
    if isinstance(value, Mapping):
        if key == "finish":
            return finish_words(value)
        return "; ".join(f"{k}: {number(v, str(k))}" for k, v in value.items()) or DASH
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(number(v, key) for v in value) or DASH
    return str(value)


def _label(key: str) -> str:
    return _LABELS.get(key, key.replace("_", " "))


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _display(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[tuple[str, bool]]]]:
    """Headers and cells (text, numeric?) of `rows`: intervals and paired counts merged, columns
    empty in every row left out."""
    cols = _order(list(dict.fromkeys(k for r in rows for k in r)))
    if len(rows) > 1:  # a column empty in every row says nothing (one row: a setting that is None)
        cols = [c for c in cols if any(r.get(c) not in (None, "", [], {}) for r in rows)]
    cells: dict[str, tuple[str, list[tuple[str, bool]]]] = {}
    estimate = next((c for c in _ESTIMATES if c in cols), None)
    if estimate and {"ci_low", "ci_high"} <= set(cols):
        cells[estimate] = (
            f"{_label(estimate)} [95% CI]",
            [(interval(r.get(estimate), r.get("ci_low"), r.get("ci_high")), True) for r in rows],
        )
        cols = [c for c in cols if c not in ("ci_low", "ci_high")]
    if {"only_base", "only_method"} <= set(cols):
        bases = {r.get("base") for r in rows} - {None}
        against = "CoT" if bases == {"cot"} else next(iter(bases)) if len(bases) == 1 else "base"
        cells["only_method"] = (
            f"fixed / broken vs {against}",
            [
                (DASH, True)
                if r.get("only_method") is None
                else (f"{r['only_method']:,} / {r.get('only_base', 0):,}", True)
                for r in rows
            ],
        )
        cols = [c for c in cols if c != "only_base" and (c != "base" or len(bases) > 1)]
    headers, columns = [], []
    for c in cols:
        floats = [r[c] for r in rows if isinstance(r.get(c), float) and math.isfinite(r[c])]
        whole = all(v.is_integer() for v in floats)
        label, column = cells.get(
            c,
            (_label(c), [(number(r.get(c), c, whole=whole), _numeric(r.get(c))) for r in rows]),
        )
        headers.append(label)
        columns.append(column)
    return headers, [list(row) for row in zip(*columns, strict=True)] if columns else []


def _td(text: str, numeric: bool, tag: str = "td") -> str:
    kind = " class=num" if numeric else " class=long" if len(text) > 16 and tag == "td" else ""
    return f"<{tag}{kind}>{html.escape(text)}</{tag}>"


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A table for reading, in a box that scrolls sideways if it is wider than the page; one row
    with many columns reads down the page (setting | value)."""
    if not rows:
        return ""
    headers, body = _display(rows)
    if len(body) == 1 and len(headers) > 6:
        lines = "".join(
            f"<tr><th scope=row>{html.escape(h)}</th>{_td(*c)}</tr>"
            for h, c in zip(headers, body[0], strict=True)
        )
        table = f"<table class=settings><tbody>{lines}</tbody></table>"
    else:
        numeric = [all(row[i][1] or row[i][0] == DASH for row in body) for i in range(len(headers))]
        head = "".join(_td(h, n, "th") for h, n in zip(headers, numeric, strict=True))
        lines = "".join(
            "<tr>" + "".join(_td(c[0], n) for c, n in zip(row, numeric, strict=True)) + "</tr>"
            for row in body
        )
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>"
    return f"<div class=table-wrap>{table}</div>"


def _figure(fig: Any, caption: str, plotlyjs: bool) -> str:
    """A responsive plotly figure, no wider than it was designed (nor than the page), captioned."""
    import plotly.graph_objects as go

    fig = go.Figure(fig)  # a copy: the caller's figure keeps its size for PNG export
    width, height = fig.layout.width, fig.layout.height or 450
    fig.update_layout(width=None, autosize=True)
    div = fig.to_html(
        full_html=False,
        include_plotlyjs=plotlyjs,
        default_width="100%",
        default_height=f"{height}px",
        config={"responsive": True, "displaylogo": False},
    )
    style = f" style='max-width:{width}px'" if width else ""
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f"<figure{style}>{div}{text}</figure>"


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or "section"


_STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1280px;margin:0 auto;
padding:1.5em 1.5em 4em;color:#222;line-height:1.5}
h1{font-size:1.7em;margin:.4em 0 .2em}h2{margin-top:2em;border-bottom:1px solid #e4e4e4}
.summary{background:#f4f7fb;border-left:4px solid #3366aa;padding:.6em 1.2em;margin:1em 0}
.summary p{margin:.5em 0}.verdict{font-size:1.15em;font-weight:600}
nav{font-size:.92em;color:#555}nav a{margin-right:1.2em;color:#3366aa;white-space:nowrap}
p{max-width:80ch}
.table-wrap{max-width:100%;overflow-x:auto;margin:1em 0}
table{border-collapse:collapse;font-size:.86em;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #ddd;padding:4px 5px;text-align:left;vertical-align:top}
thead th{background:#f3f3f3;border-bottom:2px solid #ccc;vertical-align:bottom;font-weight:600}
td{max-width:24em}.num{text-align:right}td.num,td:first-child{white-space:nowrap}
td.long{min-width:11em}
tbody tr:nth-child(even){background:#fafafa}
table.settings th{background:none;font-weight:500;color:#555}
figure{margin:1.5em 0;max-width:100%}
figcaption{color:#555;font-size:.92em;margin-top:.4em;max-width:80ch}
"""


def write_report(
    path: str | Path, title: str, sections: Sequence[Section], *, summary: Sequence[str] = ()
) -> Path:
    """Write one HTML page: the title, `summary` (its first paragraph, the verdict, in bold) with
    links to the sections, then each section's text, table and captioned figures. plotly.js is
    embedded once, so the page opens offline."""
    parts = [
        "<!doctype html><html lang=en><head><meta charset='utf-8'>",
        "<meta name=viewport content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if summary:
        paragraphs = "".join(
            f"<p{' class=verdict' if i == 0 else ''}>{html.escape(text)}</p>"
            for i, text in enumerate(summary)
        )
        parts.append(f"<section class=summary>{paragraphs}</section>")
    links = " ".join(
        f"<a href='#{_anchor(heading)}'>{html.escape(heading)}</a>" for heading, *_ in sections
    )
    parts.append(f"<nav>Sections: {links}</nav>")
    first = True
    for heading, text, figures, rows in sections:
        parts.append(f"<h2 id='{_anchor(heading)}'>{html.escape(heading)}</h2>")
        if text:
            parts.append(f"<p>{html.escape(text)}</p>")
        parts.append(_table(rows))
        for entry in figures:
            fig, caption = entry if isinstance(entry, tuple) else (entry, "")
            parts.append(_figure(fig, caption, plotlyjs=first))
            first = False
    parts.append("</body></html>")
    path = Path(path)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
