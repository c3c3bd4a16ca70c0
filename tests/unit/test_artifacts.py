"""Artifact writers: JSONL resume semantics and figure export."""

from __future__ import annotations

import shutil

import plotly.graph_objects as go
import pytest

from workbench.artifacts import append_jsonl, read_jsonl, save_figure
from workbench.errors import WorkbenchError


def test_truncated_last_line_is_dropped_and_cut(tmp_path):
    path = tmp_path / "rows.jsonl"
    append_jsonl(path, [{"id": 1}, {"id": 2}])
    with path.open("a") as f:
        f.write('{"id": 3, "te')
    assert read_jsonl(path) == [{"id": 1}, {"id": 2}]
    append_jsonl(path, [{"id": 3}])
    assert [r["id"] for r in read_jsonl(path)] == [1, 2, 3]


def test_broken_middle_line_is_an_error(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": 1}\nnot json\n{"id": 3}\n')
    with pytest.raises(WorkbenchError, match=r"rows\.jsonl:2"):
        read_jsonl(path)


@pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("google-chrome")), reason="no Chrome for kaleido"
)
def test_figure_saved_as_html_and_png(tmp_path, monkeypatch):
    monkeypatch.setenv("ALS_PNG", "1")
    written = save_figure(go.Figure(go.Bar(x=["a"], y=[1])), tmp_path / "fig")
    assert [p.suffix for p in written] == [".html", ".png"]
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
