"""Artifact writers: JSONL resume semantics and figure export."""

from __future__ import annotations

import shutil

import plotly.graph_objects as go
import pytest

from workbench.core.artifacts import append_jsonl, read_jsonl, save_figure
from workbench.errors import WorkbenchError


def test_truncated_last_line_is_dropped_and_cut(tmp_path):
    path = tmp_path / "rows.jsonl"
    append_jsonl(path, [{"id": 1}, {"id": 2}])
    with path.open("a") as f:
        f.write('{"id": 3, "te')
    assert read_jsonl(path) == [{"id": 1}, {"id": 2}]
    append_jsonl(path, [{"id": 3}])
    assert [r["id"] for r in read_jsonl(path)] == [1, 2, 3]


def test_a_reader_beside_a_live_writer_leaves_the_file_alone(tmp_path):
    path = tmp_path / "rows.jsonl"
    append_jsonl(path, [{"id": 1}])
    with path.open("a") as f:
        f.write('{"id": 2, "te')  # the writer is mid-line
    before = path.read_bytes()
    assert read_jsonl(path, repair=False) == [{"id": 1}]
    assert path.read_bytes() == before


def test_gzipped_sibling_is_read_and_unpacked_before_appending(tmp_path):
    from workbench.core.artifacts import gzipped, write_jsonl_gz

    path = tmp_path / "rows.jsonl"
    write_jsonl_gz(gzipped(path), [{"id": 1}, {"id": 2}])
    assert read_jsonl(path) == [{"id": 1}, {"id": 2}]
    append_jsonl(path, [{"id": 3}])
    assert path.exists() and [r["id"] for r in read_jsonl(path)] == [1, 2, 3]


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


def test_check_settings_records_compares_as_json_and_refuses_changes(tmp_path):
    from workbench.core.artifacts import check_settings, read_json

    path = tmp_path / "run" / "config.json"
    check_settings(path, {"als": {"alphas": (0.1,)}, "limit": 10}, first_record={"command": "x"})
    assert read_json(path) == {"command": "x", "als": {"alphas": [0.1]}, "limit": 10}
    # the same settings (a tuple against its JSON list) resume; a may_change key may grow
    check_settings(path, {"als": {"alphas": (0.1,)}, "limit": 20}, may_change=("limit",))
    assert read_json(path)["limit"] == 20
    with pytest.raises(WorkbenchError, match=r"other settings \(als\)"):
        check_settings(path, {"als": {"alphas": (0.2,)}})
    assert read_json(path)["als"] == {"alphas": [0.1]}  # the record is untouched


def test_check_settings_lets_a_named_field_of_a_section_change(tmp_path):
    from workbench.core.artifacts import check_settings, read_json

    path = tmp_path / "run" / "config.json"
    free = ("generation.batch_size",)
    check_settings(path, {"generation": {"batch_size": 8, "max_new_tokens": 64}}, may_change=free)
    check_settings(path, {"generation": {"batch_size": 32, "max_new_tokens": 64}}, may_change=free)
    assert read_json(path)["generation"]["batch_size"] == 32
    with pytest.raises(WorkbenchError, match=r"other settings \(generation\)"):
        check_settings(
            path, {"generation": {"batch_size": 32, "max_new_tokens": 16}}, may_change=free
        )


def test_check_settings_treats_fields_a_record_predates_as_defaults(tmp_path):
    from workbench.core.artifacts import check_settings

    path = tmp_path / "run" / "config.json"
    check_settings(path, {"als": {"n_fit": 8}})  # written before label_source existed
    defaults = {"als": {"n_fit": 32, "label_source": "gold"}}
    check_settings(path, {"als": {"n_fit": 8, "label_source": "gold"}}, defaults=defaults)
    with pytest.raises(WorkbenchError, match="other settings"):
        check_settings(path, {"als": {"n_fit": 8, "label_source": "self"}}, defaults=defaults)


def test_a_gzipped_file_under_a_plain_name_is_a_clear_error(tmp_path):
    import gzip

    from workbench.core.artifacts import read_jsonl
    from workbench.errors import WorkbenchError

    path = tmp_path / "rows.jsonl"
    path.write_bytes(gzip.compress(b'{"a": 1}\n'))
    with pytest.raises(WorkbenchError, match=r"rows\.jsonl is not UTF-8 JSONL \(it is gzipped"):
        read_jsonl(path)


def test_a_gzipped_file_is_read_under_its_own_name(tmp_path):
    """A published table read by the name it has on disk (``cot.jsonl.gz``) gives its rows."""
    from workbench.core.artifacts import gzipped, write_jsonl_gz

    path = tmp_path / "cot.jsonl"
    write_jsonl_gz(gzipped(path), [{"id": 1}, {"id": 2}])
    assert read_jsonl(gzipped(path)) == read_jsonl(path) == [{"id": 1}, {"id": 2}]
    assert not path.exists()  # reading never unpacks


def test_a_hung_png_export_is_abandoned_and_later_figures_skip_png(tmp_path, monkeypatch, caplog):
    import time

    import workbench.core.artifacts as artifacts

    monkeypatch.setenv("ALS_PNG", "1")
    monkeypatch.setenv("ALS_PNG_TIMEOUT", "0.2")
    monkeypatch.setattr(artifacts, "_PNG_HUNG", False)
    calls = []

    class Hangs(go.Figure):
        def write_image(self, *args, **kwargs):
            calls.append(args)
            time.sleep(5)

    start = time.perf_counter()
    assert save_figure(Hangs(), tmp_path / "a") == [tmp_path / "a.html"]
    assert time.perf_counter() - start < 3
    assert "PNG export took over 0.2 s" in caplog.text
    assert save_figure(Hangs(), tmp_path / "b") == [tmp_path / "b.html"]
    assert len(calls) == 1  # no second try in this process
