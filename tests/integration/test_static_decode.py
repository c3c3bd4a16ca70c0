"""`decode_static` (static cache, fixed buffers, steering as row tensors) equals `decode` token for
token, steered or not, and counts the same interventions; its hooks always come off."""

from __future__ import annotations

import contextlib

import pytest
import torch
from helpers import random_directions

from workbench.core.prompts import encode_prompts
from workbench.core.steering import SteeringSpec, resolve, steer
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.static import decode_static
from workbench.errors import WorkbenchError
from workbench.sources.models import ModelConfig, load_model

QUESTIONS = ["12+3=", "What is five times six? Explain.", "x", "A longer question " * 3]


@pytest.fixture
def bridge(family_bridge):
    return family_bridge


@pytest.fixture
def directions(bridge):
    return random_directions(bridge)


def _summary(completions):
    return [(c.tokens, c.finish, c.interventions, c.steered_steps) for c in completions]


def _hf_hooks(bridge) -> int:
    layers = [b.original_component for b in bridge.blocks]
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in layers)


@pytest.mark.parametrize("do_sample", [False, True])
def test_unsteered_equals_decode(bridge, do_sample):
    """Static batches of 3 for 4 prompts (one of 3, one of 1) against continuous batching."""
    prompts = encode_prompts(bridge.tokenizer, QUESTIONS)
    cfg = GenerationConfig(max_new_tokens=12, batch_size=3, do_sample=do_sample, seed=3)
    assert _summary(decode_static(bridge, prompts, cfg)) == _summary(decode(bridge, prompts, cfg))


def test_arms_sharing_a_batch_equal_steer(bridge, directions):
    """Two arms at different layers and sites, and an unsteered row, in one static batch: each
    row's tokens, intervention count and steered steps are `steer`'s on `decode`."""
    prompts = encode_prompts(bridge.tokenizer, QUESTIONS)
    cfg = GenerationConfig(max_new_tokens=12, batch_size=4)
    middle, last = bridge.cfg.n_layers // 2, bridge.cfg.n_layers - 1
    gated = SteeringSpec(layers=(middle,), alpha=0.5, tau=0.0)
    always = SteeringSpec(layers=(last,), alpha=0.3, tau=2.0, site="resid_pre")
    with contextlib.ExitStack() as stack:
        stack.enter_context(steer(bridge, gated, directions, rows=[0, 2]))
        stack.enter_context(steer(bridge, always, directions, rows=[1]))
        eager = decode(bridge, prompts, cfg)
    gated_arm, always_arm = resolve(gated, directions, bridge), resolve(always, directions, bridge)
    arms = [gated_arm, always_arm, gated_arm, None]
    static = decode_static(bridge, prompts, cfg, arms=arms)
    assert _summary(static) == _summary(eager)
    assert static[3].interventions == 0 and static[1].interventions == len(static[1].tokens) - 1
    assert static[0].interventions + static[2].interventions > 0
    assert _hf_hooks(bridge) == 0


def test_both_sites_on_one_layer_list_and_alpha_zero(bridge, directions):
    """A spec over two layers (one tau each) equals `steer`; alpha 0 fires and changes nothing."""
    prompts = encode_prompts(bridge.tokenizer, QUESTIONS[:2])
    cfg = GenerationConfig(max_new_tokens=10, batch_size=2)
    spec = SteeringSpec(layers=(0, bridge.cfg.n_layers - 1), alpha=0.4, tau=(0.0, 2.0))
    with steer(bridge, spec, directions):
        eager = decode(bridge, prompts, cfg)
    assert _summary(
        decode_static(bridge, prompts, cfg, arms=[resolve(spec, directions, bridge)] * 2)
    ) == (_summary(eager))
    still = SteeringSpec(layers=(1,), alpha=0.0, tau=2.0)
    quiet = decode_static(bridge, prompts, cfg, arms=[resolve(still, directions, bridge)] * 2)
    plain = decode_static(bridge, prompts, cfg)
    assert [c.tokens for c in quiet] == [c.tokens for c in plain]
    assert all(c.interventions == len(c.tokens) - 1 for c in quiet)


