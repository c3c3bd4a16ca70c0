"""`scripts/paper_runs.sh`: every command it would run parses, and the committed runs' settings
are the ones it would resume them with (a resumed run refuses other settings)."""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

from workbench.cli.parser import parse

ROOT = Path(__file__).resolve().parents[2]


def _dry_run(*args: str) -> list[list[str]]:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "paper_runs.sh"), "--dry-run", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [shlex.split(line)[1:] for line in out.splitlines() if line.startswith(".venv/bin/als")]


def test_every_command_parses_in_issue_order():
    commands = _dry_run()
    runs = [c[c.index("--out") + 1] for c in commands if c[0] in ("run", "publish")]
    assert runs[:6:2] == ["runs/math500-p1", "runs/math500-p2", "runs/gsm8k-p2"]
    for argv in commands:
        assert parse(argv)[0] == argv[0]
    compares = [parse(c)[1] for c in commands if c[0] == "compare"]
    assert [c.run_dir for c in compares] == ["runs/gsm8k-scale", "runs/math500-p1"]
    assert all(c.compare.n_problems == 100 and c.compare.sc_k == 5 for c in compares)
    assert all(c.compare.retime for c in compares)


@pytest.mark.parametrize("name", ["math500-p1"])
def test_committed_run_resumes_with_the_scripts_settings(name):
    stored = json.loads((ROOT / "results" / name / "config.json").read_text())
    (argv,) = [c for c in _dry_run("--only", name) if c[0] == "run"]
    args = parse(argv)[1]
    as_stored = {k: tuple(v) if isinstance(v, list) else v for k, v in stored["als"].items()}
    assert asdict(args.als) == as_stored
    assert asdict(args.prompt) == stored["prompt"]
    ours = asdict(args.generation)
    assert {k: ours[k] for k in ours if k != "static_step"} == {
        k: v for k, v in stored["generation"].items() if k != "static_step"
    }


def test_extra_arguments_reach_every_decode_and_bad_options_are_one_line():
    commands = _dry_run("--only", "math500-p2", "--", "--generation.batch_size", "32")
    (run,) = [c for c in commands if c[0] == "run"]
    assert parse(run)[1].generation.batch_size == 32 and parse(run)[1].als.gated
    bad = subprocess.run(
        ["bash", str(ROOT / "scripts" / "paper_runs.sh"), "--bogus"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--bogus" in bad.stderr
