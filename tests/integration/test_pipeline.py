"""`als run` end to end on the tiny model, with planted labels instead of real grading (a random
tiny model solves nothing): outputs, resume, and splits that never touch the test set."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
import torch

import workbench.methods.cot as cot
from workbench.core.artifacts import read_jsonl
from workbench.core.grading import Verdict
from workbench.core.prompts import PromptConfig
from workbench.engine.config import GenerationConfig
from workbench.errors import WorkbenchError
from workbench.experiment.pipeline import ALSRunConfig, run_als
from workbench.report.run_report import build_run_report

SMALL = {"n_fit": 16, "n_val": 4, "n_test": 6, "alphas": (0.2,), "n_candidate_layers": 1}
"""A run small enough for the tiny model, with a one-layer, one-alpha grid."""


@pytest.fixture
def planted_grader(monkeypatch):
    def grade(text, gold, family, answer_format="boxed"):
        return Verdict(predicted="0", correct=sum(map(ord, gold)) % 2 == 0, method="boxed")

    monkeypatch.setattr(cot, "grade", grade)


def test_als_run_end_to_end_and_resume(tiny_bridge, tiny_dir, planted_grader, tmp_path):
    cfg = ALSRunConfig(n_fit=16, n_val=4, n_test=6, alphas=(0.2,), n_candidate_layers=1)
    gen = GenerationConfig(max_new_tokens=6, batch_size=4)
    results = run_als(tiny_bridge, tmp_path, cfg, generation=gen)
    assert not (tmp_path / "report.html").exists()  # the report is its own stage
    build_run_report(tmp_path)
    for path in [
        "report.html",
        "results.json",
        "selection.json",
        "directions/directions.json",
        "fit/activations/activations.json",
        "figures/test_accuracy.html",
        "test/cot.jsonl",
        "test/als.jsonl",
    ]:
        assert (tmp_path / path).exists(), path
    cot_row, als_row = results["test"]
    assert cot_row["n"] == als_row["n"] == 6 and 0 <= als_row["mcnemar_p"] <= 1
    assert als_row["intervention_rate"] > 0  # tau at the 0.5 quantile fires on some tokens

    splits = {
        n: json.loads((tmp_path / "splits" / f"{n}.json").read_text())["ids"]
        for n in ("fit", "val", "test")
    }
    assert not set(splits["fit"] + splits["val"]) & set(splits["test"])
    assert all(i.startswith("gsm8k/train/") for i in splits["fit"] + splits["val"])
    selection = json.loads((tmp_path / "selection.json").read_text())
    assert all(g["n"] == 4 for g in selection["grid"])  # chosen on the 4 validation problems

    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.jsonl")}
    again = run_als(tiny_bridge, tmp_path, cfg, generation=gen)
    assert again["test"] == results["test"]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.jsonl")} == before
    saved = json.loads((tmp_path / "config.json").read_text())
    # one settings record: the model as loaded, run, generation and prompt settings, provenance
    assert saved["model"]["name"] == str(tiny_dir) and saved["als"]["n_test"] == 6
    assert saved["prompt"]["instruction"].endswith("\\boxed{}.")
    assert saved["provenance"]["library_version"] and "self_check" not in saved["model"]
    with pytest.raises(WorkbenchError, match="other settings"):
        run_als(tiny_bridge, tmp_path, replace(cfg, alphas=(0.5,)), generation=gen)
    # the fit's acceptance threshold is not a decoding setting: it resumes, and is recorded
    lowered = run_als(tiny_bridge, tmp_path, replace(cfg, min_per_class=2), generation=gen)
    assert lowered["test"] == results["test"]
    assert json.loads((tmp_path / "config.json").read_text())["als"]["min_per_class"] == 2


def test_probe_on_a_finished_run(tiny_bridge, planted_grader, tmp_path):
    from workbench.experiment.probe_run import ProbeRunConfig, probe_run
    from workbench.report.run_report import build_run_report

    cfg = ALSRunConfig(n_fit=16, n_val=2, n_test=4, alphas=(0.2,), n_candidate_layers=1)
    run_als(tiny_bridge, tmp_path, cfg, generation=GenerationConfig(max_new_tokens=5, batch_size=4))
    (tmp_path / "config.json").write_text(json.dumps({"generation": {"batch_size": 4}}))
    summary = probe_run(tiny_bridge, tmp_path, ProbeRunConfig(n_bootstrap=50, early_ks=(1, 4)))
    assert summary["best_layer"] in range(tiny_bridge.cfg.n_layers)
    assert 0 <= summary["best_auroc"]["value"] <= 1
    assert set(summary["drift_by_group"]) >= {"ALS (steered)"}
    layers = [json.loads(x) for x in (tmp_path / "probe" / "layers.jsonl").read_text().splitlines()]
    metrics = {r["metric"] for r in layers}
    assert {"auroc", "auroc_shuffled", "probe_accuracy", "cohens_d"} <= metrics
    early = [json.loads(x) for x in (tmp_path / "probe" / "early.jsonl").read_text().splitlines()]
    assert {r["k"] for r in early} == {1, 4, "all"}
    report = build_run_report(tmp_path).read_text()
    assert "Which layers carry the direction" in report
    assert (tmp_path / "figures" / "probe_trajectories.html").exists()


def test_math_run_fits_on_the_pool_and_tests_on_math500(tiny_bridge, planted_grader, tmp_path):
    cfg = ALSRunConfig(dataset="math", n_fit=12, n_val=2, n_test=3, n_candidate_layers=1)
    run_als(tiny_bridge, tmp_path, cfg, generation=GenerationConfig(max_new_tokens=4, batch_size=4))
    splits = {
        n: json.loads((tmp_path / "splits" / f"{n}.json").read_text())["ids"]
        for n in ("fit", "val", "test")
    }
    from workbench.sources.data import load_problems

    math500 = {p.id for p in load_problems("math", "test")}
    assert set(splits["test"]) <= math500
    assert not (set(splits["fit"]) | set(splits["val"])) & math500


def test_compare_all_methods_on_a_finished_run(tiny_bridge, planted_grader, tmp_path):
    from workbench.experiment.compare import CompareConfig, run_compare
    from workbench.report.run_report import build_run_report

    cfg = ALSRunConfig(n_fit=16, n_val=2, n_test=3, alphas=(0.2,), n_candidate_layers=1)
    gen = GenerationConfig(max_new_tokens=5, batch_size=4)
    run_als(tiny_bridge, tmp_path, cfg, generation=gen)
    (tmp_path / "config.json").write_text(json.dumps({"generation": gen.__dict__}))
    compare = CompareConfig(sc_k=2, latentseek_reward="oracle", latentseek_iters=2)
    table = run_compare(tiny_bridge, tmp_path, compare)
    assert [r["method"] for r in table] == ["cot", "sc@2", "latentseek-oracle", "als"]
    assert all(r["n"] == 3 for r in table)
    sc, ls = table[1], table[2]
    assert sc["tokens_per_problem"] <= 2 * 5 and ls["backward_passes"] <= 2
    assert sc["base"] == "cot" and sc["mcnemar_p"] is not None and table[0]["eas"] is None
    # the paper's trade-off on the problems every method decoded, time normalised by the
    # slowest iterative method (SC or LatentSeek), named in every entry: it scores 50 x acc
    iterative = [r for r in table if r["method"] in ("sc@2", "latentseek-oracle")]
    slowest = max(iterative, key=lambda r: r["seconds_per_problem"])
    assert {r["tradeoff_normaliser"] for r in table} == {slowest["method"]}
    assert slowest["tradeoff"] == pytest.approx(50 * slowest["accuracy"])
    assert table[0]["tradeoff_change_vs_cot"] == 0 and {r["tradeoff_n"] for r in table} == {3}
    assert "Methods compared" in build_run_report(tmp_path).read_text()


def test_compare_retimes_and_limits_latentseek(tiny_bridge, planted_grader, tmp_path, caplog):
    from workbench.core.artifacts import read_jsonl
    from workbench.experiment.compare import CompareConfig, run_compare

    cfg = ALSRunConfig(n_fit=16, n_val=2, n_test=3, alphas=(0.2,), n_candidate_layers=1)
    gen = GenerationConfig(max_new_tokens=5, batch_size=4)
    run_als(tiny_bridge, tmp_path, cfg, generation=gen)
    compare = CompareConfig(
        methods=("cot", "sc", "latentseek", "als"),
        sc_k=2,
        sc_n_problems=1,
        latentseek_reward="oracle",
        latentseek_iters=1,
        latentseek_n_problems=2,
        retime=True,
    )
    with caplog.at_level("WARNING", logger="workbench.experiment.compare"):
        table = run_compare(tiny_bridge, tmp_path, compare)
    assert not caplog.records  # greedy re-decoding reproduced the run's texts
    for method in ("cot", "als"):
        again = read_jsonl(tmp_path / "compare" / f"{method}.jsonl")
        saved = read_jsonl(tmp_path / "test" / f"{method}.jsonl")
        assert [r["text"] for r in again] == [r["text"] for r in saved]
    cot, sc, ls, als = table
    assert (cot["n"], sc["n"], ls["n"], als["n"]) == (3, 1, 2, 3)
    # LatentSeek's speed-up is against ALS on its own two problems, not all three
    ls_ids = {r["id"] for r in read_jsonl(tmp_path / "compare" / "latentseek-oracle.jsonl")}
    als_rows = [r for r in read_jsonl(tmp_path / "compare" / "als.jsonl") if r["id"] in ls_ids]
    assert len(als_rows) == 2  # rows are written as they finish: matched by id, not file order
    als_sec = sum(r["seconds"] for r in als_rows) / 2
    assert ls["als_speedup"] == pytest.approx(ls["seconds_per_problem"] / als_sec)
    assert ls["als_accuracy_same"] == sum(r["correct"] for r in als_rows) / 2
    assert {r["tradeoff_n"] for r in table} == {1}  # SC decoded one problem


def test_cli_run_resumes_with_the_same_options_and_refuses_others(planted_grader, tmp_path):
    from workbench.cli.main import main

    out = tmp_path / "run"
    argv = [
        "run", "--model.name", "tiny", "--model.device", "cpu", "--out", str(out),
        "--als.n_fit", "16", "--als.n_val", "2", "--als.n_test", "2", "--als.alphas", "0.2",
        "--als.n_candidate_layers", "1", "--generation.max_new_tokens", "4",
        "--generation.batch_size", "4",
    ]  # fmt: skip
    assert main(argv) == 0
    before = (out / "test" / "als.jsonl").read_text()
    assert main(argv) == 0  # tuple options (alphas) compare equal to their JSON record
    assert (out / "test" / "als.jsonl").read_text() == before
    assert main([*argv, "--als.alphas", "0.5"]) == 2
    assert (out / "test" / "als.jsonl").read_text() == before


def test_each_stage_reruns_alone(tiny_bridge, planted_grader, tmp_path):
    import shutil

    import torch

    from workbench import stages
    from workbench.experiment.rundir import RunDir

    cfg = ALSRunConfig(n_fit=16, n_val=2, n_test=4, alphas=(0.2,), n_candidate_layers=1)
    gen = GenerationConfig(max_new_tokens=5, batch_size=4)
    results = run_als(tiny_bridge, tmp_path, cfg, generation=gen)
    run = RunDir(tmp_path)
    saved = run.directions()
    shutil.rmtree(run.directions_path)
    assert torch.equal(stages.directions(run).vectors, saved.vectors)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.jsonl")}
    assert stages.run_stage("test", run, bridge=tiny_bridge) == results  # nothing decoded again
    assert stages.run_stage("select", run, bridge=tiny_bridge)["best"] == run.selection()["best"]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.jsonl")} == before
    assert stages.report(run) == run.report_path and run.report_path.exists()
    with pytest.raises(WorkbenchError, match="unknown stage"):
        stages.run_stage("magic", run)


def test_a_run_folder_from_before_0_2_is_refused_then_upgraded(
    tiny_bridge, planted_grader, tmp_path
):
    from workbench.experiment.rundir import RunDir
    from workbench.experiment.upgrade import upgrade_run

    cfg = ALSRunConfig(n_fit=16, n_val=2, n_test=4, alphas=(0.2,), n_candidate_layers=1)
    run_als(tiny_bridge, tmp_path, cfg, generation=GenerationConfig(max_new_tokens=4, batch_size=4))
    run = RunDir(tmp_path)
    current = {p: json.loads(p.read_text()) for p in (run.results_path, run.selection_path)}
    old_names = {
        "tokens_per_problem": "gen_tokens",
        "seconds_per_problem": "sec_per_problem",
        "only_base": "only_cot",
        "only_method": "only_als",
    }

    def to_old(value):
        if isinstance(value, list):
            return [to_old(v) for v in value]
        if isinstance(value, dict):
            return {old_names.get(k, k): to_old(v) for k, v in value.items() if k != "base"}
        return value

    for path, value in current.items():
        path.write_text(json.dumps(to_old(value)))
    with pytest.raises(WorkbenchError, match="als upgrade"):
        run.require_finished()
    assert set(upgrade_run(run)) == set(current)
    results = json.loads(run.results_path.read_text())
    cot_then, als_then = current[run.results_path]["test"]
    assert results["test"][1] == als_then and als_then["base"] == "cot"
    assert results["test"][0] == {k: v for k, v in cot_then.items() if k != "base"}
    assert upgrade_run(run) == []  # a second run changes nothing
    run.require_finished()
    build_run_report(run)


def test_self_verification_labels_stage(tiny_bridge, planted_grader, tmp_path, monkeypatch):
    """label_source='self': the labels stage writes both label sources (a generation passes only
    if all four verifiers say TRUE), the directions are fit on the self labels, and the results
    report how the two sources agree."""
    import workbench.experiment.labels as labels
    from workbench import stages
    from workbench.engine.sequences import Completion
    from workbench.experiment.rundir import RunDir
    from workbench.methods.latentseek import VERDICT_MARK, LatentSeekConfig, verifier_prompts

    calls = []

    def says_true(prompt):  # a planted verifier: its answer is a function of its prompt
        return sum(prompt) % 5 != 0

    def planted_decode(bridge, prompts, cfg, *, on_complete, **kwargs):
        calls.append(len(prompts))
        for i, p in enumerate(prompts):
            verdict = "TRUE" if says_true(p) else "FALSE"
            answer = Completion(
                tokens=(1, 2),
                text=f"ok. {VERDICT_MARK} {verdict}",
                prompt_tokens=len(p),
                finish="eos",
                seconds=0.0,
                interventions=0,
                steered_steps=(),
            )
            on_complete(i, answer)

    monkeypatch.setattr(labels, "decode", planted_decode)
    cfg = ALSRunConfig(
        n_fit=16, n_val=2, n_test=2, alphas=(0.2,), n_candidate_layers=1, label_source="self"
    )
    results = run_als(tiny_bridge, tmp_path, cfg, generation=GenerationConfig(max_new_tokens=4))
    run = RunDir(tmp_path)
    rows = read_jsonl(run.labels_path)
    assert len(rows) == 16 and calls == [64]  # every generation's four prompts in one call
    problems = {p.id: p for p in run.problems("fit")}
    texts = {r["id"]: r["text"] for r in run.rows("fit", "cot")}
    for r in rows:
        prompts = verifier_prompts(tiny_bridge.tokenizer, problems[r["id"]], texts[r["id"]])
        assert r["self"] == all(says_true(p) for p in prompts)
        assert r["verifier_tokens"] == 8
    assert 0 < sum(r["self"] for r in rows) < 16  # both labels occur: the test can fail
    assert run.directions().provenance["label_source"] == "self"
    agreement = results["label_agreement"]
    assert agreement["n"] == 16
    assert agreement["agree"] == sum(r["gold"] == r["self"] for r in rows)
    assert stages.labels(run, tiny_bridge) and calls == [64]  # resumed: nothing verified again
    # part of the fit split: the first generations in split order
    run.labels_path.unlink()
    stages.labels(run, tiny_bridge, limit=3)
    assert [r["id"] for r in read_jsonl(run.labels_path)] == [p for p in problems][:3]
    monkeypatch.undo()
    # the real verifier on the tiny model: four short verifications of each generation
    run.labels_path.unlink()
    real = labels.self_verify_fit(
        tiny_bridge, run, cfg=LatentSeekConfig(verifier_max_new_tokens=4), progress=False
    )
    assert set(real) == {r["id"] for r in run.rows("fit", "cot")}
    assert all(r["verifier_tokens"] > 0 for r in read_jsonl(run.labels_path))


def test_fit_stage_decodes_fit_and_val_cot_and_test_cot_shares_the_arms_batch(
    tiny_bridge, planted_grader, tmp_path
):
    from workbench.experiment.pipeline import fit_stage, make_splits, record_run_settings
    from workbench.experiment.rundir import RunDir
    from workbench.methods.cot import run_cot
    from workbench.sources.models import model_config_of

    cfg = ALSRunConfig(**SMALL)
    gen = GenerationConfig(max_new_tokens=6, batch_size=4)
    run = RunDir(tmp_path)
    record_run_settings(run, model_config_of(tiny_bridge), cfg, gen, PromptConfig())
    make_splits(run, cfg)
    fit_stage(tiny_bridge, run, cfg)
    assert not run.rows_path("test", "cot").exists()  # test CoT waits for the test stage
    for split, method in (("fit", "cot-fit"), ("val", "cot")):
        rows = {r["id"]: r for r in run.rows(split, "cot")}  # in the order they finished
        alone = run_cot(tiny_bridge, run.problems(split), generation=gen, progress=False)
        assert [rows[r["id"]]["tokens"] for r in alone] == [r["tokens"] for r in alone], split
        assert {r["method"] for r in rows.values()} == {method}
        assert len({r["decode_call"] for r in rows.values()}) == 1
    # fit and validation CoT were one decode call; the later stages resume those rows
    fit_call = run.rows("fit", "cot")[0]["decode_call"]
    assert run.rows("val", "cot")[0]["decode_call"] == fit_call
    before = run.rows_path("val", "cot").stat().st_mtime_ns
    results = run_als(tiny_bridge, tmp_path, cfg, generation=gen)
    assert run.rows_path("val", "cot").stat().st_mtime_ns == before
    # test: CoT and ALS in one batch, so their seconds are like for like, and the table says so
    calls = {r["decode_call"] for m in ("cot", "als") for r in run.rows("test", m)}
    assert len(calls) == 1 and fit_call not in calls
    assert [r["timed_with_cot"] for r in results["test"]] == ["is cot", "together"]
    # no iterative method among the test arms: no normaliser, so no trade-off score
    for r in results["test"]:
        assert r["tradeoff"] is None and r["tradeoff_change_vs_cot"] is None
        assert r["tradeoff_normaliser"] is None and r["tradeoff_normaliser_seconds"] is None


def test_fit_stage_records_the_fit_states_while_decoding(
    tiny_bridge, planted_grader, tmp_path, monkeypatch
):
    import workbench.core.activations as activations
    from workbench.experiment.pipeline import fit_stage, make_splits, record_run_settings
    from workbench.experiment.rundir import RunDir
    from workbench.sources.models import model_config_of

    cfg = ALSRunConfig(**SMALL, reference=True)
    gen = GenerationConfig(max_new_tokens=6, batch_size=4)
    run = RunDir(tmp_path / "run")
    record_run_settings(run, model_config_of(tiny_bridge), cfg, gen, PromptConfig())
    make_splits(run, cfg)
    with monkeypatch.context() as patch:  # no teacher-forced pass may run
        patch.setattr(activations, "_batch_states", lambda *a, **k: pytest.fail("forced pass"))
        recorded = fit_stage(tiny_bridge, run, cfg)
    settings = activations.cached_settings(run.fit_activations_dir)
    cache_cfg = activations.CacheConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    )
    assert cache_cfg.trajectory_layers and cache_cfg.early_ks
    forced = activations.cache_activations(
        tiny_bridge,
        run.problems("fit"),
        run.rows("fit", "cot"),
        tmp_path / "forced",
        cache_cfg,
        final_out=tmp_path / "forced-final",
        progress=False,
    )
    assert recorded.problem_ids == forced.problem_ids
    # shards hold rows as they finished; what the stages read is in the fit split's order
    assert run.fit_states().problem_ids == tuple(p.id for p in run.problems("fit"))
    for key, states in forced.states.items():
        torch.testing.assert_close(recorded.states[key], states, atol=1e-4, rtol=1e-4)
    for got, want in zip(recorded.trajectories, forced.trajectories, strict=True):
        torch.testing.assert_close(got.float(), want.float(), atol=2e-2, rtol=2e-3)
    final = activations.ActivationSet.load(run.fit_final_dir)
    want = activations.ActivationSet.load(tmp_path / "forced-final")
    order = [final.problem_ids.index(pid) for pid in want.problem_ids]
    torch.testing.assert_close(
        final.at("mean_generated")[order], want.at("mean_generated"), atol=1e-4, rtol=1e-4
    )


def test_reference_arm_is_the_authors_gated_configuration(tiny_bridge, planted_grader, tmp_path):
    from workbench.core.artifacts import read_json
    from workbench.core.directions import LayerDirections
    from workbench.core.steering import SteeringSpec, steer
    from workbench.experiment.rundir import RunDir
    from workbench.methods.cot import run_cot

    alphas = (0.5, 2.0)
    cfg = ALSRunConfig(
        **SMALL, reference=True, reference_alphas=alphas, reference_always=True, reference_alpha=0.5
    )
    gen = GenerationConfig(max_new_tokens=6, batch_size=4)
    results = run_als(tiny_bridge, tmp_path, cfg, generation=gen)
    methods = ["cot", "als", "als-reference", "als-reference-always"]
    assert [r["method"] for r in results["test"]] == methods
    run = RunDir(tmp_path)
    last = tiny_bridge.cfg.n_layers - 1
    final = LayerDirections.load(run.reference_directions_path)
    assert final.layers == (last,) and final.provenance["site"] == "final"
    # alpha chosen on validation, among the grid, by the selection rule; test untouched by it
    chosen = read_json(run.reference_selection_path)
    assert [row["alpha"] for row in chosen["grid"]] == list(alphas)
    assert chosen["best"]["alpha"] in alphas
    assert all(run.rows_path("val", f"als-reference-a{a:g}").exists() for a in alphas)
    spec = SteeringSpec.authors(last, chosen["best"]["alpha"], 0.1)
    assert results["reference_steering"] == asdict(spec)
    assert results["reference_steering"]["tau"] == 0.1
    with steer(tiny_bridge, spec, final):  # decoded alone: as in the shared batch
        again = run_cot(tiny_bridge, run.problems("test"), generation=gen, progress=False)
    assert [r["tokens"] for r in run.rows("test", "als-reference")] == [r["tokens"] for r in again]
    always = SteeringSpec.authors(last, 0.5, 2.0)
    assert results["reference_always_steering"] == asdict(always)
    assert results["test"][3]["intervention_rate"] == 1.0  # always on
    assert results["validation"]["reference"]["best"] == chosen["best"]
    build_run_report(tmp_path)  # the report takes the extra arms


def test_random_control_arm_pushes_as_hard_along_a_random_direction(
    tiny_bridge, planted_grader, tmp_path
):
    from workbench.core.activations import ActivationSet
    from workbench.core.selection import tau_from_quantile
    from workbench.core.steering import SteeringSpec
    from workbench.experiment.rundir import RunDir
    from workbench.experiment.sweeps import control_directions

    cfg = ALSRunConfig(
        n_fit=16, n_val=4, n_test=6, alphas=(0.2,), n_candidate_layers=1, control=True
    )
    gen = GenerationConfig(max_new_tokens=6, batch_size=4)
    results = run_als(tiny_bridge, tmp_path, cfg, generation=gen)
    assert [r["method"] for r in results["test"]] == ["cot", "als", "random-control"]
    run = RunDir(tmp_path)
    best = run.selection()["best"]
    random = control_directions(run.directions(), "random:0")
    layer = best["layer"]
    torch.testing.assert_close(random.vector(layer).norm(), run.directions().vector(layer).norm())
    traj = ActivationSet.load(run.fit_activations_dir)  # every layer's token states, kept
    states = torch.cat(
        [t[:, traj.trajectory_layers.index(layer)].float() for t in traj.trajectories]
    )
    cos = torch.cosine_similarity(states, random.vector(layer)[None], dim=-1)
    tau = tau_from_quantile(cos, best["tau_quantile"])
    assert results["control_steering"] == asdict(
        SteeringSpec(layers=(layer,), alpha=best["alpha"], tau=tau)
    )
    assert len(run.rows("test", "random-control")) == 6
    # on validation too, after the pick, with the same steering; never a grid row
    val_control = run.selection()["val_control"]
    assert (
        val_control["n"] == 4
        and val_control["tau"] == tau
        and val_control["alpha"] == best["alpha"]
    )
    assert len(run.rows("val", "random-control")) == 4
    assert all(not g["method"].startswith("random") for g in run.selection()["grid"])


def test_selection_plan_lets_select_and_test_resume_without_fit_states(
    tiny_bridge, planted_grader, tmp_path
):
    import shutil

    from workbench.core.activations import ActivationSet
    from workbench.experiment.rundir import RunDir

    cfg = ALSRunConfig(**SMALL, control=True, n_tau_fit=5)
    gen = GenerationConfig(max_new_tokens=6, batch_size=4)
    results = run_als(tiny_bridge, tmp_path, cfg, generation=gen)
    run = RunDir(tmp_path)
    plan = json.loads(run.selection_plan_path.read_text())
    # tau comes from the first n_tau_fit fit generations only
    traj = ActivationSet.load(run.fit_trajectories_dir)
    fit_ids = tuple(p.id for p in run.problems("fit"))
    assert traj.problem_ids == fit_ids[:5] and plan["n_tau_generations"] == 5
    assert plan["candidates"] == run.selection()["candidates"]
    assert run.selection()["best"]["tau"] == plan["taus"]["als"][str(plan["candidates"][0])]["0.5"]
    # a published copy holds no fit states: selection and test still resume from the plan
    for states in (run.fit_activations_dir, run.fit_trajectories_dir):
        shutil.rmtree(states)
    for done in (run.results_path, run.selection_path, run.rows_path("test", "random-control")):
        done.unlink()
    again = run_als(tiny_bridge, tmp_path, cfg, generation=gen)

    timed = {"seconds_per_problem", "tradeoff", "tradeoff_change_vs_cot", "timed_with_cot"}

    def untimed(rows):
        return [{k: v for k, v in r.items() if k not in timed} for r in rows]

    assert untimed(again["test"]) == untimed(results["test"])  # the control arm decoded again
    assert not run.fit_activations_dir.exists()  # and no teacher-forced pass ran
    assert again["fit_separation"] == results["fit_separation"]


def test_tau_from_the_fit_pass_s_token_states_equals_a_replay(
    tiny_bridge, planted_grader, tmp_path, monkeypatch
):
    import workbench.experiment.pipeline as pipeline
    from workbench.core.activations import ActivationSet
    from workbench.experiment.rundir import RunDir

    cfg = ALSRunConfig(**SMALL, control=True)
    gen = GenerationConfig(max_new_tokens=6, batch_size=4)
    kept = run_als(tiny_bridge, tmp_path / "kept", cfg, generation=gen)
    run = RunDir(tmp_path / "kept")
    aset = ActivationSet.load(run.fit_activations_dir)
    assert aset.trajectory_layers == tuple(range(tiny_bridge.cfg.n_layers))
    assert not run.fit_trajectories_dir.exists()  # no second pass
    monkeypatch.setattr(pipeline, "TOKEN_STATES_BUDGET", 0)  # over budget: replay for tau
    replayed = run_als(tiny_bridge, tmp_path / "replayed", cfg, generation=gen)
    again = RunDir(tmp_path / "replayed")
    assert ActivationSet.load(again.fit_activations_dir).trajectory_layers == ()
    assert again.fit_trajectories_dir.exists()
    plans = [json.loads(r.selection_plan_path.read_text()) for r in (run, again)]
    assert plans[0]["candidates"] == plans[1]["candidates"]
    for arm in ("als", "random-control"):
        for layer, taus in plans[0]["taus"][arm].items():
            for q, tau in taus.items():
                assert tau == pytest.approx(plans[1]["taus"][arm][layer][q], abs=1e-6)
    assert [r["accuracy"] for r in kept["test"]] == [r["accuracy"] for r in replayed["test"]]


def test_probe_of_the_fit_split_needs_no_finished_run_and_no_pass_of_its_own(
    tiny_bridge, planted_grader, tmp_path
):
    from workbench.experiment.probe_run import ProbeRunConfig, probe_run
    from workbench.experiment.rundir import RunDir

    cfg = ALSRunConfig(n_fit=16, n_val=2, n_test=4, alphas=(0.2,), n_candidate_layers=1)
    run_als(tiny_bridge, tmp_path, cfg, generation=GenerationConfig(max_new_tokens=5, batch_size=4))
    run = RunDir(tmp_path)
    run.results_path.unlink()  # as if the test split were still decoding
    probe = ProbeRunConfig(n_bootstrap=50, fit_only=True)
    summary = probe_run(tiny_bridge, run, probe)
    layers = read_jsonl(run.probe_table("layers"))
    auroc = [r for r in layers if r["metric"] == "auroc" and r["position"] == "mean_generated"]
    assert summary["best_auroc"]["value"] == max(r["value"] for r in auroc)
    assert {r["k"] for r in read_jsonl(run.probe_table("early"))} == {1, 4, 16, 64, "all"}
    assert not run.probe_states("fit-early").exists()  # the fit stage's states, early means in
    assert not run.probe_summary_path.exists()
    from workbench.report.run_report import fit_probe_figures, unfinished_figures

    figs = fit_probe_figures(run)  # figures of the unfinished run, from the two tables alone
    assert {"probe_auroc", "probe_early"} <= set(figs)
    assert len(figs["probe_early"].data) == 1  # one layer: the best
    assert {"probe_auroc", "selection_grid"} <= set(unfinished_figures(run))  # selection is done


def test_a_full_probe_after_a_fit_probe_keeps_its_tables_and_replays_at_most_n(
    tiny_bridge, planted_grader, tmp_path
):
    import shutil

    from workbench.core.activations import ActivationSet
    from workbench.core.artifacts import gzipped
    from workbench.experiment.probe_run import ProbeRunConfig, probe_run
    from workbench.experiment.publish import publish_run
    from workbench.experiment.rundir import RunDir

    cfg = ALSRunConfig(n_fit=16, n_val=2, n_test=6, alphas=(0.2,), n_candidate_layers=1)
    gen = GenerationConfig(max_new_tokens=5, batch_size=4)
    run = RunDir(tmp_path / "run")
    run_als(tiny_bridge, run.root, cfg, generation=gen)
    probe_run(tiny_bridge, run, ProbeRunConfig(n_bootstrap=50, fit_only=True))
    publish_run(run, tmp_path / "published")  # no activations; the tables gzipped
    run = RunDir(shutil.copytree(tmp_path / "published", tmp_path / "copy"))
    made = gzipped(run.probe_table("layers")).stat().st_mtime_ns
    summary = probe_run(tiny_bridge, run, ProbeRunConfig(n_bootstrap=50, n_replay=3))
    assert gzipped(run.probe_table("layers")).stat().st_mtime_ns == made  # same settings: kept
    assert len(ActivationSet.load(run.probe_states("fit-pca"))) == 3
    assert len(ActivationSet.load(run.probe_states("test-cot"))) == 3
    assert {r["id"] for r in read_jsonl(run.probe_table("drift"))} <= {
        p.id for p in run.problems("test")[:3]
    }
    assert summary["best_layer"] in range(tiny_bridge.cfg.n_layers)
    assert not run.probe_states("fit-early").exists()
    layers_before = read_jsonl(run.probe_table("layers"))
    # other settings: the tables are made again (from a replay of the fit split)
    probe_run(tiny_bridge, run, ProbeRunConfig(n_bootstrap=60, n_replay=3))
    assert not gzipped(run.probe_table("layers")).exists()
    assert len(read_jsonl(run.probe_table("layers"))) == len(layers_before)


def test_retime_decodes_every_test_arm_together(tiny_bridge, planted_grader, tmp_path):
    """The retime stage decodes all test arms again in one batch on the first problems: the
    same tokens as the run's rows, one decode call, and no trade-off without an iterative arm."""
    from workbench import stages
    from workbench.experiment.rundir import RunDir

    cfg = ALSRunConfig(**SMALL, reference=True, reference_alphas=(0.5,), control=True)
    gen = GenerationConfig(max_new_tokens=6, batch_size=8)
    run_als(tiny_bridge, tmp_path, cfg, generation=gen)
    run = RunDir(tmp_path)
    out = stages.retime(run, tiny_bridge, limit=3)
    names = [a["method"] for a in out["arms"]]
    assert names == ["cot", "als", "random-control", "als-reference"]
    assert out["n"] == 3 and out["one_decode_call"]
    assert all(a["identical_to_run"] == 3 for a in out["arms"])
    # no iterative method among the re-timed arms: no normaliser, so no trade-off score
    assert all(a["tradeoff"] is None and a["tradeoff_normaliser"] is None for a in out["arms"])
    assert run.retimed_path.exists()
    with pytest.raises(WorkbenchError, match=r"retime n must lie in 1\.\.6"):
        from workbench.experiment.retime import retime_stage

        retime_stage(tiny_bridge, run, cfg, 7)


