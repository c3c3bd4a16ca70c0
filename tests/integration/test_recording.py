"""States recorded while decoding equal the teacher-forced cache of the same generations."""

from __future__ import annotations

import pytest
import torch

from workbench.core.activations import ActivationSet, CacheConfig, cache_activations
from workbench.core.prompts import encode_prompts
from workbench.core.recording import StateRecorder
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.errors import WorkbenchError
from workbench.methods.cot import Job, run_cot, run_jobs

CFG = CacheConfig(trajectory_layers=(0, 1), early_ks=(1, 3), batch_size=4)


def _assert_same_states(recorded: ActivationSet, forced: ActivationSet) -> None:
    """The same states per problem (shards may hold the problems in another order)."""
    assert sorted(recorded.problem_ids) == sorted(forced.problem_ids)
    assert recorded.layers == forced.layers and set(recorded.states) == set(forced.states)
    order = [recorded.problem_ids.index(pid) for pid in forced.problem_ids]
    assert torch.equal(recorded.labels[order], forced.labels)
    for key, states in forced.states.items():
        torch.testing.assert_close(recorded.states[key][order], states, atol=1e-4, rtol=1e-4)
    assert len(recorded.trajectories) == len(forced.trajectories)
    for i, want in zip(order, forced.trajectories, strict=False):  # none at the final state
        got = recorded.trajectories[i]
        torch.testing.assert_close(got.float(), want.float(), atol=2e-2, rtol=2e-3)


@pytest.mark.parametrize("batch_size", [2, 8])  # 2: rows join a running batch as others finish
def test_recorded_states_equal_the_teacher_forced_cache(
    tiny_bridge, tiny_problems, tmp_path, batch_size
):
    gen = GenerationConfig(max_new_tokens=6, batch_size=batch_size)
    recorder = StateRecorder(
        tiny_bridge, tmp_path / "rec", CFG, final_out=tmp_path / "rec-final", meta={"x": 1}
    )
    job = Job(tiny_problems, out=tmp_path / "rows.jsonl", recorder=recorder)
    rows = run_jobs(tiny_bridge, {"fit": job}, generation=gen, progress=False)["fit"]
    assert {r["finish"] for r in rows} & {"length", "stop"}  # rows whose last token is fed late
    forced = cache_activations(
        tiny_bridge,
        tiny_problems,
        rows,
        tmp_path / "forced",
        CFG,
        final_out=tmp_path / "forced-final",
        progress=False,
    )
    _assert_same_states(ActivationSet.load(tmp_path / "rec"), forced)
    _assert_same_states(
        ActivationSet.load(tmp_path / "rec-final"), ActivationSet.load(tmp_path / "forced-final")
    )
    # over the recorded folder, the caching pass only loads (every problem is there)
    loaded = cache_activations(
        tiny_bridge, tiny_problems, rows, tmp_path / "rec", CFG, progress=False
    )
    _assert_same_states(loaded, forced)


def test_feeding_the_final_token_leaves_the_generations_unchanged(tiny_bridge, tiny_problems):
    prompts = encode_prompts(tiny_bridge.tokenizer, [p.question for p in tiny_problems])
    gen = GenerationConfig(max_new_tokens=6, batch_size=3)
    plain = decode(tiny_bridge, prompts, gen)
    fed = decode(tiny_bridge, prompts, gen, feed_final=True)
    assert [c.tokens for c in fed] == [c.tokens for c in plain]
    assert [c.finish for c in fed] == [c.finish for c in plain]


def test_recording_without_the_final_token_fed_is_an_error(tiny_bridge, tiny_problems, tmp_path):
    prompts = encode_prompts(tiny_bridge.tokenizer, [p.question for p in tiny_problems[:2]])
    recorder = StateRecorder(tiny_bridge, tmp_path, CacheConfig(layers=(0,), batch_size=2))
    with pytest.raises(WorkbenchError, match="feed_final"), recorder.recording([0, 1]):
        out = decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=4))
        for i, c in enumerate(out):
            recorder.complete(i, f"p{i}", len(c.tokens), False)


def test_a_resumed_decode_records_only_what_is_new(tiny_bridge, tiny_problems, tmp_path):
    gen = GenerationConfig(max_new_tokens=5, batch_size=4)
    out = tmp_path / "rows.jsonl"
    run_cot(tiny_bridge, tiny_problems[:2], generation=gen, out=out, progress=False)
    recorder = StateRecorder(tiny_bridge, tmp_path / "rec", CFG)
    job = Job(tiny_problems, out=out, recorder=recorder)
    rows = run_jobs(tiny_bridge, {"fit": job}, generation=gen, progress=False)["fit"]
    assert recorder.recorded_ids == {p.id for p in tiny_problems[2:]}
    filled = cache_activations(
        tiny_bridge, tiny_problems, rows, tmp_path / "rec", CFG, progress=False
    )
    forced = cache_activations(
        tiny_bridge, tiny_problems, rows, tmp_path / "forced", CFG, progress=False
    )
    _assert_same_states(filled, forced)
