"""The rows being decoded together, for continuous batching: when a row finishes, a waiting prompt
takes its place.

A `RunningBatch` holds every row's tokens so far, left-padded to one width, the attention mask
(0 on padding), the column where each row's generated tokens begin, and the KV cache of the same
width (None when decoding without a cache). Prompts prefilled on their own join the batch by left
padding whichever side is narrower (ids, mask and cache alike); finished rows leave it, and columns
that have become padding in every row are trimmed away. Positions need no bookkeeping of their own:
the bridge derives each row's position ids from its mask (`cumsum - 1`), so padding shifts nothing.
Pure tensor bookkeeping: the forward passes are `workbench.engine.generation`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from workbench.engine.kv_cache import join_caches, pad_cache_left, trim_cache_left

__all__ = ["RunningBatch", "left_pad", "prefill_groups"]


def left_pad(
    prompts: list[list[int]] | list[tuple[int, ...]], pad_id: int, device: torch.device
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """Token-id lists as one left-padded id tensor and its attention mask."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p) :] = 1
    return ids.to(device), mask.to(device)


def prefill_groups(lengths: list[int], pass_cost: int) -> list[list[int]]:
    """Split prompts of `lengths` (indices into it) into groups prefilled one pass each, so that
    the positions computed (each group's rows times its longest prompt: padding included) plus
    `pass_cost` positions per pass are fewest. Groups hold prompts of neighbouring lengths,
    longest first; found exactly by dynamic programming over the prompts sorted by length."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cheapest split of the first j prompts
    start = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            cost = best[i] + pass_cost + (j - i) * lengths[order[i]]
            if cost < best[j]:
                best[j], start[j] = cost, i
    groups, j = [], n
    while j:
        groups.append(order[start[j] : j])
        j = start[j]
    return groups[::-1]


@dataclass
class RunningBatch:
    """Rows decoded together (see the module docstring)."""

    seqs: list[int]
    """For each row, the index of its sequence in the `decode` call."""
    ids: Int[Tensor, "batch width"]
    """Every token fed so far, prompt and generated, left-padded."""
    mask: Int[Tensor, "batch width"]
    """1 on real tokens, 0 on padding."""
    gen_start: Int[Tensor, " batch"]
    """Column of each row's first generated token (= its padded prompt's width)."""
    pending: Int[Tensor, " batch"]
    """Each row's newest token: chosen, not yet fed."""
    cache: Any = None
    """The KV cache over `ids` (same width), or None when decoding without one."""

    @property
    def width(self) -> int:
        return self.ids.shape[1]

    def __len__(self) -> int:
        return len(self.seqs)

    def feed_pending(self) -> None:
        """Append the pending tokens as a new column (the next forward pass consumes them)."""
        self.ids = torch.cat([self.ids, self.pending[:, None]], dim=1)
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self), 1))], dim=1)

    def keep(self, rows: list[int]) -> None:
        """Keep only `rows` (batch positions), then trim columns that are padding in all of them."""
        if len(rows) < len(self):
            index = torch.tensor(rows, dtype=torch.long, device=self.ids.device)
            self.seqs = [self.seqs[r] for r in rows]
            self.ids, self.mask = self.ids[index], self.mask[index]
            self.gen_start, self.pending = self.gen_start[index], self.pending[index]
            if self.cache is not None:
                self.cache.batch_select_indices(index)
        real = self.mask.any(dim=0)
        n = int(real.long().argmax()) if bool(real.any()) else 0
        if n:
            self.ids, self.mask = self.ids[:, n:], self.mask[:, n:]
            self.gen_start = self.gen_start - n
            if self.cache is not None:
                trim_cache_left(self.cache, n)

    def _pad_left(self, n: int, pad_id: int) -> None:
        if n <= 0:
            return
        self.ids = torch.cat([self.ids.new_full((len(self), n), pad_id), self.ids], dim=1)
        self.mask = torch.cat([self.mask.new_zeros((len(self), n)), self.mask], dim=1)
        self.gen_start = self.gen_start + n
        if self.cache is not None:
            pad_cache_left(self.cache, n)

    def join(self, other: RunningBatch, pad_id: int) -> None:
        """Append the rows of `other` (in place), left-padding the narrower of the two."""
        width = max(self.width, other.width)
        self._pad_left(width - self.width, pad_id)
        other._pad_left(width - other.width, pad_id)
        self.seqs = self.seqs + other.seqs
        self.ids = torch.cat([self.ids, other.ids])
        self.mask = torch.cat([self.mask, other.mask])
        self.gen_start = torch.cat([self.gen_start, other.gen_start])
        self.pending = torch.cat([self.pending, other.pending])
        if self.cache is not None:
            join_caches(self.cache, other.cache)
