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
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Int
from torch import Tensor

from workbench.core.batching import RunningBatch, left_pad, prefill_groups
from workbench.core.config import check_finite
from workbench.core.decode_step import (
    DecodeStep,
    current_step,
    publish_step,
    suppress_interventions,
)
from workbench.core.hooks import resid_hook, stop_after
from workbench.core.kv_cache import cache_kwargs, cached_length, new_cache, truncate_cache
from workbench.core.lean_passes import lean_passes
from workbench.core.transient import rerun_unsteered
from workbench.errors import WorkbenchError

__all__ = [
    "Completion",
    "DecodeStep",
    "GenerationConfig",
    "current_step",
    "decode",
    "eos_ids",
    "finish_reason",
    "left_pad",
    "next_tokens",
    "publish_step",
]

FinishReason = Literal["eos", "stop", "length"]


@dataclass(frozen=True, kw_only=True)
class GenerationConfig:
    """How to decode."""

    max_new_tokens: int = 384
    """Hard cap on generated tokens per sequence."""
    batch_size: int = 64
    """Most sequences decoded together (continuous batching: a finished row's place goes to a
    waiting prompt). On the 2-core CPU a step of the embedded model costs more with more rows but
    less per row, up to 64 at least (`benchmarks/README.md`, `benchmarks/step_cost.py`), and the
    first 64 GSM8K problems decode faster at 64 than at 32, by both the workbench and `generate`
    (`benchmarks/workload_throughput.py`). Greedy output does not depend on it (tested), so a run
    may resume with another."""
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
    static_step: Literal["auto", "on", "off"] = "off"
    """Decode in static batches with a static KV cache, the step replayed from a CUDA graph on
    CUDA (`workbench.core.static_decode`): 'auto' on CUDA devices, 'on' on any (the CPU runs the
    step eagerly), 'off' never (continuous batching). Jobs it cannot take (states recorded,
    steering other than persistent additive at resid_pre / resid_post, an intervention around
    the call) decode with continuous batching either way. Greedy output is the same (tested).
    'off' by default until a GPU measures the graphed step faster than continuous batching
    (`scripts/gpu_check.sh`); on the CPU it is not (`benchmarks/README.md`)."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.max_new_tokens < 1:
            raise WorkbenchError(f"max_new_tokens must be >= 1, not {self.max_new_tokens}")
        if self.batch_size < 1:
            raise WorkbenchError(f"batch size must be >= 1, not {self.batch_size}")
        if self.static_step not in ("auto", "on", "off"):
            raise WorkbenchError(f"static_step must be auto, on or off, not {self.static_step!r}")
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
    """Its share of the wall time of the forward passes it took part in (each pass's time divided
    by its rows), sampling included."""
    interventions: int
    """Interventions counted for this sequence (all layers and positions) by active hooks."""
    steered_steps: tuple[int, ...]
    """Generated-token indices at which an intervention fired (0 = first generated token)."""


_TOP_K_FIRST = 256  # candidates ranked before falling back to a full sort (see next_tokens)
_REFILL_DIVISOR = 8  # waiting prompts join once batch_size / 8 rows are free (fewer prefills)
# One prefill pass more costs about what 32 padded prompt positions do: on the 2-core CPU a pass
# over one position costs ~0.15 s (the weights are read once per pass) and each further position
# ~5.6 ms (the first 64 GSM8K prompts, 64 x 172 padded positions, prefill in 61 s).
_PREFILL_PASS_COST = 32


def next_tokens(
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


def finish_reason(
    out: list[int],
    token_id: int,
    eos: set[int],
    stop: Callable[[str], bool] | None,
    tokenizer: Any,
    max_new_tokens: int,
) -> FinishReason | None:
    """Append `token_id` to the sequence's tokens `out` unless it is an EOS token; why the
    sequence ends with it (None: it goes on). `stop` is read on the whole text only where it (or
    its `tail_check`) holds on the text of the last 48 tokens."""
    if token_id in eos:
        return "eos"
    out.append(token_id)
    if (
        stop is not None
        and getattr(stop, "tail_check", stop)(tokenizer.decode(out[-48:]))
        and stop(tokenizer.decode(out))
    ):
        return "stop"
    if len(out) >= max_new_tokens:
        return "length"
    return None


def _forward(bridge: Any, ids: Tensor, mask: Tensor, cache: Any, step: DecodeStep) -> Tensor:
    """Logits of the last position; `cache` (None: no cache) is read and extended in place."""
    kwargs = {"attention_mask": mask, "logits_to_keep": 1}  # only the last position is needed
    if cache is not None:
        kwargs.update(cache_kwargs(bridge, cache))
    with publish_step(step):
        logits = bridge(ids, return_type="logits", **kwargs)
    if cache is not None and step.transient_from is not None and not step.whole_refill:
        with suppress_interventions(), publish_step(step):
            rerun_unsteered(bridge, cache, step)  # only the blocks and rows the nudge reached
    elif cache is not None and step.transient_from is not None:
        # the nudged states stay out of the cache: recompute them without interventions
        keep = mask.shape[1] - ids.shape[1] + step.transient_from
        truncate_cache(cache, keep)
        last = resid_hook(bridge.cfg.n_layers - 1)  # the cache is whole once the last block ran
        with suppress_interventions(), publish_step(step), stop_after(bridge, last):
            bridge(ids[:, step.transient_from :], return_type="logits", **kwargs)
    if cache is not None and cached_length(cache) != mask.shape[1]:
        raise WorkbenchError(
            f"the KV cache holds {cached_length(cache)} positions after a forward over "
            f"{mask.shape[1]}: this transformers / transformer-lens pair does not fill the cache "
            "(bash scripts/setup.sh returns to the tested versions in requirements.lock)"
        )
    return logits


@dataclass
class _Tally:
    """What is known of each sequence while it decodes (indexed by its place in the call)."""

    out: list[list[int]]
    steered: list[list[int]]
    interventions: list[int]
    seconds: list[float]

    @classmethod
    def of(cls, n: int) -> _Tally:
        return cls([[] for _ in range(n)], [[] for _ in range(n)], [0] * n, [0.0] * n)

    def charge(self, seqs: list[int], seconds: float, counts: Tensor) -> None:
        """Share a pass's wall time among its rows; add their intervention counts."""
        for seq, n in zip(seqs, counts.tolist(), strict=True):
            self.seconds[seq] += seconds / len(seqs)
            self.interventions[seq] += int(n)


