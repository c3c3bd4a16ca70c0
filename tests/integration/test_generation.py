"""Decoding invariants on a tiny random model: batching, KV cache, sampling seeds, stopping."""

from __future__ import annotations

import pytest

from workbench.core.prompts import encode_prompts
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode

QUESTIONS = ["12+3=", "What is five times six? Explain.", "x", "A much longer question " * 4]


@pytest.fixture
def prompts(tiny_bridge):
    return encode_prompts(tiny_bridge.tokenizer, QUESTIONS)


def _tokens(completions):
    return [c.tokens for c in completions]


def test_batched_equals_one_by_one(tiny_bridge, prompts):
    one = decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=24, batch_size=1))
    batched = decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=24, batch_size=4))
    assert len({len(p) for p in prompts}) > 1  # left padding is exercised
    assert _tokens(one) == _tokens(batched)
    assert all(len(c.tokens) == 24 and c.finish == "length" for c in one)


def test_kv_cache_equals_no_cache(tiny_bridge, prompts):
    cached = decode(tiny_bridge, prompts, GenerationConfig(max_new_tokens=16, batch_size=4))
    plain = decode(
        tiny_bridge, prompts, GenerationConfig(max_new_tokens=16, batch_size=4, use_kv_cache=False)
    )
    assert _tokens(cached) == _tokens(plain)


def test_sampling_is_seeded_per_sequence(tiny_bridge, prompts):
    cfg = dict(max_new_tokens=16, do_sample=True, temperature=1.0, top_p=0.9, seed=3)
    a = decode(tiny_bridge, prompts, GenerationConfig(batch_size=4, **cfg))
    b = decode(tiny_bridge, prompts, GenerationConfig(batch_size=1, **cfg))
    c = decode(tiny_bridge, prompts, GenerationConfig(batch_size=4, **{**cfg, "seed": 4}))
    assert _tokens(a) == _tokens(b)
    assert _tokens(a) != _tokens(c)


def test_stop_predicate_and_dropped_rows(tiny_bridge, prompts):
    cfg = GenerationConfig(max_new_tokens=20, batch_size=4)
    free = decode(tiny_bridge, prompts, cfg)
    # Stop the second sequence after 5 tokens: the others must be unaffected by its removal.
    target = free[1].text[: len(tiny_bridge.tokenizer.decode(free[1].tokens[:5]))]
    stopped = decode(tiny_bridge, prompts, cfg, stop=lambda text: text == target)
    assert stopped[1].finish == "stop" and stopped[1].tokens == free[1].tokens[:5]
    for i in (0, 2, 3):
        assert stopped[i].tokens == free[i].tokens


def test_eos_ends_a_sequence(tiny_bridge, prompts):
    free = decode(tiny_bridge, prompts[:1], GenerationConfig(max_new_tokens=8))
    eos = free[0].tokens[3]
    original = tiny_bridge.tokenizer.eos_token_id
    tiny_bridge.tokenizer.eos_token_id = eos
    try:
        ended = decode(tiny_bridge, prompts[:1], GenerationConfig(max_new_tokens=8))
    finally:
        tiny_bridge.tokenizer.eos_token_id = original
    first = free[0].tokens.index(eos)
    assert ended[0].finish == "eos" and ended[0].tokens == free[0].tokens[:first]


MANY = [f"{q} ({i})" if i % 2 else q for i, q in enumerate(QUESTIONS * 3)]


def _third_repeat(text: str) -> bool:
    """A stop rule that ends rows at different steps (when a character comes the third time), so
    that waiting prompts join a running batch."""
    return len(text) > 2 and text.count(text[-1]) >= 3


@pytest.mark.parametrize("use_kv_cache", [True, False])
def test_continuous_batching_equals_one_by_one(tiny_bridge, use_kv_cache):
    prompts = encode_prompts(tiny_bridge.tokenizer, MANY)
    done = []
    cfg = GenerationConfig(max_new_tokens=20, batch_size=3, use_kv_cache=use_kv_cache)
    joined = decode(
        tiny_bridge, prompts, cfg, stop=_third_repeat, on_complete=lambda i, c: done.append(i)
    )
    single = decode(
        tiny_bridge,
        prompts,
        GenerationConfig(max_new_tokens=20, batch_size=1),
        stop=_third_repeat,
    )
    lengths = {len(c.tokens) for c in single}
    assert len(prompts) > 3 * cfg.batch_size and len(lengths) > 2  # rows leave and join
    assert _tokens(joined) == _tokens(single)
    assert [c.finish for c in joined] == [c.finish for c in single]
    assert sorted(done) == list(range(len(prompts))) and done != sorted(done)  # as they finish
    assert all(c.seconds > 0 for c in joined)
