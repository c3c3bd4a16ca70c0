"""P2 outputs counted by why they fail, on planted rows."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from workbench.core.artifacts import write_jsonl_gz
from workbench.core.json_answer import P2_OUTCOMES
from workbench.report.p2_formats import p2_formats

VALID = '{"thought process": "3 and 4 is 7.", "final answer": "7"}'


def _row(text: str, *, correct: bool = False, finish: str = "eos") -> dict:
    return {"text": text, "correct": correct, "finish": finish}


def test_p2_formats_counts_every_outcome_and_the_capped_ones():
    rows = [
        _row(VALID, correct=True),
        _row("Prose first. " + VALID),
        _row('{"thought process": "and so on', finish="length"),
        _row('{"thought process": "and so', finish="eos"),
        _row("I keep reasoning in prose", finish="length"),
        _row('{"thought process": "\\(x\\)", "final answer": "1"}'),
    ]
    counts = p2_formats(rows, method="cot")
    assert (counts.method, counts.n, counts.correct, counts.whole) == ("cot", 6, 1, 1)
    assert list(counts.outcomes) == list(P2_OUTCOMES)
    assert counts.outcomes == {
        "valid": 2,
        "missing keys": 0,
        "invalid escape": 1,
        "other syntax": 0,
        "not closed": 2,
        "no object": 1,
    }
    assert counts.at_cap["not closed"] == 1 and counts.at_cap["no object"] == 1
    assert sum(counts.at_cap.values()) == 2
    assert sum(counts.outcomes.values()) == counts.n
    assert counts.escapes == {"\\(": 1}


def _script(*args: str) -> int:
    """Run analyses/p2_formats.py as a script (its parser reads its dataclass while the module is
    loaded); its exit status."""
    script = Path(__file__).parents[2] / "analyses" / "p2_formats.py"
    sys.argv = [script.name, *args]
    with pytest.raises(SystemExit) as stop:
        runpy.run_path(str(script), run_name="__main__")
    return stop.value.code


def test_p2_formats_script_counts_a_split_on_the_problems_every_arm_finished(
    tmp_path, monkeypatch, capsys
):
    (tmp_path / "test").mkdir()
    cot = [
        {"id": "a", **_row(VALID, correct=True)},
        {"id": "b", **_row("prose", finish="length")},
    ]
    als = [{"id": "b", **_row(VALID)}]  # still decoding: only b is finished by both
    write_jsonl_gz(tmp_path / "test" / "als.jsonl.gz", als)
    write_jsonl_gz(tmp_path / "test" / "cot.jsonl.gz", cot)
    monkeypatch.setattr(sys, "argv", sys.argv)
    assert _script("--run", str(tmp_path)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Split test: 1 problems counted per arm (finished: cot 2, als 1)."
    assert lines[4] == "| cot | 1 | 0 | 0 (0) | 0 (0) | 0 (0) | 0 (0) | 0 (0) | 1 (1) |"
    assert lines[5] == "| als | 1 | 0 | 1 (1) | 0 (0) | 0 (0) | 0 (0) | 0 (0) | 0 (0) |"


def test_p2_formats_script_on_a_split_without_rows_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", sys.argv)
    assert _script("--run", str(tmp_path), "--split", "val") == 2
    err = capsys.readouterr().err
    assert err.startswith("p2_formats: error:") and "holds no rows" in err
    assert len(err.strip().splitlines()) == 1