def test_gated_arm_is_the_reference_with_the_json_gate(tiny_bridge, planted_grader, tmp_path):
    from workbench.core.steering import SteeringSpec
    from workbench.experiment.rundir import RunDir

    cfg = ALSRunConfig(**SMALL, reference=True, reference_alphas=(0.5,), gated=True)
    gen = GenerationConfig(max_new_tokens=8, batch_size=8)
    results = run_als(tiny_bridge, tmp_path, cfg, generation=gen, prompt=PromptConfig(format="p2"))
    assert [r["method"] for r in results["test"]] == ["cot", "als", "als-reference", "als-gated"]
    last = tiny_bridge.cfg.n_layers - 1
    want = replace(SteeringSpec.authors(last, 0.5, 0.1), json_gate=True)
    assert results["gated_steering"] == asdict(want)
    assert RunDir(tmp_path).settings()["prompt"]["format"] == "p2"
    with pytest.raises(WorkbenchError, match=r"add --als\.reference true"):
        ALSRunConfig(gated=True)


def test_reference_vector_is_the_authors_mean_over_generated_tokens_whatever_our_position(
    tiny_bridge, planted_grader, tmp_path
):
    """`--als.position last_prompt` moves our directions, not the reference arm's: the authors'
    vector averages each example's final states over its generated tokens."""
    from workbench.core.activations import ActivationSet
    from workbench.core.directions import LayerDirections, fit_directions
    from workbench.experiment.labels import fit_labels
    from workbench.experiment.pipeline import (
        directions_stage,
        fit_stage,
        make_splits,
        record_run_settings,
    )
    from workbench.experiment.rundir import RunDir
    from workbench.sources.models import model_config_of

    cfg = ALSRunConfig(**SMALL, reference=True, position="last_prompt")
    run = RunDir(tmp_path / "run")
    gen = GenerationConfig(max_new_tokens=6, batch_size=4)
    record_run_settings(run, model_config_of(tiny_bridge), cfg, gen, PromptConfig())
    make_splits(run, cfg)
    fit_stage(tiny_bridge, run, cfg)
    ours = directions_stage(run, cfg)
    reference = LayerDirections.load(run.reference_directions_path)
    assert ours.provenance["position"] == "last_prompt"
    assert reference.provenance["position"] == "mean_generated"
    final = ActivationSet.load(run.fit_final_dir)
    labels = fit_labels(run, "gold", final)
    want = fit_directions(final.at("mean_generated"), labels, final.layers, min_per_class=4)
    torch.testing.assert_close(reference.success_mean, want.success_mean)
    torch.testing.assert_close(reference.failure_mean, want.failure_mean)
    other = fit_directions(final.at("last_prompt"), labels, final.layers, min_per_class=4)
    assert not torch.allclose(reference.success_mean, other.success_mean)
