"""Batched decoding on a `TransformerBridge`: left padding, KV cache, greedy or sampled.

`decode` runs its own loop over the bridge's forward, with a KV cache it owns
(`workbench.core.kv_cache`), instead of `bridge.generate`, for three reasons: finished rows are
dropped from the batch (and from the KV cache) so they stop costing compute; a sequence can stop as
soon as its answer is complete; and each step publishes a `DecodeStep` that interventions (steering
hooks) read to know which positions are prompt and which are generated, and which problem each
batch row belongs to.

Interventions are plain context managers (e.g. `workbench.core.steering.steer`): `decode` enters the
one it is given around the whole loop, so hooks are added once and always removed.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from workbench.core.config import check_finite
from workbench.core.kv_cache import cache_kwargs, cached_length, new_cache
from workbench.errors import WorkbenchError

__all__ = [
    "Completion",
    "DecodeStep",
    "GenerationConfig",
    "current_step",
    "decode",
    "left_pad",
    "publish_step",
]

FinishReason = Literal["eos", "stop", "length"]


@dataclass(frozen=True, kw_only=True)
class GenerationConfig:
    """How to decode."""

    max_new_tokens: int = 384
    """Hard cap on generated tokens per sequence."""
    batch_size: int = 8
    """Sequences decoded together (left-padded)."""
    do_sample: bool = False
    """False: greedy. True: temperature / top-p sampling."""
    temperature: float = 0.7
    """Sampling temperature (used only when do_sample)."""
    top_p: float = 0.95
    """Nucleus mass kept when sampling (used only when do_sample)."""
    seed: int = 0
    """Sampling seed. Each sequence has its own generator (seed + its index), so a sequence's
    sample does not depend on which batch it lands in."""
    use_kv_cache: bool = True
    """Reuse keys/values of earlier positions (False recomputes everything: tests only)."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.max_new_tokens < 1:
            raise WorkbenchError(f"max_new_tokens must be >= 1, not {self.max_new_tokens}")
        if self.batch_size < 1:
            raise WorkbenchError(f"batch size must be >= 1, not {self.batch_size}")
        if self.do_sample and not (self.temperature > 0 and 0 < self.top_p <= 1):
            raise WorkbenchError("sampling needs temperature > 0 and 0 < top_p <= 1")


@dataclass(frozen=True, kw_only=True)
class Completion:
    """One decoded sequence."""

    tokens: tuple[int, ...]
    """Generated token ids, without padding and without the EOS token."""
    text: str
    """The decoded generated text."""
    prompt_tokens: int
    """Number of prompt tokens (no padding)."""
    finish: FinishReason
    """'eos' (end-of-sequence token), 'stop' (stop predicate: answer complete), 'length' (cap)."""
    seconds: float
    """Wall time of its batch divided by the batch's size."""
    interventions: int
    """Interventions counted for this sequence (all layers and positions) by active hooks."""
    steered_steps: tuple[int, ...]
    """Generated-token indices at which an intervention fired (0 = first generated token)."""


@dataclass
class DecodeStep:
    """What a hook needs to know about the forward pass in flight (see `current_step`)."""

    rows: Int[Tensor, " batch"]
    """For each batch row, the index of its sequence in the `decode` call."""
    n_prompt: int
    """Padded prompt length: absolute positions below it are prompt, from it on generated."""
    offset: int
    """Absolute position of the first position of this forward pass (KV-cache length)."""
    new_from: int
    """Absolute position from which positions are seen for the first time (count these)."""
    counts: Int[Tensor, " batch"]
    """Interventions per row in this forward pass; hooks add to it."""
    fired_last: Bool[Tensor, " batch"]
    """Whether an intervention fired at the newest position of each row; hooks set it."""

    @classmethod
    def whole_sequence(cls, n_rows: int, n_prompt: int, device: torch.device) -> DecodeStep:
        """A single pass over prompts (left-padded to `n_prompt`) and their generated tokens,
        every position new: what a teacher-forced replay publishes so that hooks see the same
        prompt/generated split as while decoding."""
        return cls(
            rows=torch.arange(n_rows),
            n_prompt=n_prompt,
            offset=0,
            new_from=0,
            counts=torch.zeros(n_rows, dtype=torch.long, device=device),
            fired_last=torch.zeros(n_rows, dtype=torch.bool, device=device),
        )

    def generated_mask(self, seq_len: int, device: torch.device) -> Bool[Tensor, " pos"]:
        """Which of the `seq_len` positions of this pass are generated tokens."""
        return torch.arange(self.offset, self.offset + seq_len, device=device) >= self.n_prompt

    def new_mask(self, seq_len: int, device: torch.device) -> Bool[Tensor, " pos"]:
        """Which of the `seq_len` positions of this pass are new (not seen by an earlier pass)."""
        return torch.arange(self.offset, self.offset + seq_len, device=device) >= self.new_from


