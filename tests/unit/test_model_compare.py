"""Two models on the same problems: the paired table on planted verdicts; the depth axis."""

from __future__ import annotations

from workbench.report.model_compare import depth_curves, paired_outcomes


def _rows(verdicts):
    return [{"id": f"p{i}", "correct": v} for i, v in enumerate(verdicts)]


def test_paired_outcomes_count_what_the_larger_model_fixes():
    small = {"cot": _rows([1, 1, 0, 0, 1]), "als": _rows([0, 1, 1, 0, 0])}
    large = {"cot": _rows([1, 0, 0, 1, 0])}
    table = paired_outcomes(small, large)
    assert table["problems"] == 5
    assert (table["both_right"], table["only_small_right"]) == (1, 2)
    assert (table["only_large_right"], table["both_wrong"]) == (1, 1)
    assert table["small_als_broke"] == 2  # p0, p4
    assert table["large_cot_right_where_small_als_broke"] == 1  # p0
    assert (table["small_als_fixed"], table["large_cot_right_where_small_als_fixed"]) == (1, 0)


def test_depth_curves_put_both_models_on_relative_depth():
    rows24 = [{"layer": i, "value": 0.5} for i in range(24)]
    rows28 = [{"layer": i, "value": 0.6, "ci_low": 0.5, "ci_high": 0.7} for i in range(28)]
    fig = depth_curves({"0.5B": (24, rows24), "1.5B": (28, rows28)})
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["0.5B", "1.5B"]
    assert lines[0].x[12] == 0.5 and lines[1].x[14] == 0.5
    assert len(fig.data) == 3  # one band: only the second model has intervals


def test_script_pairs_a_committed_run_with_itself(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    run = str(root / "results" / "gsm8k-scale")
    out = subprocess.run(
        [
            sys.executable,
            str(root / "analyses" / "two_models.py"),
            "--small",
            run,
            "--large",
            run,
            "--out_dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ALS_PNG": "0"},
    ).stdout
    assert "only_small_right: 0" in out and "problems: 400" in out
    assert (tmp_path / "two_models.html").stat().st_size > 1000
