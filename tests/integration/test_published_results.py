"""Committed results folders: a figure regenerates from a published run without decoding, its
numbers are those of the committed rows, and every file is what the manifest says."""

from __future__ import annotations

import hashlib
import json
import runpy
import sys
from pathlib import Path

import pytest

from workbench.core.artifacts import read_jsonl
from workbench.core.evaluation import wilson_interval
from workbench.experiment.publish import MANIFEST
from workbench.experiment.rundir import RunDir
from workbench.report.run_report import run_figures

ROOT = Path(__file__).parents[2]
TOY = ROOT / "tests" / "data" / "published-toy-smoke"
"""`als run --model.name toy --als.dataset toy --als.n_fit 40 --als.n_val 10 --als.n_test 20
--generation.max_new_tokens 16 --out runs/toy-smoke`, then `als publish runs/toy-smoke --out
tests/data/published-toy-smoke`."""
PUBLISHED = sorted({p.parent for p in ROOT.glob("results/*/" + MANIFEST)} | {TOY})


def test_main_results_figure_regenerates_from_the_committed_rows(monkeypatch, tmp_path):
    script = ROOT / "analyses" / "main_results.py"
    monkeypatch.setenv("ALS_PNG", "0")
    monkeypatch.syspath_prepend(str(script.parent))
    monkeypatch.setattr(sys, "argv", [str(script), "--run", str(TOY), "--out_dir", str(tmp_path)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 0 and (tmp_path / "main_results.html").stat().st_size > 1000

    figs, _ = run_figures(TOY)
    bars = figs["test_accuracy"].data[0]
    run = RunDir(TOY)
    for method, accuracy in zip(bars.x, bars.y, strict=True):
        rows = run.rows("test", method)  # read back from the gzipped table
        correct = sum(r["correct"] for r in rows)
        assert len(rows) == 20 and accuracy == pytest.approx(correct / len(rows))
        low, high = wilson_interval(correct, len(rows))
        summary = next(r for r in run.results()["test"] if r["method"] == method)
        assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high))


@pytest.mark.parametrize("folder", PUBLISHED, ids=lambda p: p.name)
def test_committed_files_match_their_manifest(folder):
    files = json.loads((folder / MANIFEST).read_text())["files"]
    for name, entry in files.items():
        data = (folder / name).read_bytes()
        assert len(data) == entry["bytes"] and hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert all(not n.endswith(".jsonl") for n in files)  # tables are gzipped
    sampled = json.loads((folder / "config.json").read_text())["command"] == "sample"
    assert read_jsonl(folder / ("samples.jsonl" if sampled else "fit/cot.jsonl"))  # and read back


def test_results_stay_small():
    total = sum(p.stat().st_size for p in (ROOT / "results").rglob("*") if p.is_file())
    assert total < 30e6, f"results/ holds {total / 1e6:.1f} MB; keep it under 30 MB"
