"""The transient update's KV-cache repair: rerun only the blocks a nudge reached, only for its rows.

A transient intervention (`SteeringSpec(persistence="transient")`, the ALS authors' update)
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

A nudge in the middle of a block (``resid_mid``) has no block input to rerun from; `decode` refills
it with a whole pass from the first nudged position (`workbench.core.generation`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["capture_block_calls", "first_reached_block", "rerun_unsteered"]


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


@contextlib.contextmanager
def capture_block_calls(bridge: Any, first: int) -> Iterator[None]:
    """While open, every block from `first` on records the arguments of its call into the
    `DecodeStep` in flight (`DecodeStep.block_calls`), so that `rerun_unsteered` can call it
    again; hooks are always removed."""
    from workbench.core.decode_step import current_step, interventions_suppressed

    def recorder(block: int):
        def pre_hook(module: Any, args: tuple, kwargs: dict) -> None:
            step = current_step()
            if step is not None and not interventions_suppressed():
                step.block_calls[block] = (args, kwargs)

        return pre_hook

    handles = [
        bridge.blocks[b].register_forward_pre_hook(recorder(b), with_kwargs=True)
        for b in range(first, int(bridge.cfg.n_layers))
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def rerun_unsteered(bridge: Any, cache: Any, step: Any) -> None:
    """Replace what the transient interventions of `step`'s pass wrote into `cache` (see the
    module docstring). The caller suppresses interventions and publishes `step`."""
    start, n_layers = step.transient_block, int(bridge.cfg.n_layers)
    if start is None or start >= n_layers:
        return
    h = step.transient_state
    n_new = h.shape[1]
    layers = list(cache.layers)[start:]
    saved = [
        (layer.keys[:, :, -n_new:].clone(), layer.values[:, :, -n_new:].clone()) for layer in layers
    ]
    for layer in layers:
        keep = layer.keys.shape[2] - n_new
        layer.keys, layer.values = layer.keys[:, :, :keep], layer.values[:, :, :keep]
    for block in range(start, n_layers):
        args, kwargs = step.block_calls[block]
        out = bridge.blocks[block](h, *args[1:], **kwargs)
        h = out[0] if isinstance(out, tuple) else out
    untouched = ~step.transient_rows.to(h.device)
    for layer, (keys, values) in zip(layers, saved, strict=True):
        for name, old in (("keys", keys), ("values", values)):
            now = getattr(layer, name)[:, :, -n_new:]
            now.copy_(torch.where(untouched[:, None, None, None], old, now))
