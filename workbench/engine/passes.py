"""The forward pass in flight, as hooks see it: what the pass is told and what hooks record.

Whoever runs a forward pass for the workbench (the decoders, a teacher-forced replay) publishes a
`ForwardPass` around it (`publish_pass`): its `PassInfo`, fixed before the pass (which batch row is
which sequence, which positions are prompt, generated or new, each row's text so far), and its
`PassRecord`, which the hooks fill (interventions per row, whether the newest position was steered,
the transient nudges whose KV-cache entries must be repaired). Hooks read it with `current_pass`;
while a decoder repairs the KV cache after a transient nudge, interventions stand aside
(`interventions_suppressed`). Its own module so that the decoders and the hooks they run read it
without importing one another.
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
    "ForwardPass",
    "PassInfo",
    "PassRecord",
    "TransientMarks",
    "current_pass",
    "interventions_suppressed",
    "publish_pass",
    "suppress_interventions",
]


@dataclass(frozen=True)
class PassInfo:
    """What a forward pass is told before it runs."""

    rows: Int[Tensor, " batch"]
    """For each batch row, the index of its sequence in the `decode` call."""
    n_prompt: Int[Tensor, " batch"]
    """Per row, the padded column where its generated tokens begin: absolute positions below it
    are prompt (or padding), from it on generated."""
    offset: int
    """Absolute position of the first position of this forward pass (KV-cache length)."""
    new_from: int
    """Absolute position from which positions are seen for the first time (count these)."""
    generated: Sequence[Sequence[int]] | None = None
    """Per row, the token ids it has generated so far (what the pass reads last is the newest),
    where the decoder publishes them (for gates that read the text, e.g. ALS-Gated's JSON gate)."""

    @classmethod
    def whole_sequence(
        cls,
        n_rows: int,
        n_prompt: int,
        device: torch.device,
        generated: Sequence[Sequence[int]] | None = None,
    ) -> PassInfo:
        """A single pass over prompts (left-padded to `n_prompt`) and their generated tokens,
        every position new: what a teacher-forced replay publishes so that hooks see the same
        prompt/generated split as while decoding."""
        n_prompt_t = torch.full((n_rows,), n_prompt, device=device)
        return cls(torch.arange(n_rows), n_prompt_t, 0, 0, generated)

    def generated_mask(self, seq_len: int, device: torch.device) -> Bool[Tensor, "batch pos"]:
        """Which of the `seq_len` positions of this pass are generated tokens, per row."""
        pos = torch.arange(self.offset, self.offset + seq_len, device=device)
        return pos[None, :] >= self.n_prompt.to(device)[:, None]

    def new_mask(self, seq_len: int, device: torch.device) -> Bool[Tensor, " pos"]:
        """Which of the `seq_len` positions of this pass are new (not seen by an earlier pass)."""
        return torch.arange(self.offset, self.offset + seq_len, device=device) >= self.new_from


@dataclass
class TransientMarks:
    """Where the transient interventions of one pass fired, and what the repair needs."""

    first: int | None = None
    """The first position of the pass (0 = its first) where one fired (None: none did)."""
    rows: Bool[Tensor, " batch"] | None = None
    """Rows where one fired."""
    block: int | None = None
    """The first block whose cache one changed."""
    state: Float[Tensor, "batch pos d_model"] | None = None
    """The input of `block` in this pass, before any transient nudge."""
    whole: bool = False
    """Whether one fired where no block input is known: the cache is refilled by a whole pass."""
    block_calls: dict[int, tuple[tuple, dict]] = field(default_factory=dict)
    """Arguments of each block's call in this pass (`capture_block_calls`)."""

    def mark(
        self,
        position: int,
        rows: Bool[Tensor, " batch"],
        block: int | None = None,
        state: Tensor | None = None,
    ) -> None:
        """A transient intervention fired at `position` of this pass, on `rows`; `block` is the
        first block whose cache it changed and `state` that block's unsteered input (None: not
        known, so the cache is refilled by a whole pass)."""
        if self.first is None or position < self.first:
            self.first = position
        self.rows = rows if self.rows is None else self.rows | rows
        if block is None or state is None:
            self.whole = True
        elif self.block is None or block < self.block:
            self.block, self.state = block, state


@dataclass
class PassRecord:
    """What the hooks of one forward pass record."""

    counts: Int[Tensor, " batch"]
    """Interventions per row in this pass; hooks add to it."""
    fired_last: Bool[Tensor, " batch"]
    """Whether an intervention fired at the newest position of each row; hooks set it."""
    transient: TransientMarks | None = None
    """Where transient interventions fired, for the KV-cache repair that the decoder runs after
    the pass (`workbench.engine.transient`); None where nothing repairs the cache."""

    @classmethod
    def zeros(
        cls, n_rows: int, device: torch.device, transient: TransientMarks | None = None
    ) -> PassRecord:
        """A record with its counters zeroed."""
        return cls(
            counts=torch.zeros(n_rows, dtype=torch.long, device=device),
            fired_last=torch.zeros(n_rows, dtype=torch.bool, device=device),
            transient=transient,
        )


@dataclass(frozen=True)
class ForwardPass:
    """A published pass: what it is told and what its hooks record."""

    info: PassInfo
    """Fixed before the pass."""
    record: PassRecord = field(compare=False)
    """Filled by the hooks during the pass."""


_PASS: contextvars.ContextVar[ForwardPass | None] = contextvars.ContextVar("pass", default=None)
_SUPPRESSED: contextvars.ContextVar[bool] = contextvars.ContextVar("suppressed", default=False)


def interventions_suppressed() -> bool:
    """True while a decoder repairs the KV cache after a transient intervention: hooks that read
    it leave the stream as it is and record nothing."""
    return _SUPPRESSED.get()


@contextlib.contextmanager
def suppress_interventions() -> Iterator[None]:
    """Inside the context `interventions_suppressed()` is True (the KV-cache repair)."""
    token = _SUPPRESSED.set(True)
    try:
        yield
    finally:
        _SUPPRESSED.reset(token)


def current_pass() -> ForwardPass | None:
    """The `ForwardPass` in flight, or None outside the workbench's passes."""
    return _PASS.get()


@contextlib.contextmanager
def publish_pass(info: PassInfo, record: PassRecord) -> Iterator[PassRecord]:
    """Make (`info`, `record`) the `current_pass()` for the forward passes inside the context;
    yields the record."""
    token = _PASS.set(ForwardPass(info, record))
    try:
        yield record
    finally:
        _PASS.reset(token)
