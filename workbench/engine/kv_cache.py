"""The key/value cache carried between decoding steps, under the name the installed stack uses.

The forward of a transformers model takes its KV cache as ``cache`` or as ``past_key_values``,
depending on the transformers version (`workbench.sources.models` mends the bridge's attention
where the two disagree, `models._read_renamed_cache`). The decoders make the cache themselves
(`new_cache`) and hand it to the bridge under the keyword the loaded model's forward declares
(`cache_kwargs`), so they never depend on the name of the field the cache comes back in. For
continuous batching, caches are padded, trimmed and joined row-wise (`pad_cache_left`,
`trim_cache_left`, `join_caches`).

The layers of these caches grow in place (`GrowingLayer`): where transformers' `DynamicLayer`
appends each step's keys and values with `torch.cat`, copying the whole cache at every layer of
every step, a growing layer writes into spare room at the end of a buffer and hands attention views
of it, reallocating only when the room runs out (the saving: `benchmarks/step_cost.py --cache`).
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
    "growing_layer",
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
    """'cache' or 'past_key_values': the keyword the model's forward declares for its cache."""
    return _keyword_of(type(bridge.original_model))


_HEADROOM = 128
"""Least spare room (positions) a growing layer adds when it reallocates (else half its length)."""


class _GrowInPlace:
    """The growing behaviour of `GrowingLayer`, mixed into transformers' `DynamicLayer`: keys and
    values are views of a larger buffer, and appending writes in place (see the module
    docstring). Whoever replaces `keys` / `values` by other tensors (row selection, padding,
    trimming) is welcome to: the next append notices that they are no longer a prefix of the
    buffer and copies them into a new one."""

    _kbuf: torch.Tensor | None = None
    _vbuf: torch.Tensor | None = None
    _handed: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n, m = self.get_seq_length(), key_states.shape[-2]
        if not self._ours(n + m) and not self._holds(n + m):
            self._kbuf = self._rebuffer(self.keys, key_states, n + m)
            self._vbuf = self._rebuffer(self.values, value_states, n + m)
        self._kbuf[:, :, n : n + m] = key_states
        self._vbuf[:, :, n : n + m] = value_states
        self.keys, self.values = self._kbuf[:, :, : n + m], self._vbuf[:, :, : n + m]
        self._handed = (self.keys, self.values)
        return self.keys, self.values

    def _ours(self, length: int) -> bool:
        """The cheap case of `_holds`: keys and values are still the views this layer handed
        out last (nobody replaced them), and the buffers have room up to `length`."""
        handed = self._handed
        return (
            handed is not None
            and handed[0] is self.keys
            and handed[1] is self.values
            and self._kbuf.shape[2] >= length
            and self._vbuf.shape[2] >= length
        )

    def _holds(self, length: int) -> bool:
        """Whether keys and values are prefixes of the buffers, with room up to `length`."""
        pairs = ((self.keys, self._kbuf), (self.values, self._vbuf))
        return all(
            buf is not None
            and t.numel() > 0
            and t.data_ptr() == buf.data_ptr()
            and t.shape[:2] == buf.shape[:2]
            and t.stride() == buf.stride()
            and buf.shape[2] >= length
            for t, buf in pairs
        )

    @staticmethod
    def _rebuffer(old: torch.Tensor, new: torch.Tensor, length: int) -> torch.Tensor:
        n = length - new.shape[-2]
        room = length + max(_HEADROOM, length // 2)
        buf = new.new_empty((*new.shape[:2], room, new.shape[-1]))
        if n:
            buf[:, :, :n] = old
        return buf


@memoize
def growing_layer() -> type:
    """The `GrowingLayer` class: a `DynamicLayer` that grows in place (`_GrowInPlace`), made on
    first use because transformers is imported lazily."""
    from transformers.cache_utils import DynamicLayer

    return type("GrowingLayer", (_GrowInPlace, DynamicLayer), {"__doc__": _GrowInPlace.__doc__})


def new_cache(bridge: Any) -> Any:
    """An empty KV cache for the bridge's model, filled in place by each forward pass: a
    `DynamicCache` whose full-attention layers grow in place (`GrowingLayer`)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=bridge.original_model.config)
    grow = growing_layer()
    cache.layers = [grow() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


def cache_kwargs(bridge: Any, cache: Any) -> dict[str, Any]:
    """Keyword arguments that make a bridge forward read and extend `cache`."""
    return {cache_keyword(bridge): cache, "use_cache": True}


def cached_length(cache: Any) -> int:
    """Positions held by the cache (0 for an empty cache)."""
    return int(cache.get_seq_length())


def _layers(cache: Any) -> list[Any]:
    from transformers.cache_utils import DynamicLayer

    layers = list(cache.layers)
    odd = {
        type(layer).__name__
        for layer in layers
        if type(layer) not in (DynamicLayer, growing_layer())
    }
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
