"""Small helpers shared by test modules (tests/ is on sys.path through its conftest)."""

from __future__ import annotations

import torch

from workbench.core.directions import LayerDirections
from workbench.engine.hooks import resid_hook


def random_directions(bridge, mean_norm: float = 2.0) -> LayerDirections:
    """Seeded random centroids for every layer of `bridge` (steering tests: the hooks' behaviour
    does not depend on what a direction means), each layer's mean norm `mean_norm`."""
    n, d = bridge.cfg.n_layers, bridge.cfg.d_model
    g = torch.Generator().manual_seed(0)
    return LayerDirections(
        layers=tuple(range(n)),
        success_mean=torch.randn(n, d, generator=g),
        failure_mean=torch.randn(n, d, generator=g),
        mean_norm=torch.full((n,), mean_norm),
        n_success=10,
        n_failure=10,
    )


def resid_states(bridge, ids, layers):
    """(logits, {layer: residual state at resid_post}) of one forward pass; a hook added after
    a steering hook at the same point sees the steered state."""
    cache = {}

    def grab(layer):
        def hook(x, hook):
            cache[layer] = x.detach().clone()
            return x

        return hook

    hooks = [(resid_hook(layer), grab(layer)) for layer in layers]
    with torch.inference_mode(), bridge.hooks(fwd_hooks=hooks):
        logits = bridge(ids)
    return logits, cache


def n_hooks(bridge) -> int:
    """Forward hooks attached to the bridge's hook points (aliases share a point)."""
    points = {id(hp): hp for hp in bridge.hook_dict.values()}
    return sum(len(hp.fwd_hooks) for hp in points.values())
