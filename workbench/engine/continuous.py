"""Continuous batching on a `TransformerBridge`: left padding, a KV cache it owns, rows that come
and go.

The decoder runs its own loop over the bridge's forward instead of ``bridge.generate``: finished
rows are dropped from the batch (and from the KV cache) so they stop costing compute, and waiting
prompts are prefilled and join it (`workbench.engine.batching`); a sequence stops as soon as its
answer is complete; and each pass publishes its `PassInfo` and `PassRecord`
(`workbench.engine.passes`), so that hooks know which positions are prompt and which generated,
and which sequence each batch row is. After a pass in which a transient intervention fired, the
KV cache is repaired (`workbench.engine.transient`). Call it through
`workbench.engine.generation.decode`, which enters the hooks and chooses the decoder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from workbench.engine.batching import RunningBatch, left_pad, prefill_groups
from workbench.engine.config import GenerationConfig
from workbench.engine.kv_cache import cache_kwargs, cached_length, new_cache
from workbench.engine.passes import PassInfo, PassRecord, TransientMarks, publish_pass
from workbench.engine.sampling import next_tokens
from workbench.engine.sequences import Completion, SequenceLog, StopRule, longest_first, pad_id
from workbench.engine.transient import repair_cache
from workbench.errors import WorkbenchError

__all__ = ["decode_continuous", "forward_pass"]

_REFILL_DIVISOR = 8
"""Waiting prompts join once batch_size / 8 rows are free (fewer prefills)."""
_PREFILL_PASS_COST = 32
"""What one prefill pass more costs, in padded prompt positions (`benchmarks/README.md`: a pass
reads the weights once, a position costs a small fraction of that)."""


def forward_pass(
    bridge: Any, ids: Tensor, mask: Tensor, cache: Any, info: PassInfo, record: PassRecord
) -> Tensor:
    """Logits of the last position of a pass over `ids` (`mask`: the whole attention mask);
    `cache` (None: no cache) is read, extended in place and repaired after a transient
    intervention. `info` and `record` are published for the hooks."""
    kwargs = {"attention_mask": mask, "logits_to_keep": 1}  # only the last position is needed
    if cache is not None:
        kwargs.update(cache_kwargs(bridge, cache))
    with publish_pass(info, record):
        logits = bridge(ids, return_type="logits", **kwargs)
    if cache is None:
        return logits
    repair_cache(bridge, cache, ids, kwargs, info, record)
    if cached_length(cache) != mask.shape[1]:
        raise WorkbenchError(
            f"the KV cache holds {cached_length(cache)} positions after a forward over "
            f"{mask.shape[1]}: this transformers / transformer-lens pair does not fill the cache "
            "(bash scripts/setup.sh returns to the tested versions in requirements.lock)"
        )
    return logits


class _Continuous:
    """Continuous batching over one call (see `decode_continuous`)."""

    def __init__(
        self,
        bridge: Any,
        prompts: Sequence[Sequence[int]],
        indices: list[int],
        cfg: GenerationConfig,
        log: SequenceLog,
        on_complete: Callable[[int, Completion], None] | None,
        seeds: list[int],
        feed_final: bool,
    ) -> None:
        self.bridge, self.prompts, self.indices, self.cfg = bridge, prompts, indices, cfg
        self.log, self.on_complete, self.feed_final = log, on_complete, feed_final
        self.closing: set[int] = set()  # finished, kept one more pass to feed their last token
        self.pad_id = pad_id(bridge.tokenizer)
        self.device = torch.device(bridge.cfg.device)
        self.generators = {
            int(i): torch.Generator().manual_seed(cfg.seed + int(seed))
            for i, seed in zip(indices, seeds, strict=True)
        }

    def run(self) -> None:
        waiting = longest_first(self.prompts)
        refill = max(1, self.cfg.batch_size // _REFILL_DIVISOR)
        batch: RunningBatch | None = None
        while waiting or batch is not None:
            free = self.cfg.batch_size - (len(batch) if batch is not None else 0)
            if waiting and (batch is None or free >= min(refill, len(waiting))):
                admitted, waiting = waiting[:free], waiting[free:]
                batch = self._joined(batch, self._admit(admitted))
            else:
                self._step(batch)
            if batch is not None and len(batch) == 0:
                batch = None

    def _joined(self, batch: RunningBatch | None, new: RunningBatch | None) -> RunningBatch | None:
        if batch is None or new is None:
            return batch if new is None else new
        batch.join(new, self.pad_id)
        return batch

    def _admit(self, seqs: list[int]) -> RunningBatch | None:
        """Prefill `seqs` in groups of similar prompt lengths, so that little of the prefill is
        padding (`prefill_groups`); the rows that go on, joined into one batch."""
        lengths = [len(self.prompts[i]) for i in seqs]
        joined: RunningBatch | None = None
        for group in prefill_groups(lengths, _PREFILL_PASS_COST):
            joined = self._joined(joined, self._prefill([seqs[k] for k in group]))
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
        self._advance(batch, ids, self._info(batch, 0, 0), first=True)
        return batch if len(batch) else None

    def _step(self, batch: RunningBatch) -> None:
        """Feed every row its pending token; choose the next; drop the rows that finished."""
        batch.feed_pending()
        offset = batch.width - 1 if batch.cache is not None else 0
        step_input = batch.ids[:, -1:] if batch.cache is not None else batch.ids
        self._advance(batch, step_input, self._info(batch, offset, batch.width - 1), first=False)

    def _info(self, batch: RunningBatch, offset: int, new_from: int) -> PassInfo:
        return PassInfo(
            rows=torch.tensor([self.indices[i] for i in batch.seqs]),
            n_prompt=batch.gen_start.to(self.device),
            offset=offset,
            new_from=new_from,
            generated=[self.log.out[i] for i in batch.seqs],
        )

    def _advance(
        self, batch: RunningBatch, step_input: Tensor, info: PassInfo, first: bool
    ) -> None:
        """One forward pass: choose each row's next token, charge the pass, drop finished rows."""
        start = time.perf_counter()
        record = PassRecord.zeros(len(batch), self.device, TransientMarks())
        logits = forward_pass(self.bridge, step_input, batch.mask, batch.cache, info, record)
        gens = [self.generators[self.indices[i]] for i in batch.seqs] if self.cfg.do_sample else []
        nxt = next_tokens(logits[:, -1], torch.arange(len(batch)), self.cfg, gens)
        self.log.charge(batch.seqs, time.perf_counter() - start, record.counts.cpu().tolist())
        if not first:  # the pass that consumed a generated token steered it
            self.log.steered(
                [batch.seqs[j] for j in record.fired_last.nonzero().flatten().tolist()]
            )
        keep = [j for j, t in enumerate(nxt.tolist()) if self._goes_on(batch.seqs[j], t)]
        batch.pending = nxt
        batch.keep(keep)

    def _goes_on(self, seq: int, token: int) -> bool:
        """Take `seq`'s new `token`; whether its row stays in the batch for another pass."""
        if seq in self.closing:  # its last token was fed in this pass: its states are whole
            self.closing.discard(seq)
            self._report(seq)
            return False
        if not self.log.take(seq, token):
            return True
        if self.feed_final and self.log.done[seq].finish != "eos":
            self.closing.add(seq)  # the token that ended it is fed in one more pass
            return True
        self._report(seq)
        return False

    def _report(self, seq: int) -> None:
        if self.on_complete is not None:
            self.on_complete(seq, self.log.done[seq])


def decode_continuous(
    bridge: Any,
    prompts: Sequence[Sequence[int]],
    cfg: GenerationConfig,
    *,
    stop: StopRule | None,
    indices: list[int],
    seeds: list[int],
    on_complete: Callable[[int, Completion], None] | None,
    feed_final: bool,
) -> list[Completion]:
    """Decode every prompt with continuous batching, at most `cfg.batch_size` rows at a time: the
    longest prompts start first, and whenever rows finish, waiting prompts are prefilled and join
    the running batch. Arguments as `workbench.engine.generation.decode` takes them (checked
    there); completions in the order of `prompts`."""
    log = SequenceLog(bridge, prompts, cfg.max_new_tokens, stop)
    _Continuous(bridge, prompts, indices, cfg, log, on_complete, seeds, feed_final).run()
    return [log.done[i] for i in range(len(prompts))]
