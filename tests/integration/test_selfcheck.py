"""The load-time self-check passes on a sound stack and names a broken KV cache."""

from __future__ import annotations

import pytest

from workbench.core.generation import GenerationConfig, decode
from workbench.core.prompts import encode_prompts
from workbench.errors import WorkbenchError
from workbench.sources.models import ModelConfig, load_model
from workbench.sources.selfcheck import StackError, check_stack


@pytest.fixture
def broken_cache_bridge(tiny_dir):
    """A bridge whose attention never writes the KV cache: what transformers 5.24 did to
    transformer-lens 4.3.0 before `models._read_renamed_cache`."""
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    bridge = load_model(ModelConfig(name=str(tiny_dir), device="cpu", self_check=False))
    for module in bridge.modules():
        if isinstance(module, AttentionBridge):
            module._update_kv_cache = lambda k, v, **kwargs: (k, v)
    return bridge


def test_sound_stack_passes_with_float32_rounding_only(tiny_bridge):
    check = check_stack(tiny_bridge)
    assert check.error < 1e-5
    assert check.tolerance == 1e-3


def test_broken_cache_fails_the_check_naming_versions(broken_cache_bridge):
    with pytest.raises(StackError, match=r"KV cache holds 0 of .*transformers .*scripts/setup.sh"):
        check_stack(broken_cache_bridge)


def test_decode_refuses_an_unfilled_cache(tiny_bridge, monkeypatch):
    """Whatever attention path runs (the bridge's or the HF module's, see
    `workbench.core.native_attention`), a cache that is never written is refused."""
    from transformers.cache_utils import DynamicLayer

    monkeypatch.setattr(DynamicLayer, "update", lambda self, k, v, *args, **kwargs: (k, v))
    prompts = encode_prompts(tiny_bridge.tokenizer, ["1+1?"])
    with pytest.raises(WorkbenchError, match="does not fill the cache"):
        decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=4))
    # the uncached path does not depend on the cache and still decodes
    plain = decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=4, use_kv_cache=False))
    assert len(plain[0].tokens) == 4
