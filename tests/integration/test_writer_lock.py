"""One writer per run folder (`workbench.experiment.writer_lock`), with real processes: a second
writer is refused at once with one line naming the folder and the holder's pid (exit 2), a writer
killed with SIGKILL leaves a lock that the next one takes over to resume, and a folder written
twice before the lock existed is read with one row per problem."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.cli.main import main
from workbench.core.records import GradedRow
from workbench.errors import WorkbenchError
from workbench.experiment.rundir import RunDir
from workbench.sources.toy import toy_problems

ROOT = Path(__file__).parents[2]
GENERATE = ["generate", "--model.name", "tiny", "--model.device", "cpu", "--model.self_check"]
GENERATE += ["false", "--data.dataset", "toy", "--data.split", "train"]
GENERATE += ["--generation.max_new_tokens", "2", "--generation.batch_size", "1"]
HOLDER = """
import sys, time
from workbench.experiment.writer_lock import writer_lock
with writer_lock(sys.argv[1], command="holder for the test"):
    print("locked", flush=True)
    time.sleep(300)
"""
"""A process that holds a folder's lock (the lock module alone: no torch to import) until killed."""
SLOW_GENERATE = """
import sys, time
import workbench.methods.cot as cot
from workbench.cli.main import main

write = cot.append_jsonl
cot.append_jsonl = lambda *a, **k: (write(*a, **k), time.sleep(2))
sys.exit(main(sys.argv[1:]))
"""
"""`als generate` that sleeps 2 s after each row it writes: a writer that is still decoding when
the others start, at no CPU cost (a real decode that long would hold the CPU as long)."""
WHEN_LOCKED = """
import sys, time
from pathlib import Path
from workbench.cli.main import main

lock = Path(sys.argv[1])
while not (lock.exists() and lock.stat().st_size):  # the holder writes itself in once it holds it
    time.sleep(0.02)
started = time.monotonic()
code = main(sys.argv[2:])
print(f"{time.monotonic() - started:.3f}")
sys.exit(code)
"""
"""`als ...` (argv[2:]) run as soon as another process holds the lock file argv[1] (its imports
overlap the holder's instead of following them); prints the seconds `main` took."""


def _env() -> dict[str, str]:
    return {**os.environ, "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1", "ALS_PNG": "0"}


