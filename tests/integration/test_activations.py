"""Residual caching on the tiny model: positions, trajectories, resume, steering consistency."""

from __future__ import annotations

import json

import pytest
import torch

from workbench.core.activations import ActivationSet, CacheConfig, cache_activations
from workbench.core.directions import LayerDirections
from workbench.core.prompts import encode_prompts
from workbench.core.steering import SteeringSpec, steer
from workbench.engine.config import GenerationConfig
from workbench.engine.hooks import resid_hook
from workbench.errors import WorkbenchError
from workbench.methods.cot import run_cot


@pytest.fixture
def generations(tiny_bridge, tiny_problems):
    return run_cot(
        tiny_bridge, tiny_problems, generation=GenerationConfig(max_new_tokens=7), progress=False
    )


def _single_run(bridge, ids, layer):
    got = {}

    def hook(x, hook):
        got["x"] = x[0].clone()
        return x

    with torch.inference_mode(), bridge.hooks(fwd_hooks=[(resid_hook(layer), hook)]):
        bridge(torch.tensor([ids]))
    return got["x"]


def test_positions_match_unpadded_single_runs(tiny_bridge, tiny_problems, generations, tmp_path):
    cfg = CacheConfig(layers=(0, 2), trajectory_layers=(2,), batch_size=4)
    aset = cache_activations(tiny_bridge, tiny_problems, generations, tmp_path, cfg, progress=False)
    assert aset.layers == (0, 2) and aset.problem_ids == tuple(p.id for p in tiny_problems)
    assert aset.at("mean_generated").shape == (len(tiny_problems), 2, tiny_bridge.cfg.d_model)
    prompts = encode_prompts(tiny_bridge.tokenizer, [p.question for p in tiny_problems])
    for i, (prompt, row) in enumerate(zip(prompts, generations, strict=True)):
        full = _single_run(tiny_bridge, prompt + row["tokens"], 2)
        n = len(prompt)
        torch.testing.assert_close(aset.at("last_prompt")[i, 1], full[n - 1], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(
            aset.at("mean_generated")[i, 1], full[n:].mean(0), atol=1e-4, rtol=1e-4
        )
        assert aset.trajectories[i].shape == (len(row["tokens"]), 1, tiny_bridge.cfg.d_model)
        torch.testing.assert_close(
            aset.trajectories[i][:, 0].float(), full[n:], atol=2e-2, rtol=2e-3
        )
    assert torch.equal(aset.labels, torch.tensor([r["correct"] for r in generations]))


def test_resume_reuses_shards_and_equals_a_fresh_run(
    tiny_bridge, tiny_problems, generations, tmp_path
):
    cfg = CacheConfig(layers=(1,), batch_size=2)
    cache_activations(
        tiny_bridge, tiny_problems[:2], generations, tmp_path / "a", cfg, progress=False
    )
    first_shard = (tmp_path / "a" / "shard-00000.safetensors").stat().st_mtime_ns
    resumed = cache_activations(
        tiny_bridge, tiny_problems, generations, tmp_path / "a", cfg, progress=False
    )
    fresh = cache_activations(
        tiny_bridge, tiny_problems, generations, tmp_path / "b", cfg, progress=False
    )
    assert (tmp_path / "a" / "shard-00000.safetensors").stat().st_mtime_ns == first_shard
    assert resumed.problem_ids == fresh.problem_ids
    torch.testing.assert_close(resumed.at("mean_generated"), fresh.at("mean_generated"))
    loaded = ActivationSet.load(tmp_path / "a")
    assert len(loaded) == len(tiny_problems)


def test_steered_teacher_forcing_touches_generated_positions_only(
    tiny_bridge, tiny_problems, generations, tmp_path
):
    d = tiny_bridge.cfg.d_model
    directions = LayerDirections(
        layers=(1,),
        success_mean=torch.ones(1, d),
        failure_mean=torch.zeros(1, d),
        mean_norm=torch.ones(1),
        n_success=5,
        n_failure=5,
    )
    cfg = CacheConfig(layers=(1,), batch_size=3)
    clean = cache_activations(
        tiny_bridge, tiny_problems, generations, tmp_path / "c", cfg, progress=False
    )
    spec = SteeringSpec(layers=(1,), alpha=0.5, tau=2.0, alpha_units="absolute")
    with steer(tiny_bridge, spec, directions):
        steered = cache_activations(
            tiny_bridge, tiny_problems, generations, tmp_path / "s", cfg, progress=False
        )
    torch.testing.assert_close(steered.at("last_prompt"), clean.at("last_prompt"))
    shift = steered.at("mean_generated") - clean.at("mean_generated")
    torch.testing.assert_close(shift, 0.5 * directions.unit(1).expand_as(shift))


def test_bad_requests(tiny_bridge, tiny_problems, generations, tmp_path):
    with pytest.raises(WorkbenchError, match="trajectory layers"):
        cache_activations(
            tiny_bridge,
            tiny_problems,
            generations,
            tmp_path,
            CacheConfig(layers=(0,), trajectory_layers=(1,)),
            progress=False,
        )
    with pytest.raises(WorkbenchError, match="no generation"):
        cache_activations(tiny_bridge, tiny_problems, generations[:2], tmp_path, progress=False)
    with pytest.raises(WorkbenchError, match="no cached activations"):
        ActivationSet.load(tmp_path / "nothing")


def test_early_means(tiny_bridge, tiny_problems, generations, tmp_path):
    cfg = CacheConfig(layers=(1,), trajectory_layers=(1,), early_ks=(1, 3, 100), batch_size=4)
    aset = cache_activations(tiny_bridge, tiny_problems, generations, tmp_path, cfg, progress=False)
    for i, traj in enumerate(aset.trajectories):
        for k in (1, 3, 100):
            want = traj[:k, 0].float().mean(0)
            torch.testing.assert_close(aset.at(f"mean_first_{k}")[i, 0], want, atol=2e-2, rtol=2e-3)
    torch.testing.assert_close(aset.at("mean_first_100"), aset.at("mean_generated"))


def test_final_site_is_the_normalised_state_the_unembedding_reads(
    tiny_bridge, tiny_problems, generations, tmp_path
):
    cfg = CacheConfig(site="final", batch_size=4)
    aset = cache_activations(tiny_bridge, tiny_problems, generations, tmp_path, cfg, progress=False)
    last = tiny_bridge.cfg.n_layers - 1
    assert aset.layers == (last,)
    prompts = encode_prompts(tiny_bridge.tokenizer, [p.question for p in tiny_problems])
    hf = tiny_bridge.original_model
    for i, (prompt, row) in enumerate(zip(prompts, generations, strict=True)):
        with torch.inference_mode():  # the authors' latent: model.model(...)[0]
            states = hf.model(torch.tensor([prompt + row["tokens"]]))[0][0]
        n = len(prompt)
        torch.testing.assert_close(
            aset.at("mean_generated")[i, 0], states[n:].mean(0), atol=1e-4, rtol=1e-4
        )


def test_final_states_in_the_same_pass_equal_their_own_pass(
    tiny_bridge, tiny_problems, generations, tmp_path
):
    alone = cache_activations(
        tiny_bridge,
        tiny_problems,
        generations,
        tmp_path / "alone",
        CacheConfig(site="final", batch_size=4),
        progress=False,
    )
    residuals = cache_activations(
        tiny_bridge,
        tiny_problems,
        generations,
        tmp_path / "resid",
        CacheConfig(batch_size=4),
        progress=False,
        final_out=tmp_path / "final",
    )
    merged = ActivationSet.load(tmp_path / "final")
    assert merged.site == "final" and merged.layers == alone.layers
    assert merged.problem_ids == alone.problem_ids
    for position in ("last_prompt", "mean_generated"):
        torch.testing.assert_close(merged.at(position), alone.at(position))
    assert residuals.layers == tuple(range(tiny_bridge.cfg.n_layers))
    with pytest.raises(WorkbenchError, match="final_out needs"):
        cache_activations(
            tiny_bridge,
            tiny_problems,
            generations,
            tmp_path / "x",
            CacheConfig(layers=(0,)),
            progress=False,
            final_out=tmp_path / "y",
        )


def test_a_pass_interrupted_between_its_two_writes_is_cached_again(
    tiny_bridge, tiny_problems, generations, tmp_path
):
    cfg = CacheConfig(batch_size=2)
    resid, final = tmp_path / "resid", tmp_path / "final"
    cache_activations(
        tiny_bridge, tiny_problems[:4], generations, resid, cfg, progress=False, final_out=final
    )
    index = json.loads((resid / "activations.json").read_text())
    index["shards"] = index["shards"][:1]  # the second batch reached only the final states
    (resid / "activations.json").write_text(json.dumps(index))
    cache_activations(
        tiny_bridge, tiny_problems, generations, resid, cfg, progress=False, final_out=final
    )
    for path in (resid, final):
        loaded = ActivationSet.load(path)
        assert sorted(loaded.problem_ids) == sorted(p.id for p in tiny_problems)


def test_stop_after_ends_the_pass_there_and_removes_its_hook(tiny_bridge):
    from helpers import n_hooks

    from workbench.engine.hooks import FINAL_HOOK, stop_after

    seen = []

    def spy(label):
        def hook(x, hook):
            seen.append(label)
            return x

        return hook

    last = resid_hook(tiny_bridge.cfg.n_layers - 1)
    spies = [(last, spy(last)), (FINAL_HOOK, spy(FINAL_HOOK))]
    before = n_hooks(tiny_bridge)
    with torch.inference_mode(), tiny_bridge.hooks(fwd_hooks=spies):
        with stop_after(tiny_bridge, last):
            tiny_bridge(torch.tensor([[1, 2, 3]]))
        assert seen == [last]  # the last block ran, ln_final did not
        tiny_bridge(torch.tensor([[1, 2, 3]]))
    assert seen == [last, last, FINAL_HOOK]  # outside the context the pass runs to the end
    assert n_hooks(tiny_bridge) == before
    with pytest.raises(WorkbenchError, match="hook"), stop_after(tiny_bridge, "blocks.0.nonsense"):
        pass
