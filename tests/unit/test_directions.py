"""Directions from planted clusters, save/load, cosine matrices (pure tensor math)."""

from __future__ import annotations

import pytest
import torch

from workbench.core.directions import LayerDirections, cosine_matrix, fit_directions
from workbench.errors import WorkbenchError


def planted(n=40, layers=3, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2 == 0
    succ = torch.randn(layers, d, generator=g)
    fail = torch.randn(layers, d, generator=g)
    noise = torch.randn(n, layers, d, generator=g)
    noise = noise - torch.stack([noise[labels].mean(0), noise[~labels].mean(0)])[(~labels).long()]
    states = torch.where(labels[:, None, None], succ, fail) + noise
    return states, labels, succ, fail


def test_planted_clusters_give_exact_centroids():
    states, labels, succ, fail = planted()
    dirs = fit_directions(states, labels, (0, 5, 7))
    torch.testing.assert_close(dirs.success_mean, succ)
    torch.testing.assert_close(dirs.failure_mean, fail)
    torch.testing.assert_close(dirs.vector(5), succ[1] - fail[1])
    assert dirs.unit(7).norm() == pytest.approx(1.0)
    assert (dirs.n_success, dirs.n_failure) == (20, 20)
    torch.testing.assert_close(dirs.mean_norm, states.norm(dim=-1).mean(0))


def test_planted_direction_is_recovered_from_noise():
    g = torch.Generator().manual_seed(1)
    delta = torch.randn(32, generator=g)
    base = torch.randn(400, 1, 32, generator=g) * 3
    labels = torch.rand(400, generator=g) < 0.5
    states = base + labels[:, None, None] * delta
    dirs = fit_directions(states, labels, (0,))
    assert torch.cosine_similarity(dirs.vector(0), delta, dim=0) > 0.95


def test_too_few_examples_names_the_counts():
    states, labels, *_ = planted(n=6)
    with pytest.raises(WorkbenchError, match="3 correct and 3 incorrect"):
        fit_directions(states, labels, (0, 1, 2), min_per_class=5)


def test_save_load_round_trip_is_bit_identical(tmp_path):
    states, labels, *_ = planted()
    dirs = fit_directions(
        states, labels, (0, 1, 2), provenance={"model": "toy", "split_ids": ["a"]}
    )
    back = LayerDirections.load(dirs.save(tmp_path / "d"))
    assert back.layers == dirs.layers and back.provenance["model"] == "toy"
    assert "library_version" in back.provenance
    for name in ("success_mean", "failure_mean", "mean_norm"):
        assert torch.equal(getattr(back, name), getattr(dirs, name))


def test_unknown_layer_and_missing_file():
    states, labels, *_ = planted()
    dirs = fit_directions(states, labels, (0, 1, 2))
    with pytest.raises(WorkbenchError, match="no direction for layer 9"):
        dirs.vector(9)
    with pytest.raises(WorkbenchError, match="no directions saved"):
        LayerDirections.load(tmp := __import__("pathlib").Path("/nonexistent"))
    assert tmp


def test_cosine_matrix():
    v = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    torch.testing.assert_close(
        cosine_matrix(v), torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    )
