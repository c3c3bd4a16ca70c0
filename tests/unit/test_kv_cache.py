"""The growing KV-cache layer holds what transformers' concatenating layer holds, through every
edit continuous batching makes (row selection, left padding and trimming, joins, truncation)."""

from __future__ import annotations

import pytest
import torch

from workbench.engine import kv_cache


def _pair():
    from transformers.cache_utils import Cache, DynamicLayer

    grow = kv_cache.growing_layer()
    return Cache(layers=[grow()]), Cache(layers=[DynamicLayer()])


def _append(caches, rows: int, n: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    k, v = torch.randn(rows, 2, n, 4, generator=g), torch.randn(rows, 2, n, 4, generator=g)
    outs = [c.layers[0].update(k, v) for c in caches]
    for got, want in zip(outs[0], outs[1], strict=True):
        assert torch.equal(got, want)


def _same(caches) -> None:
    grown, plain = (c.layers[0] for c in caches)
    assert torch.equal(grown.keys, plain.keys) and torch.equal(grown.values, plain.values)
    assert grown.get_seq_length() == plain.get_seq_length()


def test_appends_write_in_place_and_equal_concatenation():
    caches = _pair()
    _append(caches, 3, 5, 0)
    buffer = caches[0].layers[0].keys.data_ptr()
    for step in range(1, 40):
        _append(caches, 3, 1, step)
    _same(caches)
    # 44 positions fit the first buffer (5 + headroom): no copy was made
    assert caches[0].layers[0].keys.data_ptr() == buffer
    for step in range(40, 200):  # past the room: reallocated, still equal
        _append(caches, 3, 1, step)
    _same(caches)


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.batch_select_indices(torch.tensor([0, 2])),
        lambda c: kv_cache.truncate_cache(c, 4),
        lambda c: kv_cache.pad_cache_left(c, 3),
        lambda c: kv_cache.trim_cache_left(c, 2),
    ],
    ids=["select rows", "truncate", "pad left", "trim left"],
)
def test_edits_between_appends_keep_the_two_layers_equal(edit):
    caches = _pair()
    _append(caches, 3, 6, 0)
    _append(caches, 3, 1, 1)
    for cache in caches:
        edit(cache)
    _same(caches)
    rows = caches[1].layers[0].keys.shape[0]
    for step in range(2, 6):
        _append(caches, rows, 1, step)
    _same(caches)


def test_joined_caches_grow_like_concatenated_ones():
    first, second = _pair(), _pair()
    _append(first, 2, 4, 0)
    _append(second, 1, 4, 1)
    for a, b in zip(first, second, strict=True):
        kv_cache.join_caches(a, b)
    _same(first)
    _append(first, 3, 1, 2)
    _same(first)
