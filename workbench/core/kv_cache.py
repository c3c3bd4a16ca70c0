"""The key/value cache carried between decoding steps, under the name the installed stack uses.

transformers 5.24 renamed the KV cache from ``past_key_values`` to ``cache``, both as the forward
keyword and as the output field (the old names still work with a deprecation warning until 5.40).
transformer-lens 4.3.0 still passes and reads ``past_key_values``; `workbench.sources.models` mends
the one place where that loses the cache (its attention bridges, see `models._read_renamed_cache`).
This module owns the cache on the decoding side: `decode` makes the cache itself (`new_cache`),
hands it to the bridge under the keyword the loaded model's forward declares (`cache_kwargs`), and
so never depends on the name of the field the cache comes back in. For continuous batching it pads,
trims and joins caches row-wise (`pad_cache_left`, `trim_cache_left`, `join_caches`).
"""

from __future__ import annotations

import inspect
from functools import cache as memoize
from typing import Any

import torch

from workbench.errors import WorkbenchError

__all__ = [
    "cache_keyword",
    "cache_kwargs",
    "cached_length",
    "join_caches",
    "new_cache",
    "pad_cache_left",
    "trim_cache_left",
    "truncate_cache",
]


@memoize
def _keyword_of(forward_type: type) -> str:
    params = inspect.signature(forward_type.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_keyword(bridge: Any) -> str:
    """'cache' (transformers >= 5.24) or 'past_key_values' (earlier), as the model declares it."""
    return _keyword_of(type(bridge.original_model))


def new_cache(bridge: Any) -> Any:
    """An empty dynamic KV cache for the bridge's model, filled in place by each forward pass."""
    from transformers import DynamicCache

    return DynamicCache(config=bridge.original_model.config)


def cache_kwargs(bridge: Any, cache: Any) -> dict[str, Any]:
    """Keyword arguments that make a bridge forward read and extend `cache`."""
    return {cache_keyword(bridge): cache, "use_cache": True}


def cached_length(cache: Any) -> int:
    """Positions held by the cache (0 for an empty cache)."""
    return int(cache.get_seq_length())


def _layers(cache: Any) -> list[Any]:
    from transformers.cache_utils import DynamicLayer

    layers = list(cache.layers)
    odd = {type(layer).__name__ for layer in layers if type(layer) is not DynamicLayer}
    if odd:
        raise WorkbenchError(
            f"continuous batching joins plain dynamic KV caches only, not {sorted(odd)} layers "
            "(sliding-window models): decode them with use_kv_cache false"
        )
    return layers


def pad_cache_left(cache: Any, n: int) -> None:
    """Prepend `n` empty positions to every row (in place): what left padding does to ids."""
    if n <= 0:
        return
    for layer in _layers(cache):
        if layer.is_initialized:
            for name in ("keys", "values"):
                t = getattr(layer, name)
                pad = t.new_zeros((*t.shape[:2], n, t.shape[3]))
                setattr(layer, name, torch.cat([pad, t], dim=2))


def trim_cache_left(cache: Any, n: int) -> None:
    """Drop the first `n` positions of every row (in place): columns that are padding in all."""
    if n <= 0:
        return
    for layer in _layers(cache):
        if layer.is_initialized:
            layer.keys, layer.values = layer.keys[:, :, n:], layer.values[:, :, n:]


def truncate_cache(cache: Any, length: int) -> None:
    """Keep only the first `length` positions of every row (in place)."""
    for layer in _layers(cache):
        if layer.is_initialized:
            layer.keys, layer.values = layer.keys[:, :, :length], layer.values[:, :, :length]


def join_caches(first: Any, second: Any) -> None:
    """Append the rows of `second` to `first` (in place); both must hold the same length."""
    if cached_length(first) != cached_length(second):
        raise WorkbenchError("join_caches: pad the shorter cache first")
    for a, b in zip(_layers(first), _layers(second), strict=True):
        a.keys = torch.cat([a.keys, b.keys], dim=0)
        a.values = torch.cat([a.values, b.values], dim=0)
