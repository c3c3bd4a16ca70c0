"""`als sample` on a published toy run: rows, seeds, resume, SC@k; then the contrast analysis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli.main import main
from workbench.core.artifacts import read_jsonl, read_rows
from workbench.experiment.rundir import RunDir, SamplesDir
from workbench.methods.baselines import SCConfig, run_self_consistency
from workbench.methods.sampling import pass_rates, voted_rows
from workbench.sources.models import ModelConfig, load_model

RUN = Path(__file__).resolve().parents[1] / "data" / "published-toy-smoke"
K = 4
ARGS = ["--split", "fit", "--limit", "16", "--sampling.k", str(K), "--sampling.temperature", "1.5"]


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> SamplesDir:
    out = tmp_path_factory.mktemp("samples") / "s"
    assert main(["sample", str(RUN), "--out", str(out), *ARGS]) == 0
    return SamplesDir(out)


def test_rows_carry_problem_sample_and_seed(samples):
    rows = samples.sample_rows()
    problems = samples.source().problems("fit")[:16]
    assert len(rows) == 16 * K
    place = {p.id: i for i, p in enumerate(problems)}
    for r in rows:
        assert r["id"] == f"{r['problem_id']}#{r['sample']}"
        assert r["seed"] == place[r["problem_id"]] * K + r["sample"]
        assert r["tokens"] and isinstance(r["text"], str)
    summary = json.loads(samples.summary_path.read_text())
    rates = pass_rates(rows)
    assert summary["mixed_problems"] == sum(r.mixed for r in rates.values())
    assert summary["per_sample"]["correct"] == sum(r["correct"] for r in rows)


def test_rerun_decodes_nothing_and_sc_matches_self_consistency(samples):
    before = samples.samples_path.read_bytes()
    assert main(["sample", str(RUN), "--out", str(samples.root), *ARGS]) == 0
    assert samples.samples_path.read_bytes() == before
    problems = samples.source().problems("fit")[:16]
    bridge = load_model(ModelConfig(name="toy"))
    sc = run_self_consistency(
        bridge,
        problems,
        SCConfig(k=K, temperature=1.5),
        generation=samples.generation(),
        prompt=samples.prompt(),
        progress=False,
    )
    voted = voted_rows(problems, samples.sample_rows())
    assert [r["sample_answers"] for r in voted] == [r["sample_answers"] for r in sc]
    assert [r["correct"] for r in voted] == [r["correct"] for r in sc]


def test_probe_on_samples_writes_tables_directions_and_figures(samples, tmp_path, monkeypatch):
    argv = ["probe", str(RUN), "--samples", str(samples.root), "--probe.n_folds", "2"]
    assert main([*argv, "--probe.n_bootstrap", "20"]) == 0
    assert not (RUN / ".writer.lock").exists()  # the samples folder was written, not the run
    summary = json.loads((samples.contrast_summary_path).read_text())
    n_layers = load_model(ModelConfig(name="toy")).cfg.n_layers
    probes = read_jsonl(samples.contrast_table("probes"))
    assert len(probes) == 4 * n_layers
    assert summary["chains"] == 16 * K and summary["problems"] == 16
    assert summary["mixed_problems"] == sum(
        r.mixed for r in pass_rates(read_rows(samples.samples_path)).values()
    )
    cos = read_jsonl(samples.contrast_table("cosines"))
    assert {r["metric"] for r in cos} >= {"cos_pooled_within", "pooled_share_along_difficulty"}
    assert all(-1.0001 <= r["value"] <= 1.0001 for r in cos if r["metric"].startswith("cos_"))
    for kind in ("pooled", "within", "difficulty"):
        assert (samples.contrast_directions(kind) / "directions.safetensors").exists()

    monkeypatch.setenv("ALS_PNG", "0")
    script = Path(__file__).resolve().parents[2] / "analyses" / "contrast.py"
    out = subprocess.run(
        [sys.executable, str(script), "--samples", str(samples.root), "--out_dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "contrast_probes.html" in out.stdout
    assert "| layer | pooled AUROC |" in out.stdout  # the measures' markdown table
    assert "Reasoning or difficulty" in (samples.root / "report.html").read_text()
    assert (tmp_path / "contrast_cosines.html").stat().st_size > 1000


def _probe(samples: SamplesDir) -> None:
    argv = ["probe", str(RUN), "--samples", str(samples.root), "--probe.n_folds", "2"]
    assert main([*argv, "--probe.n_bootstrap", "20"]) == 0


def test_derived_run_steers_with_the_within_direction(samples, tmp_path):
    if not (samples.contrast_directions("within")).exists():
        _probe(samples)
    out = tmp_path / "within"
    assert main(["derive", str(samples.root), "--kind", "within", "--out", str(out)]) == 0
    run = RunDir(out)
    plan = json.loads(run.selection_plan_path.read_text())
    probes = [
        r for r in read_jsonl(samples.contrast_table("probes")) if r["metric"] == "auroc_within"
    ]
    best = sorted(sorted(probes, key=lambda r: -r["value"])[:2], key=lambda r: r["layer"])
    assert plan["candidates"] == [r["layer"] for r in best]
    assert set(plan["taus"]["als"]) == {str(r["layer"]) for r in best}
    source = RunDir(RUN)
    assert run.rows("test", "cot") == source.rows("test", "cot")  # not decoded again
    assert main(["stage", "select", str(out)]) == 0
    assert main(["stage", "test", str(out)]) == 0
    results = run.results()
    assert [r["method"] for r in results["test"]] == ["cot", "als", "als-beside"]
    beside = [{**r, "method": "als"} for r in run.rows("test", "als-beside")]
    assert beside == source.rows("test", "als")  # the source's arm, not decoded again
    chosen = source.results()["steering"]  # (written before a later field, json_gate, existed)
    assert {k: results["beside_steering"][k] for k in chosen} == chosen
    assert main(["stage", "retime", str(out), "--limit", "6"]) == 0  # every arm, together
    retimed = {a["method"]: a for a in json.loads(run.retimed_path.read_text())["arms"]}
    assert set(retimed) == {"cot", "als", "als-beside"}
    assert all(a["identical_to_run"] == 6 for a in retimed.values())  # batch-invariant
    assert results["steering"]["layers"][0] in plan["candidates"]
    assert run.rows("test", "cot") == source.rows("test", "cot")


def test_router_routes_by_validation_quantiles(samples, tmp_path):
    if not (samples.contrast_directions("difficulty")).exists():
        _probe(samples)
    test = tmp_path / "test-samples"
    argv = ["sample", str(RUN), "--out", str(test), "--split", "test", "--sampling.k", "3"]
    assert main([*argv, "--sampling.temperature", "1.5"]) == 0
    route = ["route", str(RUN), "--fit_samples", str(samples.root), "--test_samples", str(test)]
    assert main([*route, "--budgets", "0,0.5,1"]) == 0
    table = {
        r["method"]: r for r in json.loads((test / "router" / "table.json").read_text())["table"]
    }
    cot, sc = table["cot"], table["sc@3"]
    assert table["router@0"]["accuracy"] == cot["accuracy"]  # budget 0: CoT everywhere
    assert table["router@1"]["accuracy"] == sc["accuracy"]  # budget 1: SC everywhere
    assert table["router@1"]["tokens_per_problem"] == sc["tokens_per_problem"]
    assert table["router-oracle"]["accuracy"] >= cot["accuracy"]  # keeps CoT's right answers
    assert table["router-oracle"]["only_base"] == 0
    assert 0.0 <= table["router@0.5"]["share_expensive"] <= 1.0
    assert {r["tradeoff_normaliser"] for r in table.values()} == {"sc@3"}
    assert table["sc@3"]["tradeoff"] == pytest.approx(50 * sc["accuracy"])  # its time is 100
    everywhere = table["router@1"]  # sends every problem to SC: no gap to SC
    assert everywhere["only_sc"] == everywhere["only_method_vs_sc"] == 0
    assert everywhere["tradeoff_gap_vs_sc"]["value"] == pytest.approx(0.0)
    gap = table["cot"]["tradeoff_gap_vs_sc"]
    assert gap["value"] == pytest.approx(table["cot"]["tradeoff"] - table["sc@3"]["tradeoff"])
    assert gap["ci_low"] <= gap["value"] <= gap["ci_high"]
    report = (test / "report.html").read_text()
    assert "The direction as a router" in report
    assert (test / "figures" / "router_tokens.html").exists()
    script = Path(__file__).resolve().parents[2] / "analyses" / "router.py"
    out = subprocess.run(
        [sys.executable, str(script), "--samples", str(test), "--out_dir", str(tmp_path / "figs")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ALS_PNG": "0"},
    )
    assert (tmp_path / "figs" / "router_seconds.html").stat().st_size > 1000, out.stdout
    assert "| router@1 | 1.00 |" in out.stdout and "gap to SC's trade-off" in out.stdout

    # like-for-like seconds: CoT, then the sampled chains, of the first 4 test problems re-decoded
    assert main([*route, "--budgets", "0,0.5,1", "--retime", "4"]) == 0
    timed = json.loads((test / "router" / "retimed.json").read_text())
    assert timed["cot"]["identical_to_committed"] == 4  # greedy reproduces the run's tokens
    assert timed["sample"]["identical_to_committed"] == 4 * 3  # and seeded sampling its chains
    retimed = {
        r["method"]: r for r in json.loads((test / "router" / "table.json").read_text())["table"]
    }
    rate = {"cot": timed["cot"]["seconds_per_token"], "sc": timed["sample"]["seconds_per_token"]}
    assert retimed["cot"]["seconds_per_problem"] == pytest.approx(
        cot["tokens_per_problem"] * rate["cot"]
    )
    assert retimed["router@1"]["seconds_per_problem"] == pytest.approx(
        sc["tokens_per_problem"] * rate["sc"]
    )
    assert retimed["cot"]["seconds_own_decode"] == cot["seconds_per_problem"]


def test_a_published_copy_resumes_without_decoding_again(samples, tmp_path):
    import shutil

    published = tmp_path / "published"
    assert main(["publish", str(samples.root), "--out", str(published)]) == 0
    assert (published / "samples.jsonl.gz").exists() and not (published / "samples.jsonl").exists()
    copy = tmp_path / "copy"
    shutil.copytree(published, copy)
    more = [a if a != "16" else "17" for a in ARGS]  # limit may grow when a run resumes
    assert main(["sample", str(RUN), "--out", str(copy), *more]) == 0
    rows = SamplesDir(copy).sample_rows()
    old = {r["id"]: r for r in samples.sample_rows()}
    assert len(rows) == 17 * K  # one more problem decoded, the 16 published ones kept
    assert all(old[r["id"]]["tokens"] == r["tokens"] for r in rows if r["id"] in old)


def test_fit_probe_within_strata_of_the_samples_pass_rate(samples, tmp_path, monkeypatch):
    import runpy
    import shutil

    from workbench.report.run_report import fit_probe_figures

    run = RunDir(tmp_path / "run")
    shutil.copytree(RUN, run.root)
    argv = ["probe", str(run.root), "--probe.fit_only", "true", "--probe.n_folds", "2"]
    argv += ["--probe.n_bootstrap", "20", "--probe.difficulty_from", str(samples.root)]
    assert main(argv) == 0
    rows = read_jsonl(run.probe_table("difficulty"))
    sampled = {r["problem_id"] for r in samples.sample_rows()}
    y = [bool(r["correct"]) for r in RunDir(RUN).rows("fit", "cot") if r["id"] in sampled]
    per_layer = [r for r in rows if r["layer"] is not None]
    assert {r["metric"] for r in per_layer} == {"auroc", "auroc_within_difficulty"}
    layers = {r["layer"] for r in read_jsonl(run.probe_table("layers"))}
    assert {r["layer"] for r in per_layer} == layers
    assert {(r["problems"], r["difficulty_model"]) for r in rows} == {(16, "toy")}
    assert {r["n"] for r in per_layer if r["metric"] == "auroc"} == {sum(y) * (16 - sum(y))}
    assert "probe_difficulty" in fit_probe_figures(run)
    script = Path(__file__).parents[2] / "analyses" / "difficulty_strata.py"
    monkeypatch.setenv("ALS_PNG", "0")
    monkeypatch.syspath_prepend(str(script.parent))
    monkeypatch.setattr(
        sys, "argv", [str(script), "--run", str(run.root), "--out_dir", str(tmp_path)]
    )
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 0 and (tmp_path / "difficulty_strata.html").stat().st_size > 1000


def test_difficulty_from_a_folder_not_of_samples_fails_before_any_pass(tmp_path, capsys):
    import shutil

    run = RunDir(tmp_path / "run")
    shutil.copytree(RUN, run.root)
    argv = ["probe", str(run.root), "--probe.fit_only", "true", "--probe.difficulty_from", str(RUN)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a folder written by `als sample`" in err
    assert not run.probe_dir.exists()
