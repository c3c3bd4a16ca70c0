"""Trajectories against the success direction: per-token cosines and projections, drift measures,
and a 2-D PCA basis for pictures of states and centroids. Pure tensor math (no TransformerLens).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.errors import WorkbenchError

__all__ = [
    "PCABasis",
    "drift_measures",
    "fit_pca",
    "step_bands",
    "token_cosines",
    "trajectory_rows",
]


def token_cosines(
    states: Float[Tensor, "tokens d_model"], direction: Float[Tensor, " d_model"]
) -> tuple[Float[Tensor, " tokens"], Float[Tensor, " tokens"]]:
    """cos(h_t, v) and the scalar projection h_t . v_hat for every token."""
    if states.shape[-1] != direction.shape[-1]:
        raise WorkbenchError(
            f"states of width {states.shape[-1]} and a direction of width {direction.shape[-1]}"
        )
    states, direction = states.float(), direction.float()
    unit = direction / direction.norm().clamp_min(1e-12)
    cos = torch.cosine_similarity(states, unit[None], dim=-1)
    return cos, states @ unit


def drift_measures(cos: Float[Tensor, " tokens"], tau: float) -> dict[str, Any]:
    """Share of tokens below tau, first step below tau (None if never), mean and final cosine."""
    below = (cos < tau).nonzero()
    return {
        "frac_below_tau": float((cos < tau).float().mean()) if len(cos) else math.nan,
        "first_below_tau": int(below[0]) if len(below) else None,
        "mean_cos": float(cos.mean()) if len(cos) else math.nan,
        "final_cos": float(cos[-1]) if len(cos) else math.nan,
    }


def trajectory_rows(
    trajectories: Sequence[Float[Tensor, "_tokens d_model"]],
    direction: Float[Tensor, " d_model"],
    *,
    ids: Sequence[str],
    groups: Sequence[str],
    tau: float,
    steered_steps: Sequence[Sequence[int]] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Tidy per-token rows (id, group, step, cos, proj, steered) and per-generation drift rows."""
    tokens, drift = [], []
    for i, (traj, pid, group) in enumerate(zip(trajectories, ids, groups, strict=True)):
        cos, proj = token_cosines(traj, direction)
        fired = set(steered_steps[i]) if steered_steps is not None else set()
        tokens.extend(
            {
                "id": pid,
                "group": group,
                "step": t,
                "cos": float(c),
                "proj": float(p),
                "steered": t in fired,
            }
            for t, (c, p) in enumerate(zip(cos, proj, strict=True))
        )
        drift.append({"id": pid, "group": group, "n_tokens": len(cos), **drift_measures(cos, tau)})
    return tokens, drift


def step_bands(rows: Sequence[dict[str, Any]], *, value: str = "cos") -> list[dict[str, Any]]:
    """Mean and 95% normal band (mean +- 1.96 SE) of `value` per group and decoding step."""
    buckets: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        buckets.setdefault((r["group"], r["step"]), []).append(r[value])
    out = []
    for (group, step), vals in sorted(buckets.items()):
        t = torch.tensor(vals)
        se = float(t.std() / math.sqrt(len(t))) if len(t) > 1 else 0.0
        mean = float(t.mean())
        out.append(
            {
                "group": group,
                "step": step,
                "mean": mean,
                "ci_low": mean - 1.96 * se,
                "ci_high": mean + 1.96 * se,
                "n": len(t),
            }
        )
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class PCABasis:
    """A 2-D (or k-D) PCA basis of residual states."""

    mean: Float[Tensor, " d_model"]
    """Centre the basis was fit around."""
    components: Float[Tensor, "k d_model"]
    """Orthonormal principal axes, largest variance first."""
    explained: Float[Tensor, " k"]
    """Share of the total variance along each axis."""

    def project(self, states: Float[Tensor, "n d_model"]) -> Float[Tensor, "n k"]:
        """Coordinates of `states` in the basis."""
        return (states.float() - self.mean) @ self.components.T


def fit_pca(states: Float[Tensor, "n d_model"], k: int = 2) -> PCABasis:
    """PCA of `states` (fit these on the fit split only)."""
    if states.ndim != 2 or states.shape[0] <= k:
        raise WorkbenchError(f"PCA with {k} axes needs more than {k} states of shape [n, d_model]")
    x = states.float()
    mean = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    var = s**2
    return PCABasis(mean=mean, components=vt[:k], explained=var[:k] / var.sum())
