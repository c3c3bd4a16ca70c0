"""The load-time self-check passes on a sound stack and names a broken KV cache."""

from __future__ import annotations

import pytest
import torch

from workbench.core.prompts import encode_prompts
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.errors import WorkbenchError
from workbench.sources.selfcheck import StackError, check_stack


@pytest.fixture
def broken_cache(monkeypatch):
    """A KV cache that is never written: what transformers 5.24 did to transformer-lens 4.3.0
    before `models._read_renamed_cache`, here for either attention path."""
    from transformers.cache_utils import DynamicLayer

    from workbench.engine.kv_cache import growing_layer

    for layer in (DynamicLayer, growing_layer()):  # the transformers layer and the workbench's
        monkeypatch.setattr(layer, "update", lambda self, k, v, *args, **kwargs: (k, v))


def test_sound_stack_passes_with_float32_rounding_only(tiny_bridge):
    check = check_stack(tiny_bridge)
    assert check.error < 1e-5 and check.attention_error < 1e-5
    assert check.tolerance == 1e-3


def test_broken_cache_fails_the_check_naming_versions(tiny_bridge, broken_cache):
    with pytest.raises(StackError, match=r"KV cache holds 0 of .*transformers .*scripts/setup.sh"):
        check_stack(tiny_bridge)


def test_attention_paths_that_disagree_fail_the_check(tiny_bridge, monkeypatch):
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(
        torch.nn.functional,
        "scaled_dot_product_attention",
        lambda *args, **kwargs: 0.5 * sdpa(*args, **kwargs),
    )
    with pytest.raises(StackError, match="HF module's attention and the bridge's own"):
        check_stack(tiny_bridge)


def test_decode_refuses_an_unfilled_cache(tiny_bridge, broken_cache):
    prompts = encode_prompts(tiny_bridge.tokenizer, ["1+1?"])
    with pytest.raises(WorkbenchError, match="does not fill the cache"):
        decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=4))
    # the uncached path does not depend on the cache and still decodes
    plain = decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=4, use_kv_cache=False))
    assert len(plain[0].tokens) == 4
