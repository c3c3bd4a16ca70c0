"""The transient update's KV-cache repair: rerun only the blocks a nudge reached, only for its rows.

A transient intervention (``persistence="transient"``, the ALS authors' update)
changes the logits of the pass that computes a position, but later passes must see that position
unsteered, as the authors' full recompute at every step does (their `steered_generation.py`
recomputes the whole sequence each step and nudges only its newest position). With a KV cache,
the keys and values that the nudged states wrote into the cache must therefore be replaced by
those of the unsteered states.

A nudge at block `b`'s input (``resid_pre``) reaches the cache of blocks `b`, `b+1`, ...; a nudge at
block `b`'s output (``resid_post``) only those after `b`; at the final normalised state none. So the
repair reruns blocks `b..n-1` on the unsteered input of block `b` (kept by the steering hook before
it nudged), with the arguments the model gave those blocks in the pass (captured by
`capture_block_calls`), interventions suppressed, and then puts back the cache entries of every row
where no transient intervention fired: rows of other arms sharing the batch keep exactly what their
own pass wrote (a persistent arm's steering included). For the authors' configuration, at the last
block's input, the repair costs one block at one position instead of a whole second pass.

A nudge in the middle of a block (``resid_mid``) has no block input to rerun from: the cache is
then cut back to the first nudged position and refilled by a whole pass over every row, so such a
nudge must not share its batch with rows whose cache holds steered states of their own
(`workbench.engine.generation.decode` gives it a call of its own, `needs_own_call`).

This module owns the repair: the hooks mark where a nudge fired (`TransientMarks.mark`, in the
pass's `PassRecord`), the blocks' call arguments are captured (`capture_block_calls`), and the
decoder calls `repair_cache` after each pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from workbench.engine.hooks import patched, resid_hook, stop_after, untuple
from workbench.engine.kv_cache import truncate_cache
from workbench.engine.passes import (
    PassInfo,
    PassRecord,
    TransientMarks,
    current_pass,
    interventions_suppressed,
    publish_pass,
    suppress_interventions,
)

__all__ = [
    "capture_block_calls",
    "first_reached_block",
    "needs_own_call",
    "repair_cache",
]


def first_reached_block(layer: int, site: str, n_layers: int) -> int | None:
    """The first block whose cached keys and values a nudge at (`layer`, `site`) changes
    (`n_layers`: none), or None when the nudge has no block input to rerun from (``resid_mid``)."""
    if site == "resid_pre":
        return layer
    if site == "resid_post":
        return layer + 1
    if site == "final":
        return n_layers
    return None


def needs_own_call(site: str, persistence: str) -> bool:
    """Whether steering at `site` with `persistence` refills the KV cache of every row of its
    batch (a transient nudge at ``resid_mid``), so that it must decode in a call of its own."""
    return persistence == "transient" and first_reached_block(0, site, 1) is None


@contextlib.contextmanager
def capture_block_calls(bridge: Any, first: int) -> Iterator[None]:
    """While open, every block from `first` on records the arguments of its call into the
    `TransientMarks` of the pass in flight, so that `repair_cache` can call it again; hooks are
    always removed."""

    def recorder(block: int):
        def pre_hook(module: Any, args: tuple, kwargs: dict) -> None:
            now = current_pass()
            marks = None if now is None else now.record.transient
            if marks is not None and not interventions_suppressed():
                marks.block_calls[block] = (args, kwargs)

        return pre_hook

    with patched() as handle:
        for b in range(first, int(bridge.cfg.n_layers)):
            handle.add(bridge.blocks[b].register_forward_pre_hook(recorder(b), with_kwargs=True))
        yield


def repair_cache(
    bridge: Any,
    cache: Any,
    ids: Tensor,
    forward_kwargs: dict[str, Any],
    info: PassInfo,
    record: PassRecord,
) -> None:
    """After a pass over `ids` (its keyword arguments `forward_kwargs`, the attention mask among
    them) that extended `cache`: replace what its transient interventions wrote into the cache
    by what the unsteered states write (see the module docstring). Nothing when none fired."""
    marks = record.transient
    if marks is None or marks.first is None:
        return
    with suppress_interventions(), publish_pass(info, record):
        if not marks.whole:
            _rerun_unsteered(bridge, cache, marks)
            return
        keep = forward_kwargs["attention_mask"].shape[1] - ids.shape[1] + marks.first
        truncate_cache(cache, keep)
        last = resid_hook(bridge.cfg.n_layers - 1)  # the cache is whole once the last block ran
        with stop_after(bridge, last):
            bridge(ids[:, marks.first :], return_type="logits", **forward_kwargs)


def _rerun_unsteered(bridge: Any, cache: Any, marks: TransientMarks) -> None:
    """Rerun the blocks the nudges reached, from their unsteered input, and put back the cache
    entries of the rows where no nudge fired."""
    start, n_layers = marks.block, int(bridge.cfg.n_layers)
    if start is None or start >= n_layers:
        return
    h = marks.state
    n_new = h.shape[1]
    layers = list(cache.layers)[start:]
    saved = [
        (layer.keys[:, :, -n_new:].clone(), layer.values[:, :, -n_new:].clone()) for layer in layers
    ]
    for layer in layers:
        keep = layer.keys.shape[2] - n_new
        layer.keys, layer.values = layer.keys[:, :, :keep], layer.values[:, :, :keep]
    for block in range(start, n_layers):
        args, kwargs = marks.block_calls[block]
        h = untuple(bridge.blocks[block](h, *args[1:], **kwargs))
    untouched = ~marks.rows.to(h.device)
    for layer, (keys, values) in zip(layers, saved, strict=True):
        for name, old in (("keys", keys), ("values", values)):
            now = getattr(layer, name)[:, :, -n_new:]
            now.copy_(torch.where(untouched[:, None, None, None], old, now))
