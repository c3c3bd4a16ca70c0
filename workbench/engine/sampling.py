"""The next token of each row: greedy, or temperature and nucleus (top-p) sampling."""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from workbench.engine.config import GenerationConfig

__all__ = ["next_tokens"]

_TOP_K_FIRST = 256
"""Candidates ranked before falling back to a full sort: nucleus sampling needs the tokens in
order of probability only until their mass reaches top_p, the top few hundred almost always hold
it, and a partial top-k is far cheaper than sorting the vocabulary
(`benchmarks/sampling_step.py`)."""


def next_tokens(
    logits: Float[Tensor, "batch vocab"],
    rows: Int[Tensor, " batch"],
    cfg: GenerationConfig,
    generators: list[torch.Generator],
) -> Int[Tensor, " batch"]:
    """Each row's next token from its last logits: the argmax, or with `cfg.do_sample` a draw
    from the tempered nucleus with the generator of the row (`generators[rows[i]]`)."""
    logits = logits.float()
    if not cfg.do_sample:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / cfg.temperature, dim=-1)
    sorted_probs, order = probs.topk(min(_TOP_K_FIRST, probs.shape[-1]), dim=-1)
    if bool((sorted_probs.sum(dim=-1) < cfg.top_p).any()):
        sorted_probs, order = probs.sort(dim=-1, descending=True)
    keep = sorted_probs.cumsum(dim=-1) - sorted_probs < cfg.top_p
    sorted_probs = sorted_probs * keep
    picks = [
        torch.multinomial(sorted_probs[i].cpu(), 1, generator=generators[int(r)])
        for i, r in enumerate(rows)
    ]
    return order.gather(-1, torch.stack(picks).to(order.device)).squeeze(-1)
