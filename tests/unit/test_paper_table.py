"""The paper-shaped table: like-for-like time only, the trade-off by Eq. 1, the paper's cells."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from workbench.report.paper_table import (
    load_paper_numbers,
    paper_table,
    render_markdown,
)

PUBLISHED = Path(__file__).parents[1] / "data" / "published-toy-smoke"
PAPER = Path(__file__).parents[2] / "analyses" / "data" / "als_paper_table1.json"


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "toy-run"
    shutil.copytree(PUBLISHED, folder)
    return folder


def _as(run: Path, dataset: str, fmt: str | None) -> None:
    """Relabel the committed toy run's setting (the table reads only the settings record)."""
    cfg = json.loads((run / "config.json").read_text())
    cfg["als"]["dataset"] = dataset
    if fmt is not None:
        cfg.setdefault("prompt", {})["format"] = fmt
    (run / "config.json").write_text(json.dumps(cfg))


def test_time_without_like_for_like_evidence_is_not_quoted(run):
    rows = paper_table([run], load_paper_numbers(PAPER))
    assert [r["method"] for r in rows] == ["cot", "als"]
    assert all(r["seconds"] is None and r["tradeoff"] is None for r in rows)
    assert all(r["timed"].startswith("not like for like") for r in rows)


def test_retimed_seconds_give_the_trade_off_and_the_paper_cells(run):
    _as(run, "math", "p1")
    retimed = {
        "n": 2,
        "arms": [
            {"method": "cot", "seconds_per_problem": 4.0},
            {"method": "als", "seconds_per_problem": 5.0},
        ],
    }
    (run / "retimed.json").write_text(json.dumps(retimed))
    rows = {r["method"]: r for r in paper_table([run], load_paper_numbers(PAPER))}
    results = {r["method"]: r for r in json.loads((run / "results.json").read_text())["test"]}
    for name, seconds in (("cot", 4.0), ("als", 5.0)):
        acc = 100 * results[name]["accuracy"]
        assert rows[name]["tradeoff"] == pytest.approx((acc + 100 - 100 * seconds / 5.0) / 2)
        assert rows[name]["timed"] == "re-timed together, first 2 problems"
    cot = rows["cot"]["tradeoff"]
    assert rows["als"]["tradeoff_change_vs_cot"] == pytest.approx(
        100 * (rows["als"]["tradeoff"] - cot) / cot
    )
    # CoT sits beside the paper's MATH-500 P1 CoT; our own ALS has no counterpart there
    assert rows["cot"]["paper"]["Qwen-2.5-7B-Instruct"] == [76.0, 9.9, 77.8]
    assert rows["als"]["paper"] == {"Qwen-2.5-7B-Instruct": None, "Llama-3.1-8B-Instruct": None}
    text = render_markdown(list(rows.values()))
    assert "76.0 / 77.8" in text and "| MATH-500 | P1 |" in text


def test_the_paper_numbers_follow_eq_1_where_the_paper_says_so():
    """A check of our reading of Eq. 1 on the paper's own rows: Qwen GSM8K P1 CoT and ALS."""
    rows = {
        (r["dataset"], r["prompt"], r["method"]): r["Qwen-2.5-7B-Instruct"]
        for r in load_paper_numbers(PAPER)["rows"]
    }
    block = {m: rows[("GSM8K", "P1", m)] for m in ("CoT", "SC", "LatentSeek", "ALS")}
    slowest = max(t for _, t, _ in block.values())
    for acc, t, printed in (block["CoT"], block["ALS"]):
        # the printed times are rounded to 0.1 s
        assert (acc + 100 - 100 * t / slowest) / 2 == pytest.approx(printed, abs=0.2)


def test_p2_rows_show_valid_and_whole_output_json(run):
    results = json.loads((run / "results.json").read_text())
    for r in results["test"]:
        r.update(json_valid=2, json_whole=1, correct_whole=1)
    (run / "results.json").write_text(json.dumps(results))
    text = render_markdown(paper_table([run], load_paper_numbers(PAPER)))
    n = results["test"][0]["n"]
    assert f"| 2/{n}; whole 1, right 1 |" in text
    for r in results["test"]:  # a run from before whole-output JSON was counted
        del r["json_whole"], r["correct_whole"]
    (run / "results.json").write_text(json.dumps(results))
    assert f"| 2/{n} |" in render_markdown(paper_table([run], load_paper_numbers(PAPER)))
