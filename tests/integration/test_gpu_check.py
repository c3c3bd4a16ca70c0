"""`scripts/gpu_check.sh --smoke`: the GPU check's every step, on the CPU with a tiny shape."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEPS = (
    "environment",
    "selfcheck-tiny",
    "tests",
    "step-overhead",
    "throughput-tiny",
    "steering-tiny",
)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_smoke_mode_runs_every_step(tmp_path):
    done = _run("--smoke", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = (tmp_path / "summary.txt").read_text().splitlines()
    for step in (*STEPS, "activations-tiny"):
        assert f"{step} rc=0" in " ".join(summary), summary
    tests = (tmp_path / "tests.log").read_text()
    assert " passed" in tests and " failed" not in tests
    assert "near tie" in tests or "same" in tests  # the verdicts are printed
    overhead = (tmp_path / "step-overhead.txt").read_text()
    assert "arch=tiny-llama" in overhead and overhead.strip().splitlines()[-1].startswith("ratio=")
    bench = (tmp_path / "bench-tiny.txt").read_text()
    assert "ratio=" in bench and "overhead=" in bench and "peak_rss_after" in bench


def test_unknown_option_is_one_line():
    done = _run("--fast")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unknown option '--fast'" in done.stderr
