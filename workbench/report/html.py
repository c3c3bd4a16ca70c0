"""A self-contained `report.html` for a run: headline text, tables and interactive figures."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Section", "write_report"]

Section = tuple[str, str, Sequence[Any], Sequence[Mapping[str, Any]]]
"""(heading, paragraph text, plotly figures, table rows)."""


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(path: str | Path, title: str, sections: Sequence[Section]) -> Path:
    """Write one HTML page (plotly.js embedded once, so it opens offline)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}",
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}",
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}",
        "th{background:#f3f3f3}p{line-height:1.5}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    first = True
    for heading, text, figures, rows in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if text:
            parts.append(f"<p>{html.escape(text)}</p>")
        parts.append(_table(rows))
        for fig in figures:
            parts.append(fig.to_html(full_html=False, include_plotlyjs=first))
            first = False
    parts.append("</body></html>")
    path = Path(path)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
