"""A live test split read as it decodes: arms compared on the problems all of them finished."""

from __future__ import annotations

import json

import pytest

from workbench.core.artifacts import write_jsonl_gz
from workbench.errors import WorkbenchError
from workbench.experiment.interim import finished_together, interim_test


def _row(pid, method, correct, tokens, finish="stop", interventions=0):
    return {
        "id": pid,
        "method": method,
        "correct": correct,
        "predicted": "1",
        "tokens": tokens,
        "generated_tokens": len(tokens),
        "seconds": 1.0,
        "finish": finish,
        "interventions": interventions,
    }


def _run(tmp_path, n=10):
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "test.json").write_text(json.dumps({"name": "test", "ids": [], "n": n}))
    (tmp_path / "test").mkdir()
    return tmp_path


def test_finished_together_keeps_the_common_problems_in_the_first_tables_order():
    tables = {
        "cot": [_row("c", "cot", 1, [1]), _row("a", "cot", 0, [1]), _row("b", "cot", 1, [2])],
        "als": [_row("a", "als", 1, [1]), _row("c", "als", 1, [3])],
    }
    together = finished_together(tables)
    assert [r["id"] for r in together["cot"]] == ["c", "a"]
    assert [r["id"] for r in together["als"]] == ["a", "c"]
    assert finished_together({}) == {}


def test_interim_pairs_arms_on_common_problems_of_a_live_run(tmp_path):
    run = _run(tmp_path)
    cot = [
        _row("p1", "cot", True, [1, 2]),
        _row("p2", "cot", False, [3]),
        _row("p3", "cot", False, [4], finish="length"),
        _row("p4", "cot", True, [5]),
    ]
    als = [
        _row("p2", "als", True, [3, 9], interventions=2),
        _row("p1", "als", False, [7, 8]),
        _row("p3", "als", False, [4], finish="length"),
    ]
    # cot as a published (gzipped) table, als live: its last line is being written
    write_jsonl_gz(run / "test" / "cot.jsonl.gz", cot)
    live = "".join(json.dumps(r) + "\n" for r in als) + '{"id": "p4", "meth'
    (run / "test" / "als.jsonl").write_text(live)

    view = interim_test(run)

    assert view.n_split == 10 and view.finished == {"cot": 4, "als": 3} and view.n_common == 3
    base, arm = view.arms
    assert base.summary.method == "cot" and base.summary.correct == 1 and base.summary.base is None
    assert base.identical_to_base == 3
    s = arm.summary
    assert (s.n, s.correct, s.only_method, s.only_base) == (3, 1, 1, 1)
    assert s.mcnemar_p == pytest.approx(1.0)
    assert arm.identical_to_base == 1 and arm.at_cap == 1  # p3: same tokens, at the cap
    assert (run / "test" / "als.jsonl").read_text() == live  # the writer's file untouched


def test_interim_without_base_rows_says_which_arms_are_there(tmp_path):
    run = _run(tmp_path)
    (run / "test" / "als.jsonl").write_text(json.dumps(_row("p1", "als", True, [1])) + "\n")
    with pytest.raises(WorkbenchError, match=r"no cot rows .*arms there: als"):
        interim_test(run)


def test_interim_without_a_test_split_says_so(tmp_path):
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "cot.jsonl").write_text(json.dumps(_row("p1", "cot", True, [1])) + "\n")
    with pytest.raises(WorkbenchError, match="no test split yet"):
        interim_test(tmp_path)


def _render():
    import runpy
    from pathlib import Path

    script = Path(__file__).parents[2] / "analyses" / "interim_test.py"
    return runpy.run_path(str(script))["render"]


def test_interim_table_shows_the_json_validity_of_p2_arms_only(tmp_path):
    run = _run(tmp_path, n=2)
    p2 = [
        {**_row("p1", "cot", True, [1]), "extraction": "json"},
        {**_row("p2", "cot", False, [2]), "extraction": "invalid_json"},
    ]
    write_jsonl_gz(run / "test" / "cot.jsonl.gz", p2)
    table = _render()(interim_test(run))
    assert table.splitlines()[2].endswith("| valid JSON |")
    assert table.splitlines()[4].endswith("| 2/2 | 1/2 |")  # identical to itself; 1 valid of 2

    (tmp_path / "p1").mkdir()
    p1 = _run(tmp_path / "p1", n=2)
    write_jsonl_gz(p1 / "test" / "cot.jsonl.gz", [_row("p1", "cot", True, [1])])
    assert "valid JSON" not in _render()(interim_test(p1))
