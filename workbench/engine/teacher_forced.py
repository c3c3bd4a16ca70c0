"""Teacher-forced passes: prompts and given continuations read in one forward pass, no decoding.

Reading the states of graded generations, the next-token effects of steering, or the likelihood of
a continuation takes one forward pass over the prompt and its continuation. Inside
`teacher_forced`, such a pass runs as a decode's prefill would for hooks: the pass is published as
one over prompts left-padded to `n_prompt` and their continuations (`PassInfo.whole_sequence`),
so steering and recording hooks see the same prompt / generated split as while decoding, and
attention runs on the Hugging Face module's kernel where nothing inside it is hooked
(`workbench.engine.native_attention`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from workbench.engine.native_attention import native_attention
from workbench.engine.passes import PassInfo, PassRecord, publish_pass

__all__ = ["teacher_forced"]


@contextlib.contextmanager
def teacher_forced(
    bridge: Any,
    n_rows: int,
    n_prompt: int,
    *,
    generated: Sequence[Sequence[int]] | None = None,
) -> Iterator[PassRecord]:
    """While open, forward passes of `bridge` over `n_rows` rows whose first `n_prompt` columns
    are (left-padded) prompt run without autograd and are published as one teacher-forced pass
    (`generated`: each row's continuation ids, for gates that read the text); yields the
    `PassRecord` the hooks fill (e.g. interventions per row)."""
    device = torch.device(bridge.cfg.device)
    info = PassInfo.whole_sequence(n_rows, n_prompt, device, generated)
    record = PassRecord.zeros(n_rows, device)
    with torch.inference_mode(), publish_pass(info, record), native_attention(bridge):
        yield record