_STEP: contextvars.ContextVar[DecodeStep | None] = contextvars.ContextVar("step", default=None)


def current_step() -> DecodeStep | None:
    """The `DecodeStep` of the forward pass in flight, or None outside `decode`."""
    return _STEP.get()


def left_pad(
    prompts: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p) :] = 1
    return ids.to(device), mask.to(device)


_TOP_K_FIRST = 256  # candidates ranked before falling back to a full sort (see _next_tokens)


def _next_tokens(
    logits: Tensor, rows: Tensor, cfg: GenerationConfig, generators: list[torch.Generator]
) -> Int[Tensor, " batch"]:
    logits = logits.float()
    if not cfg.do_sample:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / cfg.temperature, dim=-1)
    # Nucleus sampling needs the tokens in order of probability only until their mass reaches
    # top_p: the top few hundred almost always hold it, and a partial top-k is far cheaper than
    # sorting the whole vocabulary (benchmarks/sampling_step.py: 16x cheaper at batch 8 on a CPU).
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


@contextlib.contextmanager
def publish_step(step: DecodeStep) -> Iterator[DecodeStep]:
    """Make `step` the `current_step()` for the forward passes inside the context."""
    token = _STEP.set(step)
    try:
        yield step
    finally:
        _STEP.reset(token)


def _forward(bridge: Any, ids: Tensor, mask: Tensor, cache: Any, step: DecodeStep) -> Tensor:
    """Logits of the last position; `cache` (None: no cache) is read and extended in place."""
    kwargs = {"attention_mask": mask, "logits_to_keep": 1}  # only the last position is needed
    if cache is not None:
        kwargs.update(cache_kwargs(bridge, cache))
    with publish_step(step):
        logits = bridge(ids, return_type="logits", **kwargs)
    if cache is not None and cached_length(cache) != mask.shape[1]:
        raise WorkbenchError(
            f"the KV cache holds {cached_length(cache)} positions after a forward over "
            f"{mask.shape[1]}: this transformers / transformer-lens pair does not fill the cache "
            "(bash scripts/setup.sh returns to the tested versions in requirements.lock)"
        )
    return logits


