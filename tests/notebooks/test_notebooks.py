"""Every notebook runs top to bottom in smoke mode (ALS_SMOKE=1: toy model, toy dataset)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))


def test_the_six_notebooks_are_there():
    names = [p.stem for p in NOTEBOOKS]
    assert names == [
        "01_quickstart",
        "02_which_layers",
        "03_trajectories",
        "04_ablations",
        "05_baselines",
        "06_reasoning_or_difficulty",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert code, "a notebook with no code cell"
    assert all(not c.outputs and c.execution_count is None for c in code)


@pytest.fixture(scope="module")
def shared_dir(tmp_path_factory):
    """One folder for all notebooks, as for a user running them in order: the run folder that
    notebook 02 makes is resumed (not remade) by 03-05; each notebook still makes it if absent."""
    return tmp_path_factory.mktemp("notebooks")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_mode(path, shared_dir, monkeypatch):
    monkeypatch.setenv("ALS_SMOKE", "1")
    monkeypatch.setenv("ALS_NOTEBOOK_DIR", str(shared_dir))
    monkeypatch.setenv("ALS_PNG", "0")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    book = nbformat.read(path, as_version=4)
    NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [
        o
        for c in book.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not errors


TABLES = ("paper_table", "interim_test", "p2_formats")
"""Analysis scripts that print a table, not a figure (tested below, p2_formats in tests/unit)."""
ON_SAMPLES = ("contrast", "router", "two_models", "difficulty_strata")
"""Scripts on sampled chains or on two runs (test_sample_contrast.py, test_model_compare.py)."""
ANALYSES = sorted(
    p
    for p in (Path(__file__).parents[2] / "analyses").glob("[!_]*.py")
    if p.stem not in TABLES + ON_SAMPLES
)


@pytest.mark.parametrize("script", ANALYSES, ids=lambda p: p.stem)
def test_analysis_script_regenerates_its_figure(script, shared_dir, monkeypatch, tmp_path):
    """On the toy run that the notebooks above left (after probe, sweep and compare)."""
    import runpy
    import sys

    run = shared_dir / "run-toy"
    if not (run / "compare" / "table.json").exists():
        pytest.skip("needs the toy run that the notebook tests make (run the whole module)")
    monkeypatch.setenv("ALS_PNG", "0")
    monkeypatch.syspath_prepend(str(script.parent))
    argv = [str(script), "--run", str(run), "--out_dir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 0
    assert (tmp_path / f"{script.stem}.html").stat().st_size > 1000
    first = (tmp_path / f"{script.stem}.html").read_bytes()
    with pytest.raises(SystemExit):  # idempotent: a rerun writes the same file
        runpy.run_path(str(script), run_name="__main__")
    assert (tmp_path / f"{script.stem}.html").read_bytes() == first


def test_paper_table_script_tabulates_the_toy_run(shared_dir, monkeypatch, tmp_path, capsys):
    """analyses/paper_table.py over a results folder holding the toy run the notebooks left."""
    import runpy
    import shutil
    import sys

    run = shared_dir / "run-toy"
    if not (run / "results.json").exists():
        pytest.skip("needs the toy run that the notebook tests make (run the whole module)")
    shutil.copytree(run, tmp_path / "results" / "run-toy", ignore=shutil.ignore_patterns("fit"))
    script = Path(__file__).parents[2] / "analyses" / "paper_table.py"
    out = tmp_path / "table.md"
    argv = [str(script), "--results", str(tmp_path / "results"), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 0
    table = out.read_text()
    assert "| toy sums |" in table and "CoT (greedy)" in table
    assert table in capsys.readouterr().out


def test_interim_test_script_reads_the_toy_run(shared_dir, monkeypatch, capsys):
    """analyses/interim_test.py on the toy run the notebooks left: a finished split."""
    import runpy
    import sys

    run = shared_dir / "run-toy"
    if not (run / "results.json").exists():
        pytest.skip("needs the toy run that the notebook tests make (run the whole module)")
    script = Path(__file__).parents[2] / "analyses" / "interim_test.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--run", str(run)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "The split is complete." in out and "| cot |" in out
