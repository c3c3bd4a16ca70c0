"""Attention by the Hugging Face module's own kernel, for passes that hook nothing inside it.

TransformerLens 4.x attention bridges of RoPE models (Qwen2, Llama, ...) recompute attention
themselves, eagerly, so that ``hook_attn_scores`` and ``hook_pattern`` can fire: the grouped keys
and values are copied out to every query head and the scores materialised, at every layer of every
pass. The workbench hooks only the residual stream, so for its passes that work is waste (a
decoding step's cost through either attention: `benchmarks/step_cost.py`), and the HF module's
kernel gives the same next tokens.

`native_attention` hands each attention layer to the HF module it wraps for the passes inside the
context (the module's q/k/v/o projections stay the bridge's wrapped linears), and only when no hook
point inside any attention layer has a hook: a caller that hooks attention internals gets the
bridge's own attention, hooks firing, as before. The residual-stream hooks (block input, middle,
output, ``ln_final``) are outside attention and fire either way.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

import torch

from workbench.engine.hooks import has_hooks

__all__ = ["attention_hooked", "native_attention"]


_LAYERS: weakref.WeakKeyDictionary[Any, tuple[list[Any], list[Any]]] = weakref.WeakKeyDictionary()
"""Per bridge, its attention layers and the hook points inside them (the module tree does not
change after loading; walking it costs about as much as a few decoding steps of a small model)."""


def _attention_layers(bridge: Any) -> list[Any]:
    return _structure(bridge)[0]


def _structure(bridge: Any) -> tuple[list[Any], list[Any]]:
    from transformer_lens.hook_points import HookPoint
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    if bridge not in _LAYERS:
        layers = [
            m
            for m in bridge.modules()
            if isinstance(m, AttentionBridge) and getattr(m, "original_component", None) is not None
        ]
        points = [m for layer in layers for m in layer.modules() if isinstance(m, HookPoint)]
        _LAYERS[bridge] = (layers, points)
    return _LAYERS[bridge]


def attention_hooked(bridge: Any) -> bool:
    """True if any hook point inside any attention layer has a hook. (Hooks on modules fire
    whichever forward runs, e.g. `workbench.engine.mid_residual`'s on the attention's output.)"""
    return any(has_hooks(m) for m in _structure(bridge)[1])


def _delegate(hf_attention: torch.nn.Module):
    def forward(*args: Any, **kwargs: Any) -> Any:
        return hf_attention(*args, **kwargs)

    return forward


@contextlib.contextmanager
def native_attention(bridge: Any, enabled: bool = True) -> Iterator[bool]:
    """Inside the context, each attention layer of `bridge` runs the HF module's own forward
    (its configured kernel, sdpa by default) instead of the bridge's eager reimplementation,
    unless `enabled` is False or a hook sits inside attention. Yields whether it did; always
    restores the bridge's attention on exit.
    """
    layers = _attention_layers(bridge)
    if not enabled or not layers or attention_hooked(bridge):
        yield False
        return
    # the bridge's own attribute handling forwards unknown names to the wrapped module, so the
    # instance attribute is set and removed on the bridge object itself
    for layer in layers:
        object.__setattr__(layer, "forward", _delegate(layer.original_component))
    try:
        yield True
    finally:
        for layer in layers:
            layer.__dict__.pop("forward", None)
