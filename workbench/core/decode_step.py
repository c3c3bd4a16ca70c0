"""The forward pass in flight, as hooks see it: `DecodeStep` and the context that publishes it.

`workbench.core.generation.decode` publishes a `DecodeStep` around each forward pass
(`publish_step`); a teacher-forced replay publishes one too (`DecodeStep.whole_sequence`).
Interventions read it (`current_step`) to know which positions are prompt and which generated,
which are new, and which problem each batch row belongs to, and write what they did into it;
while `decode` refills the KV cache after a transient intervention they stand aside
(`interventions_suppressed`). Its own module so that both `decode` and the interventions it runs
(steering, recording, the transient repair) read it without importing one another.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

__all__ = [
    "DecodeStep",
    "current_step",
    "interventions_suppressed",
    "publish_step",
    "suppress_interventions",
]


@dataclass
class DecodeStep:
    """What a hook needs to know about the forward pass in flight (see `current_step`)."""

    rows: Int[Tensor, " batch"]
    """For each batch row, the index of its sequence in the `decode` call."""
    n_prompt: Int[Tensor, " batch"]
    """Per row, the padded column where its generated tokens begin: absolute positions below it
    are prompt (or padding), from it on generated."""
    offset: int
    """Absolute position of the first position of this forward pass (KV-cache length)."""
    new_from: int
    """Absolute position from which positions are seen for the first time (count these)."""
    counts: Int[Tensor, " batch"]
    """Interventions per row in this forward pass; hooks add to it."""
    fired_last: Bool[Tensor, " batch"]
    """Whether an intervention fired at the newest position of each row; hooks set it."""
    transient_from: int | None = None
    """The first position of this pass (0 = its first) where a transient intervention fired:
    `decode` then repairs the KV cache (`workbench.core.transient`)."""
    transient_block: int | None = None
    """The first block whose cache a transient intervention of this pass changed (None: one
    fired where no block input is known, and the cache is refilled by a whole pass)."""
    transient_state: Float[Tensor, "batch pos d_model"] | None = None
    """The input of `transient_block` in this pass, before any transient nudge."""
    transient_rows: Bool[Tensor, " batch"] | None = None
    """Rows where a transient intervention fired in this pass."""
    generated: Sequence[Sequence[int]] | None = None
    """Per row, the token ids it has generated so far (what the pass reads last is the newest),
    where `decode` publishes them (for gates that read the text, e.g. ALS-Gated's JSON gate)."""
    block_calls: dict[int, tuple[tuple, dict]] = field(default_factory=dict)
    """Arguments of each block's call in this pass, where `capture_block_calls` records them."""
    _whole_refill: bool = False

    def mark_transient(
        self,
        position: int,
        rows: Bool[Tensor, " batch"],
        block: int | None = None,
        state: Tensor | None = None,
    ) -> None:
        """A transient intervention fired at `position` of this pass, on `rows`; `block` is the
        first block whose cache it changed and `state` that block's unsteered input (None: not
        known, so the cache is refilled by a whole pass)."""
        if self.transient_from is None or position < self.transient_from:
            self.transient_from = position
        self.transient_rows = rows if self.transient_rows is None else self.transient_rows | rows
        if block is None or state is None:
            self._whole_refill = True
        elif self.transient_block is None or block < self.transient_block:
            self.transient_block, self.transient_state = block, state

    @property
    def whole_refill(self) -> bool:
        """Whether the cache must be refilled by a whole pass (see `mark_transient`)."""
        return self._whole_refill

    @classmethod
    def whole_sequence(cls, n_rows: int, n_prompt: int, device: torch.device) -> DecodeStep:
        """A single pass over prompts (left-padded to `n_prompt`) and their generated tokens,
        every position new: what a teacher-forced replay publishes so that hooks see the same
        prompt/generated split as while decoding."""
        return cls.of_pass(torch.arange(n_rows), torch.full((n_rows,), n_prompt), 0, 0, device)

    @classmethod
    def of_pass(
        cls, rows: Tensor, n_prompt: Tensor, offset: int, new_from: int, device: torch.device
    ) -> DecodeStep:
        """A step with its counters zeroed."""
        n = len(rows)
        return cls(
            rows=rows,
            n_prompt=n_prompt.to(device),
            offset=offset,
            new_from=new_from,
            counts=torch.zeros(n, dtype=torch.long, device=device),
            fired_last=torch.zeros(n, dtype=torch.bool, device=device),
        )

    def generated_mask(self, seq_len: int, device: torch.device) -> Bool[Tensor, "batch pos"]:
        """Which of the `seq_len` positions of this pass are generated tokens, per row."""
        pos = torch.arange(self.offset, self.offset + seq_len, device=device)
        return pos[None, :] >= self.n_prompt.to(device)[:, None]

    def new_mask(self, seq_len: int, device: torch.device) -> Bool[Tensor, " pos"]:
        """Which of the `seq_len` positions of this pass are new (not seen by an earlier pass)."""
        return torch.arange(self.offset, self.offset + seq_len, device=device) >= self.new_from


_STEP: contextvars.ContextVar[DecodeStep | None] = contextvars.ContextVar("step", default=None)
_SUPPRESSED: contextvars.ContextVar[bool] = contextvars.ContextVar("suppressed", default=False)


def interventions_suppressed() -> bool:
    """True while `decode` refills the KV cache after a transient intervention: hooks that read
    it leave the stream as it is."""
    return _SUPPRESSED.get()


@contextlib.contextmanager
def suppress_interventions() -> Iterator[None]:
    """Inside the context `interventions_suppressed()` is True (the KV-cache refill)."""
    token = _SUPPRESSED.set(True)
    try:
        yield
    finally:
        _SUPPRESSED.reset(token)


def current_step() -> DecodeStep | None:
    """The `DecodeStep` of the forward pass in flight, or None outside `decode`."""
    return _STEP.get()


@contextlib.contextmanager
def publish_step(step: DecodeStep) -> Iterator[DecodeStep]:
    """Make `step` the `current_step()` for the forward passes inside the context."""
    token = _STEP.set(step)
    try:
        yield step
    finally:
        _STEP.reset(token)
