"""`als sweep --launch local`: shards as submitit jobs (its local executor: subprocesses), merged
into the same table, row for row, as one process gives; failed jobs are reported with a rerun."""

from __future__ import annotations

import shutil

import pytest

from workbench.cli.main import main
from workbench.experiment.launch import LaunchConfig, launch_sweep
from workbench.experiment.rundir import RunDir
from workbench.experiment.sweeps import SweepConfig, run_sweep

pytest.importorskip("submitit")

SWEEP = SweepConfig(alphas=(0.1, 0.4), controls=("negated",), effects=False)
TIMING = ("seconds", "tokens_per_second", "speedup", "eas", "tradeoff", "timed_with")


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "run"
    args = ["run", "--model.name", "toy", "--als.dataset", "toy", "--als.n_fit", "40"]
    args += ["--als.n_val", "10", "--als.n_test", "10", "--generation.max_new_tokens", "16"]
    args += ["--out", str(out)]
    assert main(args) == 0
    return out


def _untimed(table):
    return [{k: v for k, v in row.items() if not any(t in k for t in TIMING)} for row in table]


def test_launched_sweep_equals_one_process(toy_run, tmp_path):
    single, launched = tmp_path / "single", tmp_path / "launched"
    shutil.copytree(toy_run, single)
    shutil.copytree(toy_run, launched)
    expected = run_sweep(RunDir(single).load_model(), single, SWEEP)
    table, failures = launch_sweep(launched, SWEEP, LaunchConfig(executor="local", jobs=2))
    assert failures == []
    assert len(table) == len(expected) == 4  # 2 alphas x (als, negated)
    assert _untimed(table) == _untimed(expected)
    logs = list((launched / "jobs").rglob("*_log.out"))
    assert len(logs) == 3  # the shared setup, then one job per shard
    cot = (launched / "sweep" / "val" / "cot.jsonl").read_text().splitlines()
    assert len(cot) == 10  # written once


def test_failed_jobs_are_reported_with_a_rerun(toy_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    argv = ["sweep", str(run), "--launch.executor", "local", "--launch.jobs", "2"]
    code = main([*argv, "--device", "cuda:7"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.count("failed: ") == 1 and "sweep setup failed" in out  # shards never start
    assert "no CUDA GPU is visible" in out  # the cause, from the job's traceback
    assert "rerun alone: als sweep" in out and "--device cuda:7" in out


def test_launched_compare_equals_one_process(toy_run, tmp_path):
    from workbench.experiment.compare import CompareConfig, run_compare
    from workbench.experiment.launch import launch_compare

    cfg = CompareConfig(methods=("cot", "sc", "als"), sc_k=2, n_problems=4)
    single, launched = tmp_path / "single", tmp_path / "launched"
    shutil.copytree(toy_run, single)
    shutil.copytree(toy_run, launched)
    expected = run_compare(RunDir(single).load_model(), single, cfg)
    assert launch_compare(launched, cfg, LaunchConfig(executor="local")) == []
    sc_rows = (launched / "compare" / "sc@2.jsonl").read_text().splitlines()
    assert len(sc_rows) == 4  # decoded by the job
    table = run_compare(RunDir(launched).load_model(), launched, cfg)  # merges from disk
    assert _untimed(table) == _untimed(expected)
