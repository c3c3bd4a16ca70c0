"""Sweeps on a tiny run: grid and controls, resume across shards, update rules, and a selection
step that cannot see test rows."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import workbench.methods.cot as cot
from workbench.core.directions import LayerDirections
from workbench.core.grading import Verdict
from workbench.core.selection import pick_best
from workbench.engine.config import GenerationConfig
from workbench.engine.steering import RULES
from workbench.errors import WorkbenchError
from workbench.experiment.pipeline import ALSRunConfig, run_als
from workbench.experiment.sweeps import (
    SweepConfig,
    conditions,
    control_directions,
    run_sweep,
    select_and_test,
    sweep_table,
)


@pytest.fixture
def tiny_run(tiny_bridge, tmp_path_factory, monkeypatch):
    monkeypatch.setattr(
        cot,
        "grade",
        lambda text, gold, family, answer_format="boxed": Verdict(
            predicted="0", correct=sum(map(ord, gold + text[:2])) % 2 == 0, method="boxed"
        ),
    )
    run = tmp_path_factory.mktemp("run")
    gen = GenerationConfig(max_new_tokens=4, batch_size=4)
    run_als(
        tiny_bridge,
        run,
        ALSRunConfig(n_fit=16, n_val=3, n_test=3, n_candidate_layers=1),
        generation=gen,
    )
    (run / "config.json").write_text(json.dumps({"generation": gen.__dict__}))
    return run


SWEEP = SweepConfig(alphas=(0.1, 0.5), controls=("random", "shuffled", "negated"))


def _strip(table):
    return [
        {k: v for k, v in r.items() if k not in ("seconds", "seconds_per_problem")} for r in table
    ]


def test_sharded_interrupted_sweep_equals_one_pass(tiny_bridge, tiny_run, tmp_path):
    other = tmp_path / "copy"
    shutil.copytree(tiny_run, other)
    full = run_sweep(tiny_bridge, tiny_run, SWEEP)
    assert len(full) == len(conditions(SWEEP, 0)) == 2 * 4  # 2 alphas x (ALS + 3 controls)
    for row in full:  # next-token effects measured wherever steering fired
        fired = row["intervention_rate"] > 0
        assert (row["kl_at_steered"] is not None) == fired
        assert not fired or row["kl_at_steered"] >= 0
    first = run_sweep(tiny_bridge, other, SweepConfig(**{**SWEEP.__dict__, "shard": "0/2"}))
    assert len(first) == 4
    victim = next(p for p in (other / "sweep" / "val").glob("L*.jsonl") if "effects" not in p.name)
    victim.write_text(victim.read_text().splitlines()[0] + "\n")  # interrupted condition
    run_sweep(tiny_bridge, other, SweepConfig(**{**SWEEP.__dict__, "shard": "1/2"}))
    merged = run_sweep(tiny_bridge, other, SweepConfig(**{**SWEEP.__dict__, "shard": "0/2"}))
    assert _strip(merged) == _strip(full)


def test_selection_reads_validation_only(tiny_bridge, tiny_run):
    run_sweep(tiny_bridge, tiny_run, SWEEP)
    grid = json.loads((tiny_run / "sweep" / "grid.json").read_text())
    # Plant test rows that would make another ALS condition look perfect on test.
    val = {r["name"]: r for r in sweep_table(tiny_run, "val")}
    best_val = pick_best([r for r in val.values() if r["direction"] == "als"])
    decoy = next(c for c in grid if c["direction"] == "als" and c["name"] != best_val["name"])
    ids = json.loads((tiny_run / "splits" / "test.json").read_text())["ids"]
    (tiny_run / "sweep" / "test").mkdir(parents=True, exist_ok=True)
    (tiny_run / "sweep" / "test" / f"{decoy['name']}.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "id": i,
                    "method": decoy["name"],
                    "predicted": "1",
                    "correct": True,
                    "finish": "stop",
                    "generated_tokens": 1,
                    "interventions": 0,
                    "tokens": [1],
                    "seconds": 0.1,
                }
            )
            + "\n"
            for i in ids
        )
    )
    report = select_and_test(tiny_bridge, tiny_run, SWEEP)
    assert report["validation_best"]["name"] == best_val["name"]
    assert {r["direction"] for r in report["test"]} == {"als", "random:0", "shuffled:0", "negated"}
    with pytest.raises(WorkbenchError, match="validation"):
        SweepConfig(split="test")


def test_controls_have_the_stated_norms_and_seeds(tiny_run):
    from workbench.core.activations import ActivationSet

    d = LayerDirections.load(tiny_run / "directions")
    fit = ActivationSet.load(tiny_run / "fit" / "activations")
    r0 = control_directions(d, "random:0")
    torch.testing.assert_close(r0.vectors.norm(dim=-1), d.vectors.norm(dim=-1))
    assert torch.equal(control_directions(d, "random:0").vectors, r0.vectors)
    assert not torch.allclose(control_directions(d, "random:1").vectors, r0.vectors)
    torch.testing.assert_close(control_directions(d, "negated").vectors, -d.vectors)
    s0 = control_directions(d, "shuffled:0", fit, "mean_generated")
    assert not torch.allclose(s0.vectors, d.vectors)


def test_update_rules():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(5, 7, 16, generator=g)
    v = torch.randn(16, generator=g)
    v = v / v.norm()
    cos = torch.cosine_similarity(h, v.expand_as(h), dim=-1)
    kept = RULES["norm_preserving"](h, v, cos, 3.0)
    torch.testing.assert_close(kept.norm(dim=-1), h.norm(dim=-1))
    aligned = v.expand(5, 7, 16) * 4.0
    ones = torch.ones(5, 7)
    torch.testing.assert_close(RULES["drift_scaled"](aligned, v, ones, 3.0), aligned)
    torch.testing.assert_close(RULES["additive"](h, v, cos, 2.0), h + 2.0 * v)


def test_report_has_the_sweep_section(tiny_bridge, tiny_run):
    from workbench.report.run_report import build_run_report

    run_sweep(tiny_bridge, tiny_run, SweepConfig(alphas=(0.1,), controls=("negated",)))
    html = build_run_report(tiny_run).read_text()
    assert "Ablations (als sweep)" in html
    for name in ("sweep_rules", "sweep_by_alpha", "sweep_frontier"):
        assert (tiny_run / "figures" / f"{name}.html").exists()
