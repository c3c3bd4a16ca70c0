"""KL and entropy change at steered steps: zero without effect, faithful replay of decoding."""

from __future__ import annotations

import torch

from workbench.core.directions import fit_directions
from workbench.core.effects import distribution_shift, next_token_effects
from workbench.core.steering import SteeringSpec, steer
from workbench.engine.config import GenerationConfig
from workbench.methods.cot import run_cot


def test_distribution_shift_of_equal_and_known_distributions():
    x = torch.randn(3, 7)
    same = distribution_shift(x, x)
    assert torch.allclose(same["kl"], torch.zeros(3), atol=1e-6)
    assert torch.allclose(same["entropy_delta"], torch.zeros(3), atol=1e-6)
    assert same["top1_changed"].sum() == 0
    uniform, peaked = torch.zeros(1, 2), torch.tensor([[0.0, 1e4]])
    shift = distribution_shift(uniform, peaked)  # KL(uniform || one-hot) is huge, H rises by ln 2
    assert (
        shift["kl"] > 100
        and abs(float(shift["entropy_delta"]) - float(torch.log(torch.tensor(2.0)))) < 1e-4
    )


def _directions(bridge):
    n, d = 8, bridge.cfg.d_model
    states = torch.randn(n, bridge.cfg.n_layers, d)
    labels = torch.tensor([True, False] * (n // 2))
    return fit_directions(states, labels, tuple(range(bridge.cfg.n_layers)), min_per_class=1)


def test_replay_fires_where_decoding_fired(tiny_bridge, tiny_problems):
    directions = _directions(tiny_bridge)
    spec = SteeringSpec(layers=(1,), alpha=2.0, tau=2.0)  # fires on every generated token
    gen = GenerationConfig(max_new_tokens=6, batch_size=3)
    with steer(tiny_bridge, spec, directions):
        rows = run_cot(tiny_bridge, tiny_problems, generation=gen, progress=False)
    effects = next_token_effects(tiny_bridge, tiny_problems, rows, spec, directions)
    assert [e["id"] for e in effects] == [r["id"] for r in rows]
    for e, r in zip(effects, rows, strict=True):
        assert e["replayed"] == r["interventions"] > 0
        assert e["kl"] > 0 and 0 <= e["top1_changed"] <= 1


def test_zero_strength_changes_nothing(tiny_bridge, tiny_problems):
    directions = _directions(tiny_bridge)
    spec = SteeringSpec(layers=(0, 2), alpha=0.0, tau=2.0)
    gen = GenerationConfig(max_new_tokens=5, batch_size=6)
    with steer(tiny_bridge, spec, directions):
        rows = run_cot(tiny_bridge, tiny_problems, generation=gen, progress=False)
    for e in next_token_effects(tiny_bridge, tiny_problems, rows, spec, directions):
        assert e["n_steered"] > 0 and e["kl"] == 0.0 and e["entropy_delta"] == 0.0