def _start_holder(out: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(RunDir(out).writer_lock_path)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def _refused(err: str, out: Path, pid: int) -> None:
    """`err` is the one-line refusal naming the folder and the holder's pid, without a traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("als: error: ") and "Traceback" not in err
    assert str(out) in lines[0] and f"pid {pid} " in lines[0]


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_second_generate_is_refused_and_a_killed_one_is_taken_over(tmp_path, caplog):
    """Three `als generate` processes on one folder: the second, started while the first decodes,
    exits 2 at once; the first is killed with SIGKILL mid-run; the third (this process) takes its
    stale lock over and resumes to one row per problem."""
    out = tmp_path / "run"
    args = [*GENERATE, "--data.limit", "6", "--out", str(out)]
    lock, rows = RunDir(out).writer_lock_path, RunDir(out).generations_path
    first = subprocess.Popen(
        [sys.executable, "-c", SLOW_GENERATE, *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        second = subprocess.run(
            [sys.executable, "-c", WHEN_LOCKED, str(lock), *args],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert second.returncode == 2
        _refused(second.stderr, out, first.pid)
        assert float(second.stdout) < 10  # at once: no model loaded (parsing alone takes ~1 s)
        assert not rows.exists() or len(_ids(rows)) < 6

        deadline = time.monotonic() + 240
        while not rows.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.poll() is None, "the first writer finished before it could be killed"
        _kill(first)
    finally:
        if first.poll() is None:
            _kill(first)
    written = _ids(rows)
    assert 1 <= len(written) < 6
    assert json.loads(lock.read_text())["pid"] == first.pid  # left behind by SIGKILL

    with caplog.at_level(logging.WARNING):  # the third: this process (no second torch import)
        assert main(args) == 0
    assert f"taking over the writer lock of pid {first.pid}" in caplog.text
    ids = _ids(rows)
    assert sorted(ids) == sorted(p.id for p in toy_problems("train")[:6])  # one row per problem
    assert ids[: len(written)] == written  # the killed writer's rows were kept, not decoded again
    assert not lock.exists()


def test_refused_in_every_entry_point_while_another_process_holds_the_folder(tmp_path, capsys):
    """A holder process; in this one: `als generate` and `als stage` exit 2 with the one line,
    `run_stage` raises, nothing is written; once the holder is killed, the folder is free."""
    out = tmp_path / "run"
    (out / "splits").mkdir(parents=True)
    (out / "config.json").write_text("{}")
    before = {p.relative_to(out) for p in out.rglob("*")}
    holder = _start_holder(out)
    try:
        started = time.monotonic()
        assert main([*GENERATE, "--data.limit", "2", "--out", str(out)]) == 2
        _refused(capsys.readouterr().err, out, holder.pid)
        assert main(["stage", "report", str(out)]) == 2
        _refused(capsys.readouterr().err, out, holder.pid)
        assert time.monotonic() - started < 5  # at once: no model loaded, nothing decoded

        from workbench.stages import run_stage

        with pytest.raises(WorkbenchError, match=f"pid {holder.pid} .*holder for the test"):
            run_stage("directions", out)
        assert {p.relative_to(out) for p in out.rglob("*")} == {*before, Path(".writer.lock")}
    finally:
        _kill(holder)
    with RunDir(out).writer():  # the kernel released the killed holder's lock
        pass
    assert not RunDir(out).writer_lock_path.exists()


def test_stale_lock_is_taken_over_and_nested_writers_share_one_lock(tmp_path, caplog):
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    stale = {"pid": 2**22 + 1, "host": "gone", "command": "als generate", "since": "then"}
    run.writer_lock_path.write_text(json.dumps(stale))
    with caplog.at_level(logging.WARNING), run.writer() as path:
        held = json.loads(path.read_text())
        assert held["pid"] == os.getpid() and held["host"] and held["command"]
        with run.writer(), RunDir(str(run.root) + "/").writer():  # re-entered: no refusal
            pass
        assert path.exists()  # still held by the outer block
    assert f"taking over the writer lock of pid {stale['pid']} on gone" in caplog.text
    assert not run.writer_lock_path.exists()

    new = RunDir(tmp_path / "a" / "b")  # created for the lock, empty after: removed again
    with new.writer():
        assert new.root.is_dir()
    assert not (tmp_path / "a").exists()


def _row(problem, text: str) -> dict:
    return GradedRow(
        id=problem.id,
        method="cot",
        gold=problem.answer,
        predicted=None,
        correct=text == "first",
        extraction="none",
        prompt_tokens=3,
        generated_tokens=1,
        seconds=0.1,
        finish="length",
        text=text,
        tokens=[5],
    ).to_json()


def test_rows_written_twice_are_read_once(tmp_path, caplog):
    """A folder written by two processes before the lock: every reader keeps the first row of
    each problem and warns once, naming the file and how many rows it left out."""
    from workbench.experiment.sweeps import sweep_table
    from workbench.methods.cot import run_cot

    problems = toy_problems("train")[:3]
    doubled = [_row(p, "first") for p in problems] + [_row(p, "second") for p in problems[:2]]
    text = "".join(json.dumps(r) + "\n" for r in doubled)
    run = RunDir(tmp_path / "run")
    for path in (run.generations_path, run.rows_path("test", "cot"), run.sweep_rows("val", "c")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (run.sweep_rows("val", "cot")).write_text(text)
    run.sweep_grid_path.write_text(json.dumps([{"name": "c", "layers": [1], "direction": "als"}]))

    with caplog.at_level(logging.WARNING):
        # resuming an `als generate` folder: nothing to decode (no model needed), one row each
        rows = run_cot(None, problems, out=run.generations_path, progress=False)
        assert [r["id"] for r in rows] == [p.id for p in problems]
        assert all(r["text"] == "first" for r in rows)
        assert [r["text"] for r in run.rows("test", "cot")] == ["first"] * 3
        (table,) = sweep_table(run, "val")
        assert table["n"] == 3 and table["correct"] == 3
    warned = [r.getMessage() for r in caplog.records if "duplicate rows" in r.getMessage()]
    assert f"{run.generations_path}: 2 duplicate rows left out" in warned[0]
    assert len([m for m in warned if str(run.rows_path("test", "cot")) in m]) == 1
