"""Attention handed to the HF module: same tokens and near-identical logits as the bridge's own
attention, the bridge's attention whenever a hook sits inside it, and always restored."""

from __future__ import annotations

import torch

from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.native_attention import attention_hooked, native_attention

PROMPTS = [[5, 9, 13, 2, 7], [11, 4], [3, 3, 8, 21, 6, 1, 17], [12]]
PATTERN = "blocks.0.attn.hook_pattern"


def _logits(bridge, ids):
    with torch.inference_mode():
        return bridge(ids, return_type="logits")


def _attention_forwards(bridge):
    return [layer.__dict__.get("forward") for layer in (b.attn for b in bridge.blocks)]


def test_native_logits_match_the_bridge_attention(tiny_bridge):
    ids = torch.tensor([[5, 9, 13, 2, 7, 30, 1, 4]])
    reference = _logits(tiny_bridge, ids)
    with native_attention(tiny_bridge) as used:
        native = _logits(tiny_bridge, ids)
    assert used
    torch.testing.assert_close(native, reference, rtol=1e-4, atol=1e-4)
    assert _attention_forwards(tiny_bridge) == [None] * len(tiny_bridge.blocks)


def test_native_attention_really_runs_the_hf_kernel(tiny_bridge, monkeypatch):
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls.append(1)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counted)
    _logits(tiny_bridge, torch.tensor([[1, 2, 3]]))
    assert calls == []  # the bridge recomputes attention itself
    with native_attention(tiny_bridge):
        _logits(tiny_bridge, torch.tensor([[1, 2, 3]]))
    assert len(calls) == len(tiny_bridge.blocks)


def test_a_hook_inside_attention_keeps_the_bridge_attention(tiny_bridge):
    seen = []

    def look(x, hook):
        seen.append(x.shape)
        return x

    with tiny_bridge.hooks(fwd_hooks=[(PATTERN, look)]):
        assert attention_hooked(tiny_bridge)
        with native_attention(tiny_bridge) as used:
            _logits(tiny_bridge, torch.tensor([[1, 2, 3]]))
    assert not used and len(seen) == 1
    assert not attention_hooked(tiny_bridge)


def test_restored_after_an_error(tiny_bridge):
    try:
        with native_attention(tiny_bridge):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert _attention_forwards(tiny_bridge) == [None] * len(tiny_bridge.blocks)


def test_decoding_gives_the_same_tokens_either_way(tiny_bridge):
    cfg = GenerationConfig(max_new_tokens=12, batch_size=2)
    native = decode(tiny_bridge, PROMPTS, cfg)
    with tiny_bridge.hooks(fwd_hooks=[(PATTERN, lambda x, hook: x)]):
        bridge_attention = decode(tiny_bridge, PROMPTS, cfg)
    assert [c.tokens for c in native] == [c.tokens for c in bridge_attention]
