"""`report.html` reads like a page: values formatted for reading (intervals, p-values, finish
reasons in words, no reprs, None as a dash), the summary first, captioned figures, plotly.js
embedded once (the page opens offline). In a browser: tests/integration/test_report_browser.py."""

from __future__ import annotations

import re

import plotly.graph_objects as go

from workbench.report.html import (
    DASH,
    _table,
    finish_words,
    interval,
    number,
    p_value,
    write_report,
)

ARMS = [
    {
        "method": "cot",
        "n": 400,
        "correct": 111,
        "accuracy": 0.2775,
        "ci_low": 0.23589,
        "ci_high": 0.32331,
        "tokens_per_problem": 284.0,
        "seconds_per_problem": 6.504,
        "intervention_rate": 0.0,
        "no_answer": 0,
        "finish": {"stop": 385, "length": 15},
        "json_valid": None,
        "base": None,
        "only_base": None,
        "only_method": None,
        "mcnemar_p": None,
    },
    {
        "method": "als",
        "n": 400,
        "correct": 104,
        "accuracy": 0.26,
        "ci_low": 0.21944,
        "ci_high": 0.30512,
        "tokens_per_problem": 282.055,
        "seconds_per_problem": 6.6455705,
        "intervention_rate": 0.99645,
        "no_answer": 0,
        "finish": {"length": 21, "stop": 377, "eos": 2},
        "json_valid": None,
        "base": "cot",
        "only_base": 32,
        "only_method": 25,
        "mcnemar_p": 0.42704285650325524,
    },
]


def test_values_read_as_words_and_rounded_numbers():
    assert finish_words({"length": 21, "stop": 377, "eos": 2}) == (
        "377 stopped at the answer, 21 at the cap, 2 at EOS"
    )
    assert interval(0.2775, 0.23589, 0.32331) == "0.278 [0.236, 0.323]"
    assert (p_value(0.42704), p_value(1.0), p_value(2e-5), p_value(None)) == (
        "0.43",
        "1",
        "< 0.001",
        DASH,
    )
    assert number(None) == number(float("nan")) == DASH
    assert number([0.05, 0.1], "alphas") == "0.05, 0.1"
    assert number(0.99645, "intervention_rate") == "99.6%"
    assert number(0.0349812, "seconds_per_problem") == "0.0350"
    assert number(1319) == "1,319" and number(False) == "no"


def test_table_has_intervals_counts_in_words_and_no_reprs():
    table = _table(ARMS)
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", table)
    assert "accuracy [95% CI]" in cells and "0.260 [0.219, 0.305]" in cells
    assert "377 stopped at the answer, 21 at the cap, 2 at EOS" in cells
    assert "fixed / broken vs CoT" in cells and "25 / 32" in cells and "0.43" in cells
    assert "99.6%" in cells and "6.65" in cells and DASH in cells
    assert "valid JSON" not in cells  # empty in every row
    for cell in cells:
        assert not re.search(r"[{}']|None|\d\.0*[1-9]\d{3,}", cell), cell
    assert table.startswith("<div class=table-wrap>")  # scrolls in its box, never the page


def test_one_row_with_many_columns_reads_down_the_page():
    table = _table([{"dataset": "toy", "alphas": [0.1, 0.2], "candidate_layers": None, **{
        f"setting_{i}": i for i in range(6)
    }}])  # fmt: skip
    assert "class=settings" in table and "<th scope=row>alphas</th><td>0.1, 0.2</td>" in table
    assert f"<th scope=row>candidate layers</th><td>{DASH}</td>" in table


def test_summary_first_captions_and_plotly_once(tmp_path):
    figs = [go.Figure(go.Bar(x=["a"], y=[1])).update_layout(width=560) for _ in range(2)]
    sections = [
        ("Result", "text", [(figs[0], "Look at the bars.")], ARMS),
        ("More", "", [figs[1]], []),
    ]
    page = write_report(tmp_path / "r.html", "T", sections, summary=["Verdict.", "Details."])
    text = page.read_text()
    assert text.index("class=verdict>Verdict.") < text.index("<h2 id='result'>")
    assert "<figcaption>Look at the bars.</figcaption>" in text
    assert "<figure style='max-width:560px'>" in text and figs[0].layout.width == 560
    assert text.count("Plotly.newPlot") == 2 and text.count("plotly.js v") == 1
    assert not re.search(r"<script[^>]*src=", text)  # plotly.js inside the page: opens offline