@pytest.mark.parametrize(
    "change",
    [
        {"persistence": "transient"},
        {"positions": "newest"},
        {"rule": "norm_preserving"},
        {"json_gate": True},
        {"site": "resid_mid"},
    ],
)
def test_specs_the_step_cannot_take_are_refused_by_name(bridge, directions, change):
    spec = SteeringSpec(layers=(0,), **change)
    assert next(iter(change)) in resolve(spec, directions, bridge).static_support()
    prompts = encode_prompts(bridge.tokenizer, QUESTIONS[:1])
    with pytest.raises(WorkbenchError, match=next(iter(change))):
        decode_static(bridge, prompts, arms=[resolve(spec, directions, bridge)])
    assert _hf_hooks(bridge) == 0


def test_graphs_need_cuda_and_no_bridge_hooks(bridge):
    prompts = encode_prompts(bridge.tokenizer, QUESTIONS[:1])
    with pytest.raises(WorkbenchError, match="CUDA"):
        decode_static(bridge, prompts, graphs=True)
    with pytest.raises(WorkbenchError, match="use_kv_cache"):
        decode_static(bridge, prompts, GenerationConfig(use_kv_cache=False))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_graph_replay_equals_eager_step():
    bridge = load_model(ModelConfig(name="random:tiny-llama", device="cuda", dtype="float32"))
    prompts = encode_prompts(bridge.tokenizer, QUESTIONS)
    cfg = GenerationConfig(max_new_tokens=12, batch_size=4)
    spec = SteeringSpec(layers=(1,), alpha=0.5, tau=0.0)
    arms = [resolve(spec, random_directions(bridge), bridge)] * 2 + [None] * 2
    graphed = decode_static(bridge, prompts, cfg, arms=arms, graphs=True)
    eager = decode_static(bridge, prompts, cfg, arms=arms, graphs=False)
    assert _summary(graphed) == _summary(eager)


def test_run_arms_takes_the_static_step_where_it_can(
    tiny_bridge, tiny_problems, caplog, monkeypatch
):
    """`static_step='on'`: arms it takes decode statically, rows as `off` writes them; a
    transient arm falls back to continuous batching, saying why."""
    from workbench.engine import generation
    from workbench.methods.cot import run_arms

    def not_continuous(*args, **kwargs):
        raise AssertionError("decoded with continuous batching")

    directions = random_directions(tiny_bridge)
    gated = (SteeringSpec(layers=(1,), alpha=0.5, tau=0.0), directions)
    arms = {"cot": None, "als": gated}
    rows = {}
    for mode in ("on", "off"):
        gen = GenerationConfig(max_new_tokens=10, batch_size=4, static_step=mode)
        with monkeypatch.context() as patch:
            if mode == "on":
                patch.setattr(generation, "decode_continuous", not_continuous)
            out = run_arms(tiny_bridge, tiny_problems, arms, generation=gen, progress=False)
        rows[mode] = {n: [(r["tokens"], r["interventions"]) for r in v] for n, v in out.items()}
    assert rows["on"] == rows["off"]
    transient = (SteeringSpec.authors(1, tau=2.0), directions)
    gen = GenerationConfig(max_new_tokens=4, static_step="on")
    with caplog.at_level("INFO"):
        run_arms(tiny_bridge, tiny_problems[:1], {"ref": transient}, generation=gen, progress=False)
    assert "persistence='transient'" in caplog.text


def test_a_failed_capture_leaves_the_step_eager_and_the_counts_as_they_were(caplog):
    from workbench.engine.row_steering import GateState
    from workbench.engine.static import StaticStep, _captured

    state = GateState.zeros(2, torch.device("cpu"))
    state.counts += torch.tensor([3, 1])

    class Failing(StaticStep):
        def capture(self) -> None:
            state.counts.add_(1)  # the warm-up's real step
            raise RuntimeError("operation not permitted when stream is capturing")

    step = Failing(
        model=None,
        cache=None,
        ids=torch.zeros(2, 1, dtype=torch.long),
        positions=torch.zeros(2, 1, dtype=torch.long),
        slot=torch.tensor(2),
        mask=torch.ones(2, 1, 1, 4, dtype=torch.bool),
        keyword="cache",
    )
    with caplog.at_level("WARNING"):
        assert _captured(step, state, torch.tensor([5, 6])) is False
    assert state.counts.tolist() == [3, 1] and step.ids.flatten().tolist() == [5, 6]
    assert step.graph is None and "runs eagerly" in caplog.text
