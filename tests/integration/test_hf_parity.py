"""The workbench's greedy decoding equals `transformers` `generate` on the same weights.

`decode` runs its own batched, left-padded, KV-cached loop through the TransformerLens bridge; a
fresh Hugging Face model loaded from the same folder, never touched by the bridge, is the
reference. A KV cache that is not filled (transformers 5.24 with transformer-lens 4.3.0, before
`workbench.sources.models._read_renamed_cache`) fails these tests at the first generated token.
"""

from __future__ import annotations

import pytest
import torch

from workbench.core.prompts import encode_prompts
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.kv_cache import cached_length, new_cache
from workbench.sources.data import load_problems
from workbench.sources.embedded import PACKAGED_MODELS, packaged_model

QUESTIONS = ["12+3=", "What is five times six? Explain.", "x", "A much longer question " * 4]


def _hf_greedy(model, prompts: list[list[int]], pad_id: int, eos_ids: set[int], n_new: int):
    """`generate` on a left-padded batch; each row cut at its first EOS (as `decode` reports)."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + list(p) for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=n_new,
            pad_token_id=pad_id,
            eos_token_id=sorted(eos_ids),
        )
    rows = []
    for row in out[:, width:].tolist():
        ends = [i for i, t in enumerate(row) if t in eos_ids]
        rows.append(tuple(row[: ends[0]] if ends else row))
    return rows


def _eos_ids(tokenizer, model) -> set[int]:
    ids = {tokenizer.eos_token_id}
    cfg_eos = model.generation_config.eos_token_id
    ids.update([cfg_eos] if isinstance(cfg_eos, int) else (cfg_eos or []))
    return {int(i) for i in ids if i is not None}


def _assert_parity(bridge, hf_model, prompts, n_new: int, batch_size: int) -> None:
    tok = bridge.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ours = decode(bridge, prompts, GenerationConfig(max_new_tokens=n_new, batch_size=batch_size))
    theirs = _hf_greedy(hf_model, prompts, pad_id, _eos_ids(tok, hf_model), n_new)
    assert len({len(p) for p in prompts}) > 1  # left padding is exercised
    assert [c.tokens for c in ours] == theirs


def test_decode_equals_hf_generate(tiny_bridge, tiny_dir):
    from transformers import AutoModelForCausalLM

    hf_model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    prompts = encode_prompts(tiny_bridge.tokenizer, QUESTIONS)
    _assert_parity(tiny_bridge, hf_model, prompts, n_new=32, batch_size=4)


def test_cached_forward_fills_the_cache(tiny_bridge):
    """The cache handed to the bridge comes back holding every position it has seen."""
    from workbench.engine.kv_cache import cache_kwargs

    ids = torch.tensor([encode_prompts(tiny_bridge.tokenizer, ["7+8="])[0]])
    cache = new_cache(tiny_bridge)
    with torch.inference_mode():
        tiny_bridge(ids[:, :-1], return_type="logits", **cache_kwargs(tiny_bridge, cache))
        assert cached_length(cache) == ids.shape[1] - 1
        tiny_bridge(ids[:, -1:], return_type="logits", **cache_kwargs(tiny_bridge, cache))
    assert cached_length(cache) == ids.shape[1]


@pytest.mark.slow
@pytest.mark.parametrize("name", [model.name for model in PACKAGED_MODELS])
def test_decode_equals_hf_generate_on_packaged_model(name):
    """The real models from PyPI chunk packages (``embedded``, ``coder-1.5b``:
    `workbench.sources.embedded`); skipped where a model's packages are not installed and its
    converted cache is absent. coder-1.5b holds two float32 copies of 7.1 GB each."""
    from transformers import AutoModelForCausalLM

    from workbench.sources.models import load_model

    model = packaged_model(name)
    if not model.installed() and not (model.cache_dir / "model.safetensors").exists():
        pytest.skip(f"{name}: packages not installed ({model.install_hint()})")
    bridge = load_model(name, device="cpu", dtype="float32")
    hf_model = AutoModelForCausalLM.from_pretrained(
        model.model_dir(), dtype=torch.float32, attn_implementation="sdpa"
    ).eval()
    problems = load_problems("gsm8k", "test", limit=8)
    prompts = encode_prompts(bridge.tokenizer, [p.question for p in problems])
    _assert_parity(bridge, hf_model, prompts, n_new=64, batch_size=8)


def test_decoding_raises_no_deprecation_warning(tiny_bridge, caplog):
    """Our calls use the cache keyword the installed transformers declares (no renamed-kwarg or
    renamed-field warning, which transformers gives as a warning or a log line)."""
    import warnings

    prompts = encode_prompts(tiny_bridge.tokenizer, QUESTIONS[:2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=4, batch_size=2))
    messages = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "deprecated" in m.lower()]
