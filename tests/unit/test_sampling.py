"""Nucleus sampling: tokens come from the top-p set, whether or not the fast top-k path holds it."""

from __future__ import annotations

import torch

from workbench.engine.config import GenerationConfig
from workbench.engine.sampling import _TOP_K_FIRST, next_tokens


def _draws(logits: torch.Tensor, n: int) -> set[int]:
    cfg = GenerationConfig(do_sample=True, temperature=1.0, top_p=0.9)
    gens = [torch.Generator().manual_seed(i) for i in range(n)]
    rows = torch.arange(n)
    return set(next_tokens(logits.expand(n, -1), rows, cfg, gens).tolist())


def test_peaked_distribution_samples_only_its_nucleus():
    logits = torch.full((1, 5000), -20.0)
    logits[0, [7, 4000, 123]] = torch.tensor([2.0, 1.5, 1.0])  # ~all the mass on three tokens
    assert _draws(logits, 64) == {7, 4000, 123}


def test_nucleus_wider_than_the_top_k_falls_back_to_a_full_sort():
    wide = _TOP_K_FIRST + 200
    logits = torch.full((1, 5000), -30.0)
    members = torch.randperm(5000, generator=torch.Generator().manual_seed(0))[:wide]
    logits[0, members] = 0.0  # `wide` equally likely tokens: the 0.9 nucleus is most of them
    drawn = _draws(logits, 1000)
    assert drawn <= set(members.tolist())
    assert len(drawn) > _TOP_K_FIRST  # more distinct tokens than the fast path could rank
