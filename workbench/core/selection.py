"""Choosing a steering condition on validation data: the rules `als run` and `als sweep` share.

* tau from a quantile: tau is the q-quantile of cos(h_t, v) over the fit split's generated tokens,
  so that steering fires on about a share q of fit-like states; q = 1 means always on
  (`ALWAYS_ON_TAU`, above any cosine).
* the intervention rate: interventions per generated token and steered layer.
* the pick: best validation accuracy; ties go to the smaller alpha, then to the condition that
  intervenes less (the least change that does as well).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["ALWAYS_ON_TAU", "intervention_rate", "pick_best", "selection_key", "tau_from_quantile"]

ALWAYS_ON_TAU = 2.0
"""A tau above every cosine: the condition cos(h, v) < tau always holds."""


def tau_from_quantile(cos: Float[Tensor, " tokens"], q: float) -> float:
    """The q-quantile of the token cosines (q >= 1: `ALWAYS_ON_TAU`)."""
    return ALWAYS_ON_TAU if q >= 1 else float(torch.quantile(cos.float(), q))


def intervention_rate(rows: Sequence[Mapping[str, Any]], n_layers: int = 1) -> float:
    """Interventions per generated token and steered layer over graded rows."""
    tokens = sum(r["generated_tokens"] for r in rows)
    return sum(r.get("interventions", 0) for r in rows) / max(1, tokens * n_layers)


def selection_key(row: Mapping[str, Any]) -> tuple[float, float, float]:
    """Sort key of a validation row: higher accuracy, then smaller alpha, then fewer
    interventions ranks higher (use with `max`)."""
    return (row["accuracy"], -row["alpha"], -row["intervention_rate"])


def pick_best(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The validation row `selection_key` ranks first."""
    return max(rows, key=selection_key)