def _decode_batch(
    bridge: Any,
    prompts: Sequence[Sequence[int]],
    indices: Sequence[int],
    cfg: GenerationConfig,
    stop: Callable[[str], bool] | None,
) -> list[Completion]:
    tok = bridge.tokenizer
    device = bridge.cfg.device
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    eos_ids = _eos_ids(bridge)
    ids, mask = left_pad(prompts, pad_id, torch.device(device))
    n = len(prompts)
    n_prompt = ids.shape[1]
    generators = {int(i): torch.Generator().manual_seed(cfg.seed + int(i)) for i in indices}
    rows = torch.arange(n, device=ids.device)  # batch row -> position in this batch
    out: list[list[int]] = [[] for _ in range(n)]
    finish: list[FinishReason] = ["length"] * n
    counts = torch.zeros(n, dtype=torch.long)
    steered: list[list[int]] = [[] for _ in range(n)]
    start = time.perf_counter()
    cache = new_cache(bridge) if cfg.use_kv_cache else None
    full_ids, offset, new_from = ids, 0, 0
    step_input = ids
    for t in range(cfg.max_new_tokens):
        step = DecodeStep(
            rows=torch.tensor([indices[int(r)] for r in rows]),
            n_prompt=n_prompt,
            offset=offset,
            new_from=new_from,
            counts=torch.zeros(len(rows), dtype=torch.long, device=ids.device),
            fired_last=torch.zeros(len(rows), dtype=torch.bool, device=ids.device),
        )
        logits = _forward(bridge, step_input, mask, cache, step)
        counts[rows.cpu()] += step.counts.cpu()
        if t > 0:  # the pass that consumed generated token t-1 steered it
            for r in rows[step.fired_last].tolist():
                steered[r].append(t - 1)
        gen_gens = [generators[indices[int(r)]] for r in rows] if cfg.do_sample else []
        nxt = _next_tokens(logits[:, -1], torch.arange(len(rows)), cfg, gen_gens)
        keep = []
        for j, (r, token_id) in enumerate(zip(rows.tolist(), nxt.tolist(), strict=True)):
            if token_id in eos_ids:
                finish[r] = "eos"
                continue
            out[r].append(token_id)
            if stop is not None and stop(tok.decode(out[r][-48:])) and stop(tok.decode(out[r])):
                finish[r] = "stop"
                continue
            keep.append(j)
        if not keep or t == cfg.max_new_tokens - 1:
            break
        keep_t = torch.tensor(keep, device=ids.device)
        nxt = nxt[keep_t]
        rows, mask = rows[keep_t], mask[keep_t]
        mask = torch.cat([mask, mask.new_ones((len(keep), 1))], dim=1)
        full_ids = torch.cat([full_ids[keep_t], nxt[:, None]], dim=1)
        if cfg.use_kv_cache:
            if len(keep) < logits.shape[0]:
                cache.batch_select_indices(keep_t)
            offset = new_from = full_ids.shape[1] - 1
            step_input = nxt[:, None]
        else:
            new_from = full_ids.shape[1] - 1
            step_input = full_ids
    seconds = (time.perf_counter() - start) / n
    return [
        Completion(
            tokens=tuple(out[i]),
            text=tok.decode(out[i], skip_special_tokens=True),
            prompt_tokens=len(prompts[i]),
            finish=finish[i],
            seconds=seconds,
            interventions=int(counts[i]),
            steered_steps=tuple(steered[i]),
        )
        for i in range(n)
    ]


def _eos_ids(bridge: Any) -> set[int]:
    ids = set()
    tok_eos = bridge.tokenizer.eos_token_id
    if tok_eos is not None:
        ids.add(int(tok_eos))
    gen_cfg = getattr(bridge.original_model, "generation_config", None)
    cfg_eos = getattr(gen_cfg, "eos_token_id", None)
    if isinstance(cfg_eos, int):
        ids.add(cfg_eos)
    elif cfg_eos:
        ids.update(int(e) for e in cfg_eos)
    return ids


def decode(
    bridge: Any,
    prompts: Sequence[Sequence[int]],
    cfg: GenerationConfig = GenerationConfig(),
    *,
    stop: Callable[[str], bool] | None = None,
    intervention: ContextManager[Any] | None = None,
    indices: Sequence[int] | None = None,
) -> list[Completion]:
    """Decode every prompt (token-id lists) in batches of `cfg.batch_size`.

    `stop(text)` ends a sequence once it returns True on its generated text. `intervention` is
    entered once around the whole loop. `indices` number the sequences (per-sequence sampling
    seeds and `DecodeStep.rows`; default 0..n-1) so that a caller decoding in chunks keeps them.
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise WorkbenchError("decode needs at least one prompt, and no prompt may be empty")
    indices = list(range(len(prompts))) if indices is None else list(indices)
    if len(indices) != len(prompts):
        raise WorkbenchError(f"{len(indices)} indices for {len(prompts)} prompts")
    results: list[Completion] = []
    with torch.inference_mode(), intervention or contextlib.nullcontext():
        for lo in range(0, len(prompts), cfg.batch_size):
            chunk = prompts[lo : lo + cfg.batch_size]
            idx = indices[lo : lo + cfg.batch_size]
            results.extend(_decode_batch(bridge, chunk, idx, cfg, stop))
    return results
