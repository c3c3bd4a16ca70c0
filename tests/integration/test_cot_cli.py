"""Graded runs end to end on the tiny model: resume, and the CLI's one-line errors."""

from __future__ import annotations

import json

import pytest

from workbench.cli.main import main
from workbench.engine.config import GenerationConfig
from workbench.methods.cot import run_cot


def test_resume_produces_the_same_file(tiny_bridge, tiny_problems, tmp_path):
    cfg = GenerationConfig(max_new_tokens=12, batch_size=2)
    full = tmp_path / "full.jsonl"
    run_cot(tiny_bridge, tiny_problems, generation=cfg, out=full, progress=False)
    lines = full.read_text().splitlines(keepends=True)
    assert len(lines) == len(tiny_problems)

    # Interrupted after two batches, in the middle of writing the third.
    part = tmp_path / "part.jsonl"
    part.write_text("".join(lines[:4]) + lines[4][:25])
    rows = run_cot(tiny_bridge, tiny_problems, generation=cfg, out=part, progress=False)

    # time and the decode call's name differ between the two runs; nothing else may
    strip = lambda text: [  # noqa: E731
        {**json.loads(x), "seconds": 0, "decode_call": ""} for x in text.splitlines()
    ]
    assert strip(part.read_text()) == strip(full.read_text())
    assert [r["id"] for r in rows] == [p.id for p in tiny_problems]


def test_rows_carry_grading_and_costs(tiny_bridge, tiny_problems):
    rows = run_cot(
        tiny_bridge,
        tiny_problems[:2],
        generation=GenerationConfig(max_new_tokens=5),
        progress=False,
    )
    for row in rows:
        assert row["generated_tokens"] == 5 if row["finish"] == "length" else row["finish"] == "eos"
        assert row["prompt_tokens"] > 0 and row["gold"] in ("0", "1")
        assert isinstance(row["correct"], bool) and row["seconds"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data.dataset", "nope"], "nope"),
        (["--data.split", "validation"], "validation"),
        (["--data.limit", "99999"], "99999"),
        (["--model.device", "cuda:7"], "cuda:7"),
        (["--model.dtype", "float8"], "float8"),
        (["--data_dir", "/nonexistent/data"], "/nonexistent/data"),
        (["--model.name", "/nonexistent/model", "--data.limit", "1"], "/nonexistent/model"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(argv, message, tmp_path, capsys):
    code = main(["generate", "--model.name", "tiny", "--out", str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("als") and ": error: " in err and "\n" not in err and message in err


def test_cli_generate_writes_summary(tiny_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["generate", "--model.name", str(tiny_dir), "--data.limit", "3"]
    argv += ["--generation.max_new_tokens", "4"]
    assert main([*argv, "--out", str(out), "--model.device", "cpu"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 3 and 0 <= summary["accuracy"] <= 1
    assert "accuracy" in capsys.readouterr().out
    # Same folder, other settings: refused, nothing lost.
    assert (
        main([*argv, "--out", str(out), "--model.device", "cpu", "--generation.batch_size", "2"])
        == 2
    )
    assert len((out / "generations.jsonl").read_text().splitlines()) == 3


def test_self_consistency_samples_and_resumes(tiny_bridge, tiny_problems, tmp_path):
    from workbench.methods.baselines import SCConfig, run_self_consistency

    gen = GenerationConfig(max_new_tokens=6, batch_size=6)
    out = tmp_path / "sc.jsonl"
    rows = run_self_consistency(
        tiny_bridge, tiny_problems[:4], SCConfig(k=3), generation=gen, out=out, progress=False
    )
    assert [r["method"] for r in rows] == ["sc@3"] * 4
    assert all(len(r["sample_answers"]) == 3 and r["generated_tokens"] <= 18 for r in rows)
    # samples differ across j (own seeds) and are reproducible with a different batching
    # (batch 4, k 3: samples of two problems share a batch)
    again = run_self_consistency(
        tiny_bridge,
        tiny_problems[:4],
        SCConfig(k=3),
        generation=GenerationConfig(max_new_tokens=6, batch_size=4),
        progress=False,
    )
    assert [r["sample_answers"] for r in again] == [r["sample_answers"] for r in rows]
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:2]) + "\n")
    resumed = run_self_consistency(
        tiny_bridge, tiny_problems[:4], SCConfig(k=3), generation=gen, out=out, progress=False
    )
    assert [r["sample_answers"] for r in resumed] == [r["sample_answers"] for r in rows]
