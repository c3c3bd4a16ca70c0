"""Pooled, within-problem and difficulty directions from sampled chains, per layer.

With several sampled chains per problem, the states of a problem's correct and incorrect chains
can be contrasted inside the problem, where its difficulty is held fixed. Three directions per
layer come from the same cached states:

* **pooled**: the mean state of all correct chains minus that of all incorrect ones (the
  direction `fit_directions` fits, which mixes reasoning with difficulty when hard problems give
  most of the failures);
* **within-problem**: for each problem with both outcomes (*mixed*), its mean correct state minus
  its mean incorrect state, averaged over mixed problems with one weight per problem, so that
  whatever is constant within a problem (its difficulty) cancels;
* **difficulty**: from the last prompt token (one state per problem, before anything is
  written), the per-coordinate least-squares slope of the state on the problem's pass rate,
  ``v = sum_p (r_p - r_bar)(x_p - x_bar) / sum_p (r_p - r_bar)^2``: state units per unit of pass
  rate, pointing toward easier problems.

Each is linear in per-problem sums (`ProblemStats`), so a bootstrap resample over problems, or a
cross-validation fold (by problem), is a weight vector over problems: `directions` takes one
weight row per resample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from workbench.errors import WorkbenchError

__all__ = ["KINDS", "ProblemStats", "cosines", "directions", "problem_index"]

KINDS: tuple[str, ...] = ("pooled", "within", "difficulty")
"""The three directions, in the order of `directions`' output."""


def problem_index(problem_ids: Sequence[str]) -> tuple[tuple[str, ...], Tensor]:
    """The distinct problems in first-seen order, and each row's place among them."""
    order: dict[str, int] = {}
    place = [order.setdefault(pid, len(order)) for pid in problem_ids]
    return tuple(order), torch.tensor(place, dtype=torch.long)


@dataclass(frozen=True, eq=False)
class ProblemStats:
    """Per-problem sums of sampled chains' states: all that the three directions need."""

    problem_ids: tuple[str, ...]
    """The problems, in the order of the first axis."""
    correct_sum: Float[Tensor, "problem layer d_model"]
    """Sum of the problem's correct chains' states (e.g. mean over generated tokens)."""
    incorrect_sum: Float[Tensor, "problem layer d_model"]
    """Sum of its incorrect chains' states."""
    n_correct: Float[Tensor, " problem"]
    """Its correct chains."""
    n_incorrect: Float[Tensor, " problem"]
    """Its incorrect chains."""
    prompt: Float[Tensor, "problem layer d_model"]
    """Its last prompt token's state (the same for all its chains)."""

    @classmethod
    def from_rows(
        cls,
        states: Float[Tensor, "n layer d_model"],
        prompt_states: Float[Tensor, "n layer d_model"],
        labels: Bool[Tensor, " n"],
        problem_ids: Sequence[str],
    ) -> ProblemStats:
        """Sums over the chains (rows) of each problem; the prompt state is their mean."""
        if not (len(states) == len(prompt_states) == len(labels) == len(problem_ids)):
            raise WorkbenchError(
                f"{len(states)} states, {len(prompt_states)} prompt states, {len(labels)} labels "
                f"and {len(problem_ids)} problem ids: give one of each per sampled chain"
            )
        ids, place = problem_index(problem_ids)
        y = labels.to(torch.bool)
        x = states.float()

        def sums(mask: Tensor, values: Tensor) -> Tensor:
            out = torch.zeros((len(ids), *values.shape[1:]), dtype=torch.float32)
            return out.index_add_(0, place[mask], values[mask])

        ones = torch.ones(len(y))
        n_all = sums(torch.ones_like(y), ones)
        prompt = sums(torch.ones_like(y), prompt_states.float()) / n_all[:, None, None]
        return cls(ids, sums(y, x), sums(~y, x), sums(y, ones), sums(~y, ones), prompt)

    @property
    def pass_rate(self) -> Float[Tensor, " problem"]:
        return self.n_correct / (self.n_correct + self.n_incorrect)

    @property
    def mixed(self) -> Bool[Tensor, " problem"]:
        """Problems with both a correct and an incorrect chain."""
        return (self.n_correct > 0) & (self.n_incorrect > 0)


def _weighted_mean(
    w: Float[Tensor, "b problem"], sums: Tensor, counts: Float[Tensor, " problem"]
) -> Float[Tensor, "b layer d_model"]:
    total = (w @ counts).clamp_min(1e-12)
    return torch.einsum("bp,pld->bld", w, sums) / total[:, None, None]


def directions(
    stats: ProblemStats, weights: Float[Tensor, "b problem"] | None = None
) -> Float[Tensor, "b kind layer d_model"]:
    """The pooled, within-problem and difficulty directions (`KINDS`' order) under each row of
    problem weights (None: every problem once). A row whose problems give no mixed problem, or
    whose pass rates do not vary, has zero vectors for that kind."""
    w = torch.ones(1, len(stats.problem_ids)) if weights is None else weights.float()
    pooled = _weighted_mean(w, stats.correct_sum, stats.n_correct) - _weighted_mean(
        w, stats.incorrect_sum, stats.n_incorrect
    )
    m = stats.mixed.float()
    gap = stats.correct_sum / stats.n_correct.clamp_min(1)[:, None, None]
    gap = gap - stats.incorrect_sum / stats.n_incorrect.clamp_min(1)[:, None, None]
    within = _weighted_mean(w, gap * m[:, None, None], m)
    r = stats.pass_rate
    r_bar = (w @ r) / w.sum(1).clamp_min(1e-12)
    dr = r[None, :] - r_bar[:, None]  # (b, problem)
    x_bar = _weighted_mean(w, stats.prompt, torch.ones_like(r))
    cov = torch.einsum("bp,pld->bld", w * dr, stats.prompt)  # sum w dr x; sum w dr x_bar = 0
    cov = cov - (w * dr).sum(1)[:, None, None] * x_bar
    var = (w * dr * dr).sum(1).clamp_min(1e-12)
    difficulty = cov / var[:, None, None]
    return torch.stack([pooled, within, difficulty], dim=1)


def cosines(
    a: Float[Tensor, "... d_model"], b: Float[Tensor, "... d_model"]
) -> Float[Tensor, "..."]:
    """Cosine along the last axis (0 where either vector is zero)."""
    num = (a * b).sum(-1)
    return num / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)
