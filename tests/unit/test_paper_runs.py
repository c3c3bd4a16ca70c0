"""`scripts/paper_runs.sh`: every command it would run parses, and the committed runs' settings
are the ones it would resume them with (a resumed run refuses other settings)."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from workbench.cli.parser import parse
from workbench.experiment.pipeline import ALSRunConfig

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
    runs = [c[c.index("--out") + 1] for c in commands if c[0] in ("run", "sample")]
    assert runs == [
        "runs/math500-p1",
        "runs/math500-p2",
        "runs/gsm8k-samples-fit",
        "runs/gsm8k-samples-test",
        "runs/gsm8k-1.5b",
        "runs/gsm8k-p2",
    ]
    for argv in commands:
        assert parse(argv)[0] == argv[0]
    compares = [parse(c)[1] for c in commands if c[0] == "compare"]
    assert [c.run_dir for c in compares] == ["runs/gsm8k-scale", "runs/math500-p1"]
    assert all(c.compare.n_problems == 100 and c.compare.sc_k == 5 for c in compares)
    assert all(c.compare.retime for c in compares)


@pytest.mark.parametrize("name", ["math500-p1", "math500-p2"])
def test_committed_run_resumes_with_the_scripts_settings(name):
    stored = json.loads((ROOT / "results" / name / "config.json").read_text())
    (argv,) = [c for c in _dry_run("--only", name) if c[0] == "run"]
    args = parse(argv)[1]
    # a field the record predates stands at its default, as the resume check reads it
    recorded = {**asdict(ALSRunConfig()), **stored["als"]}
    as_stored = {k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()}
    assert asdict(args.als) == as_stored
    assert asdict(args.prompt) == stored["prompt"]
    ours = asdict(args.generation)
    assert {k: ours[k] for k in ours if k != "static_step"} == {
        k: v for k, v in stored["generation"].items() if k != "static_step"
    }


def test_the_larger_model_runs_the_scale_protocol():
    (argv,) = [c for c in _dry_run("--only", "gsm8k-1.5b") if c[0] == "run"]
    args = parse(argv)[1]
    scale = json.loads((ROOT / "results" / "gsm8k-scale" / "config.json").read_text())["als"]
    assert args.model.name == "coder-1.5b" and args.als.n_fit == 500
    same = ("dataset", "split_order", "n_val", "n_test", "alphas", "tau_quantiles", "control")
    assert {k: getattr(args.als, k) for k in same} == {
        k: tuple(scale[k]) if isinstance(scale[k], list) else scale[k] for k in same
    }


def test_sampling_runs_take_the_scale_runs_splits():
    samples = [parse(c)[1] for c in _dry_run() if c[0] == "sample"]
    assert [(s.split, s.limit, s.sampling.k) for s in samples] == [
        ("fit", 400, 8),
        ("test", None, 5),
    ]
    assert {s.run_dir for s in samples} == {"results/gsm8k-scale"}


def test_extra_arguments_reach_every_decode_and_bad_options_are_one_line():
    commands = _dry_run("--only", "math500-p2", "--", "--generation.batch_size", "32")
    (run,) = [c for c in commands if c[0] == "run"]
    assert parse(run)[1].generation.batch_size == 32 and parse(run)[1].als.gated
    bad = subprocess.run(
        ["bash", str(ROOT / "scripts" / "paper_runs.sh"), "--bogus"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--bogus" in bad.stderr


def _fake_tree(tmp_path: Path, run_seconds: float) -> Path:
    """A copy of the script beside a fake `.venv` whose `als` logs its calls (a run sleeps)."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "paper_runs.sh").write_text(
        (ROOT / "scripts" / "paper_runs.sh").read_text()
    )
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "als").write_text(
        "#!/usr/bin/env bash\n"
        'echo "start $1" >> calls.log\n'
        f"case $1 in run) sleep {run_seconds} ;; publish) sleep 0.2 ;; esac\n"
        'echo "end $1" >> calls.log\n'
    )
    (bin_dir / "python").write_text("#!/usr/bin/env bash\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return tmp_path


def test_rows_are_published_while_a_run_decodes_and_never_after_it(tmp_path):
    tree = _fake_tree(tmp_path, run_seconds=4)
    script = tree / "scripts" / "paper_runs.sh"
    subprocess.run(
        ["bash", str(script), "--only", "math500-p1", "--publish-every", "0.02"],  # 1.2 s
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    calls = (tree / "calls.log").read_text().split("\n")[:-1]
    end_run = calls.index("end run")
    assert calls[0] == "start run"
    assert calls[1:end_run].count("start publish") >= 2  # while it decodes
    assert calls[end_run + 1 :] == ["start publish", "end publish"]  # the final one, alone
    time.sleep(1.5)  # the publisher is gone: nothing more is published
    assert (tree / "calls.log").read_text().split("\n")[:-1] == calls


def test_publishing_every_zero_minutes_is_off_and_a_bad_period_is_one_line(tmp_path):
    lines = subprocess.run(
        ["bash", str(ROOT / "scripts" / "paper_runs.sh"), "--dry-run", "--publish-every", "0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "every" not in lines and "publish runs/math500-p1" in lines
    assert "# every 30 min while it decodes" in "\n".join(
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "paper_runs.sh"), "--dry-run", "--only", "gsm8k-p2"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[:1]
    )
    for bad in (["--publish-every", "soon"], ["--publish-every"]):
        out = subprocess.run(
            ["bash", str(ROOT / "scripts" / "paper_runs.sh"), *bad], capture_output=True, text=True
        )
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "minutes" in out.stderr