class _Decoder:
    """Continuous batching over one `decode` call (see `decode`)."""

    def __init__(
        self,
        bridge: Any,
        prompts: Sequence[Sequence[int]],
        indices: list[int],
        cfg: GenerationConfig,
        stop: Callable[[str], bool] | None,
        on_complete: Callable[[int, Completion], None] | None,
        seeds: list[int],
        feed_final: bool,
    ) -> None:
        self.bridge, self.prompts, self.indices, self.cfg = bridge, prompts, indices, cfg
        self.stop, self.on_complete, self.feed_final = stop, on_complete, feed_final
        self.closing: set[int] = set()  # finished, kept one more pass to feed their last token
        tok = bridge.tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.eos_ids = eos_ids(bridge)
        self.device = torch.device(bridge.cfg.device)
        self.tally = _Tally.of(len(prompts))
        self.done: dict[int, Completion] = {}
        self.generators = {
            int(i): torch.Generator().manual_seed(cfg.seed + int(seed))
            for i, seed in zip(indices, seeds, strict=True)
        }

    def run(self) -> list[Completion]:
        # longest prompts first: the prompts prefilled together have similar lengths
        waiting = sorted(range(len(self.prompts)), key=lambda i: (-len(self.prompts[i]), i))
        refill = max(1, self.cfg.batch_size // _REFILL_DIVISOR)
        batch: RunningBatch | None = None
        while waiting or batch is not None:
            free = self.cfg.batch_size - (len(batch) if batch is not None else 0)
            if waiting and (batch is None or free >= min(refill, len(waiting))):
                admitted, waiting = waiting[:free], waiting[free:]
                new = self._admit(admitted)
                if batch is None:
                    batch = new
                elif new is not None:
                    batch.join(new, self.pad_id)
            else:
                self._step(batch)
            if batch is not None and len(batch) == 0:
                batch = None
        return [self.done[i] for i in range(len(self.prompts))]

    def _admit(self, seqs: list[int]) -> RunningBatch | None:
        """Prefill `seqs` in groups of similar prompt lengths, so that little of the prefill is
        padding (`prefill_groups`); the rows that go on, joined into one batch."""
        lengths = [len(self.prompts[i]) for i in seqs]
        joined: RunningBatch | None = None
        for group in prefill_groups(lengths, _PREFILL_PASS_COST):
            new = self._prefill([seqs[k] for k in group])
            if new is None:  # every row of the group ended at its first token
                continue
            if joined is None:
                joined = new
            else:
                joined.join(new, self.pad_id)
        return joined

    def _prefill(self, seqs: list[int]) -> RunningBatch | None:
        """Prompts `seqs` in one forward pass; their first tokens chosen; the rows that go on."""
        ids, mask = left_pad([self.prompts[i] for i in seqs], self.pad_id, self.device)
        width = ids.shape[1]
        batch = RunningBatch(
            seqs=list(seqs),
            ids=ids,
            mask=mask,
            gen_start=torch.full((len(seqs),), width, device=self.device),
            pending=torch.zeros(len(seqs), dtype=torch.long, device=self.device),
            cache=new_cache(self.bridge) if self.cfg.use_kv_cache else None,
        )
        step = DecodeStep.of_pass(self._rows(batch), batch.gen_start, 0, 0, self.device)
        step.generated = [self.tally.out[i] for i in batch.seqs]
        self._advance(batch, ids, step, first=True)
        return batch if len(batch) else None

    def _step(self, batch: RunningBatch) -> None:
        """Feed every row its pending token; choose the next; drop the rows that finished."""
        batch.feed_pending()
        offset = batch.width - 1 if batch.cache is not None else 0
        step_input = batch.ids[:, -1:] if batch.cache is not None else batch.ids
        step = DecodeStep.of_pass(
            self._rows(batch), batch.gen_start, offset, batch.width - 1, self.device
        )
        step.generated = [self.tally.out[i] for i in batch.seqs]
        self._advance(batch, step_input, step, first=False)

    def _rows(self, batch: RunningBatch) -> Tensor:
        return torch.tensor([self.indices[i] for i in batch.seqs])

    def _advance(
        self, batch: RunningBatch, step_input: Tensor, step: DecodeStep, first: bool
    ) -> None:
        """One forward pass: choose each row's next token, charge the pass, drop finished rows."""
        start = time.perf_counter()
        logits = _forward(self.bridge, step_input, batch.mask, batch.cache, step)
        gens = [self.generators[self.indices[i]] for i in batch.seqs] if self.cfg.do_sample else []
        nxt = next_tokens(logits[:, -1], torch.arange(len(batch)), self.cfg, gens)
        self.tally.charge(batch.seqs, time.perf_counter() - start, step.counts.cpu())
        if not first:  # the pass that consumed a generated token steered it
            for j in step.fired_last.nonzero().flatten().tolist():
                seq = batch.seqs[j]
                self.tally.steered[seq].append(len(self.tally.out[seq]) - 1)
        keep = []
        for j, t in enumerate(nxt.tolist()):
            seq = batch.seqs[j]
            if seq in self.closing:  # its last token was fed in this pass: its states are whole
                self.closing.discard(seq)
                self._report(seq)
            elif not self._finished(seq, t):
                keep.append(j)
            elif self.feed_final and self.done[seq].finish != "eos":
                self.closing.add(seq)  # the token that ended it is fed in one more pass
                keep.append(j)
            else:
                self._report(seq)
        batch.pending = nxt
        batch.keep(keep)

    def _report(self, seq: int) -> None:
        if self.on_complete is not None:
            self.on_complete(seq, self.done[seq])

    def _finished(self, seq: int, token_id: int) -> bool:
        """Record `token_id` for `seq`; True (and the completion made) if the sequence ends."""
        out = self.tally.out[seq]
        tok = self.bridge.tokenizer
        finish = finish_reason(out, token_id, self.eos_ids, self.stop, tok, self.cfg.max_new_tokens)
        if finish is None:
            return False
        self.done[seq] = Completion(
            tokens=tuple(out),
            text=self.bridge.tokenizer.decode(out, skip_special_tokens=True),
            prompt_tokens=len(self.prompts[seq]),
            finish=finish,
            seconds=self.tally.seconds[seq],
            interventions=self.tally.interventions[seq],
            steered_steps=tuple(self.tally.steered[seq]),
        )
        return True


def eos_ids(bridge: Any) -> set[int]:
    """Token ids that end a sequence (the tokenizer's and the generation config's EOS)."""
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
    on_complete: Callable[[int, Completion], None] | None = None,
    seeds: Sequence[int] | None = None,
    feed_final: bool = False,
) -> list[Completion]:
    """Decode every prompt (token-id lists), at most `cfg.batch_size` at a time, with continuous
    batching: the longest prompts start first, and whenever rows finish, waiting prompts are
    prefilled and join the running batch (`workbench.core.batching`). Returns the completions in
    the order of `prompts`.

    `stop(text)` ends a sequence once it returns True on its generated text; it is read on the
    whole text only where it (or its attribute `tail_check`, for a rule that a tail cannot
    decide) holds on the text of the last 48 tokens. `intervention` is
    entered once around the whole loop. `indices` number the sequences (per-sequence sampling
    seeds and `DecodeStep.rows`; default 0..n-1) so that a caller decoding in chunks keeps them;
    `seeds` (default: the indices) give the sampling seeds instead, e.g. the problem's number
    for each of several arms decoding the same problems in one call.
    `on_complete(i, completion)` is called as soon as sequence `i` (its place in `prompts`)
    finishes, so that a caller can write results as they come. With `feed_final`, a sequence that
    ends on a token of its own (answer complete, or the cap; not EOS) stays for one more pass
    that feeds that token and whose prediction is discarded, so that hooks see the state at every
    generated token's position, as a teacher-forced pass over the generation would
    (`workbench.core.recording`); `on_complete` is then called after that pass. Every module in
    which no hook point is hooked runs as the Hugging Face module it wraps, attention on its own
    kernel (`workbench.core.lean_passes`).
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise WorkbenchError("decode needs at least one prompt, and no prompt may be empty")
    indices = list(range(len(prompts))) if indices is None else list(indices)
    seeds = indices if seeds is None else list(seeds)
    if len(set(indices)) != len(prompts) or len(seeds) != len(prompts):
        raise WorkbenchError(
            f"{len(indices)} indices ({len(set(indices))} distinct) and {len(seeds)} seeds for "
            f"{len(prompts)} prompts: give one distinct index and one seed per prompt"
        )
    with (
        torch.inference_mode(),
        intervention or contextlib.nullcontext(),
        lean_passes(bridge),
    ):
        decoder = _Decoder(bridge, prompts, indices, cfg, stop, on_complete, seeds, feed_final)
        return decoder.run()
