"""The per-sequence log both decoders keep: tokens, finish, time, interventions, steered steps.

A decoder feeds `SequenceLog` what each pass did (`charge`: its wall time shared among its rows
and their intervention counts; `steered`: rows whose newest position was steered) and each chosen
token (`take`); the log decides when a sequence ends (`finish_reason`) and makes its `Completion`
on the spot. The few facts about prompts and tokenizers that both decoders need live here too
(`check_prompts`, `longest_first`, `pad_id`, `eos_ids`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workbench.errors import WorkbenchError

__all__ = [
    "Completion",
    "FinishReason",
    "SequenceLog",
    "StopRule",
    "check_prompts",
    "eos_ids",
    "finish_reason",
    "longest_first",
    "pad_id",
]

FinishReason = Literal["eos", "stop", "length"]
StopRule = Callable[[str], bool]
"""Ends a sequence once it holds on its generated text (its ``tail_check`` attribute, where it
has one, is read first on the text of the last 48 tokens)."""


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


def check_prompts(prompts: Sequence[Sequence[int]]) -> None:
    """Refuse an empty list of prompts or an empty prompt."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise WorkbenchError("decode needs at least one prompt, and no prompt may be empty")


def longest_first(prompts: Sequence[Sequence[int]]) -> list[int]:
    """Indices of `prompts`, longest first (ties in order): prompts that start together then
    have similar lengths, so little of their prefill is padding."""
    return sorted(range(len(prompts)), key=lambda i: (-len(prompts[i]), i))


def pad_id(tokenizer: Any) -> int:
    """The id left padding is filled with: the tokenizer's pad token, else its EOS token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


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


def finish_reason(
    out: list[int],
    token_id: int,
    eos: set[int],
    stop: StopRule | None,
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


class SequenceLog:
    """What is known of each sequence of one decode while it decodes (indexed by its place in
    the call), and the completions of those that ended."""

    def __init__(
        self,
        bridge: Any,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int,
        stop: StopRule | None,
    ) -> None:
        n = len(prompts)
        self.tokenizer, self.max_new_tokens, self.stop = bridge.tokenizer, max_new_tokens, stop
        self.prompt_lengths = [len(p) for p in prompts]
        self.eos = eos_ids(bridge)
        self.out: list[list[int]] = [[] for _ in range(n)]
        self.steered_steps: list[list[int]] = [[] for _ in range(n)]
        self.interventions = [0] * n
        self.seconds = [0.0] * n
        self.done: dict[int, Completion] = {}

    def charge(self, seqs: Sequence[int], seconds: float, counts: Sequence[int]) -> None:
        """Share a pass's wall time among its rows `seqs`; add their intervention counts."""
        for seq, n in zip(seqs, counts, strict=True):
            self.seconds[seq] += seconds / len(seqs)
            self.interventions[seq] += int(n)

    def steered(self, seqs: Sequence[int]) -> None:
        """The pass that consumed the newest generated token of each of `seqs` steered it."""
        for seq in seqs:
            self.steered_steps[seq].append(len(self.out[seq]) - 1)

    def take(self, seq: int, token_id: int) -> bool:
        """Record `token_id` for `seq`; True (and its `Completion` made) if the sequence ends."""
        out = self.out[seq]
        finish = finish_reason(
            out, token_id, self.eos, self.stop, self.tokenizer, self.max_new_tokens
        )
        if finish is None:
            return False
        self.done[seq] = Completion(
            tokens=tuple(out),
            text=self.tokenizer.decode(out, skip_special_tokens=True),
            prompt_tokens=self.prompt_lengths[seq],
            finish=finish,
            seconds=self.seconds[seq],
            interventions=self.interventions[seq],
            steered_steps=tuple(self.steered_steps[seq]),
        )
        return True
