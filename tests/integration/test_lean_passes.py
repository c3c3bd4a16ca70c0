"""`lean_passes`: components with no hooked hook point run the Hugging Face module they wrap;
hooks still fire where they are, results equal the bridge's own passes, forwards come back."""

from __future__ import annotations

import contextlib
from unittest import mock

import pytest
import torch
from helpers import random_directions, resid_states

from workbench.core.prompts import encode_prompts
from workbench.core.steering import SteeringSpec, steer
from workbench.engine import generation
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.hooks import resid_hook
from workbench.engine.lean_passes import lean_passes
from workbench.engine.native_attention import has_hooks, native_attention

QUESTIONS = ["12+3=", "What is five times six? Explain.", "x", "A longer question " * 3]


def _layers(bridge) -> list:
    """The decoder layers the Hugging Face model calls."""
    return list(bridge.original_model.model.layers)


def _bridged(module) -> bool:
    from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

    return isinstance(module, GeneralizedComponent)


@pytest.fixture
def bridge(family_bridge):
    return family_bridge


@pytest.fixture
def directions(bridge):
    return random_directions(bridge)


def test_unhooked_components_are_bypassed_and_restored(bridge):
    before = [type(m) for m in bridge.original_model.modules()]
    with lean_passes(bridge) as n:
        layers = _layers(bridge)
        assert not any(_bridged(m) for m in layers)
        assert not _bridged(layers[0].mlp) and not _bridged(layers[0].self_attn)
        # TransformerLens's capture hooks (wired on the load-time check's bridge pass) feed
        # only the bridge's own attention and hook_mlp_in: the norms are bypassed too
        assert not _bridged(layers[0].input_layernorm)
        assert not _bridged(layers[0].post_attention_layernorm)
        assert not _bridged(bridge.original_model.lm_head)
        assert n > 3 * bridge.cfg.n_layers
        assert all(_bridged(b) for b in bridge.blocks)  # the bridge's own tree is untouched
    assert [type(m) for m in bridge.original_model.modules()] == before
    assert all(_bridged(m) for m in _layers(bridge))
    with lean_passes(bridge, enabled=False) as n:
        assert n == 0 and all(_bridged(m) for m in _layers(bridge))


@pytest.mark.parametrize("site", ["resid_post", "resid_pre"])
def test_a_layer_hooked_at_its_residual_ends_runs_bare_and_its_hooks_fire(bridge, site):
    """Hooked at one block's output (or input), that block too gives way to its Hugging Face
    layer, which calls the hook point from a PyTorch hook: the hook sees the same state, an edit
    there changes the logits exactly as through the bridge, and the PyTorch hooks go on exit."""
    ids = torch.tensor([encode_prompts(bridge.tokenizer, ["What is 2+2?"])[0]])
    layer = bridge.cfg.n_layers // 2
    logits, states = resid_states(bridge, ids, [layer - 1 if site == "resid_pre" else layer])
    seen = {}

    def keep(x, hook):
        seen["x"] = x.clone()
        return x

    def push(x, hook):
        return x + 0.5

    name = resid_hook(layer, site)
    with bridge.hooks(fwd_hooks=[(name, keep)]), lean_passes(bridge) as n:
        layers = _layers(bridge)
        assert not any(_bridged(m) for m in layers) and n > 3 * bridge.cfg.n_layers
        assert has_hooks(layers[layer]) and not has_hooks(layers[layer - 1])
        with torch.inference_mode():
            lean_logits = bridge(ids)
    assert not any(has_hooks(m) for m in bridge.original_model.modules() if not _bridged(m))
    torch.testing.assert_close(seen["x"], states[layer - 1 if site == "resid_pre" else layer])
    torch.testing.assert_close(lean_logits, logits)
    pushed = {}
    for lean in (True, False):
        hooked = bridge.hooks(fwd_hooks=[(name, push)])
        with hooked, lean_passes(bridge, enabled=lean), torch.inference_mode():
            pushed[lean] = bridge(ids)
    torch.testing.assert_close(pushed[True], pushed[False])
    assert not torch.allclose(pushed[True], logits)


def test_a_layer_with_other_hooks_keeps_the_bridge(bridge):
    """A block with a module hook of its own (e.g. the transient update's call recorder), or
    hooked where attention cannot be native, keeps the bridge's component."""
    layer = bridge.cfg.n_layers // 2
    block = bridge.blocks[layer]
    handle = block.register_forward_pre_hook(lambda module, args: None)
    try:
        with bridge.hooks(fwd_hooks=[(resid_hook(layer), lambda x, hook: x)]), lean_passes(bridge):
            layers = _layers(bridge)
            assert _bridged(layers[layer]) and not _bridged(layers[layer - 1])
            assert not _bridged(layers[layer].original_component.mlp)
    finally:
        handle.remove()
    same = lambda x, hook: x  # noqa: E731
    hooks = [(resid_hook(layer), same), ("blocks.0.attn.hook_pattern", same)]
    with bridge.hooks(fwd_hooks=hooks), lean_passes(bridge):  # attention not native anywhere
        assert _bridged(_layers(bridge)[layer])


def _decode_both(bridge, prompts, cfg, make_intervention):
    """Tokens and intervention counts of `decode` with lean passes and with only native attention
    (the path before lean passes)."""
    out = {}
    for name, ctx in [("lean", lean_passes), ("native", native_attention)]:
        with mock.patch.object(generation, "lean_passes", ctx), make_intervention():
            out[name] = [(c.tokens, c.interventions) for c in decode(bridge, prompts, cfg)]
    return out["lean"], out["native"]


@pytest.mark.parametrize(
    "spec",
    [
        None,
        {"tau": 0.0},  # gated, persistent, at a block's output
        {"tau": 0.0, "site": "resid_pre"},  # at a block's input
        {"tau": 0.1, "site": "resid_pre", "positions": "newest", "persistence": "transient"},
        {"tau": 2.0, "site": "resid_mid"},
    ],
)
@pytest.mark.parametrize("use_kv_cache", [True, False])
def test_decoding_equals_the_bridge_path(bridge, directions, spec, use_kv_cache):
    """Batched, continuous (batch 3 for 4 prompts), cached and uncached, unsteered and steered
    three ways: the same tokens and intervention counts as the bridge's own passes."""
    prompts = encode_prompts(bridge.tokenizer, QUESTIONS)
    cfg = GenerationConfig(max_new_tokens=12, batch_size=3, use_kv_cache=use_kv_cache)
    layer = bridge.cfg.n_layers - 1

    def intervention():
        if spec is None:
            return contextlib.nullcontext()
        return steer(bridge, SteeringSpec(layers=(layer,), alpha=0.5, **spec), directions)

    lean, native = _decode_both(bridge, prompts, cfg, intervention)
    assert lean == native
    if spec is not None:
        assert sum(n for _, n in lean) > 0
