"""The key/value cache carried between decoding steps, under the name the installed stack uses.

transformers 5.24 renamed the KV cache from ``past_key_values`` to ``cache``, both as the forward
keyword and as the output field (the old names still work with a deprecation warning until 5.40).
transformer-lens 4.3.0 still passes and reads ``past_key_values``; `workbench.sources.models` mends
the one place where that loses the cache (its attention bridges, see `models._read_renamed_cache`).
This module owns the cache on the decoding side: `decode` makes the cache itself (`new_cache`),
hands it to the bridge under the keyword the loaded model's forward declares (`cache_kwargs`), and
so never depends on the name of the field the cache comes back in.
"""

from __future__ import annotations

import inspect
from functools import cache as memoize
from typing import Any

__all__ = ["cache_keyword", "cache_kwargs", "cached_length", "new_cache"]


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
