"""Per-layer success directions: pure tensor math on cached activations (no TransformerLens).

`v_l = mean(success states at layer l) - mean(failure states at layer l)`. A `LayerDirections`
keeps both centroids, the mean residual norm per layer (the unit of relative steering strength),
the class counts and where it came from, and saves as safetensors + JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Bool, Float
from safetensors.torch import load_file, save_file
from torch import Tensor

from workbench import __version__
from workbench.errors import WorkbenchError

__all__ = ["LayerDirections", "cosine_matrix", "fit_directions", "separation"]


@dataclass(frozen=True, kw_only=True, eq=False)
class LayerDirections:
    """Success and failure centroids per layer, with provenance."""

    layers: tuple[int, ...]
    """Model layers, in the order of the tensors' first axis."""
    success_mean: Float[Tensor, "layer d_model"]
    """Centroid of the states of correct generations."""
    failure_mean: Float[Tensor, "layer d_model"]
    """Centroid of the states of incorrect generations."""
    mean_norm: Float[Tensor, " layer"]
    """Mean L2 norm of all fit states per layer (unit of relative steering strength)."""
    n_success: int
    """Number of correct generations the centroids came from."""
    n_failure: int
    """Number of incorrect generations."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Model, hook site, position policy, split ids, label source, library version."""

    def __post_init__(self) -> None:
        shape = (len(self.layers), self.success_mean.shape[-1])
        if tuple(self.success_mean.shape) != shape or tuple(self.failure_mean.shape) != shape:
            raise WorkbenchError(f"centroids must have shape {shape}")

    @property
    def d_model(self) -> int:
        """Residual width."""
        return int(self.success_mean.shape[-1])

    @property
    def vectors(self) -> Float[Tensor, "layer d_model"]:
        """The steering vectors v_l = success centroid - failure centroid."""
        return self.success_mean - self.failure_mean

    def index(self, layer: int) -> int:
        """Row of `layer` in the tensors."""
        if layer not in self.layers:
            raise WorkbenchError(f"no direction for layer {layer}; have {list(self.layers)}")
        return self.layers.index(layer)

    def vector(self, layer: int) -> Float[Tensor, " d_model"]:
        """v_l for one layer."""
        return self.vectors[self.index(layer)]

    def unit(self, layer: int) -> Float[Tensor, " d_model"]:
        """v_l / ||v_l||."""
        v = self.vector(layer)
        return v / v.norm().clamp_min(1e-12)

    def save(self, path: str | Path) -> Path:
        """Write `<path>/directions.safetensors` and `<path>/directions.json`."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {
            "success_mean": self.success_mean.contiguous(),
            "failure_mean": self.failure_mean.contiguous(),
            "mean_norm": self.mean_norm.contiguous(),
        }
        save_file(tensors, path / "directions.safetensors")
        meta = {
            "layers": list(self.layers),
            "n_success": self.n_success,
            "n_failure": self.n_failure,
            "provenance": {"library_version": __version__, **self.provenance},
        }
        (path / "directions.json").write_text(json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> LayerDirections:
        """Read what `save` wrote."""
        path = Path(path)
        try:
            meta = json.loads((path / "directions.json").read_text())
            tensors = load_file(path / "directions.safetensors")
        except FileNotFoundError as exc:
            raise WorkbenchError(
                f"no directions saved in {path} (run the fit stage first)"
            ) from exc
        return cls(
            layers=tuple(meta["layers"]),
            success_mean=tensors["success_mean"],
            failure_mean=tensors["failure_mean"],
            mean_norm=tensors["mean_norm"],
            n_success=meta["n_success"],
            n_failure=meta["n_failure"],
            provenance=meta["provenance"],
        )


def fit_directions(
    states: Float[Tensor, "n layer d_model"],
    labels: Bool[Tensor, " n"],
    layers: tuple[int, ...],
    *,
    min_per_class: int = 5,
    provenance: dict[str, Any] | None = None,
) -> LayerDirections:
    """Centroids of correct (label True) and incorrect states at every layer."""
    if states.ndim != 3 or states.shape[:2] != (labels.shape[0], len(layers)):
        raise WorkbenchError(
            f"states of shape {tuple(states.shape)} do not match {labels.shape[0]} labels "
            f"and {len(layers)} layers"
        )
    labels = labels.bool()
    n_success, n_failure = int(labels.sum()), int((~labels).sum())
    if min(n_success, n_failure) < min_per_class:
        raise WorkbenchError(
            f"too few examples to fit directions: {n_success} correct and {n_failure} incorrect "
            f"(need at least {min_per_class} of each); use a larger fit split, or accept fewer "
            "(`als run --als.min_per_class N`, also when it resumes)"
        )
    states = states.float()
    return LayerDirections(
        layers=tuple(layers),
        success_mean=states[labels].mean(0),
        failure_mean=states[~labels].mean(0),
        mean_norm=states.norm(dim=-1).mean(0),
        n_success=n_success,
        n_failure=n_failure,
        provenance=dict(provenance or {}),
    )


def cosine_matrix(vectors: Float[Tensor, "layer d_model"]) -> Float[Tensor, "layer layer"]:
    """Cosine similarity between every pair of layers' directions."""
    unit = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return unit @ unit.T


def separation(
    states: Float[Tensor, "n layer d_model"], labels: Bool[Tensor, " n"]
) -> Float[Tensor, " layer"]:
    """In-sample d' per layer: gap of the class means of the projection onto the mean-difference
    direction, over the pooled standard deviation of that projection.

    Optimistic (the direction is fit on the same examples): a quick screen of layers on the fit
    split; `workbench.core.probing` gives cross-validated measures with confidence intervals.
    """
    labels = labels.bool()
    states = states.float()
    v = states[labels].mean(0) - states[~labels].mean(0)
    proj = torch.einsum("nld,ld->nl", states, v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12))
    s, f = proj[labels], proj[~labels]
    pooled = ((s.var(0) * (len(s) - 1) + f.var(0) * (len(f) - 1)) / (len(proj) - 2)).sqrt()
    return (s.mean(0) - f.mean(0)) / pooled.clamp_min(1e-12)
