"""The engine's one entry point: `decode` prompts on a `TransformerBridge`, steered or not.

`decode` owns every choice a decode makes beside the model's: which decoder runs (continuous
batching, `workbench.engine.continuous`, or static batches whose step a CUDA graph can replay,
`workbench.engine.static`, as `GenerationConfig.static_step` asks and the job allows), which rows
each steering arm acts on, and the limits of the transient cache repair (an arm whose repair
refills every row decodes in a call of its own). Hooks are entered once around the call and always
removed; every module in which no hook point is hooked then runs as the Hugging Face module it
wraps (`workbench.engine.lean_passes`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any

import torch

from workbench.engine.config import GenerationConfig
from workbench.engine.continuous import decode_continuous
from workbench.engine.lean_passes import lean_passes
from workbench.engine.row_steering import RowArm
from workbench.engine.sequences import Completion, StopRule, check_prompts
from workbench.engine.static import decode_static
from workbench.engine.steering import steering_hooks
from workbench.errors import WorkbenchError

__all__ = ["decode"]

log = logging.getLogger(__name__)


def _checked_numbering(
    n: int, indices: Sequence[int] | None, seeds: Sequence[int] | None
) -> tuple[list[int], list[int]]:
    indices = list(range(n)) if indices is None else list(indices)
    seeds = indices if seeds is None else list(seeds)
    if len(set(indices)) != n or len(seeds) != n:
        raise WorkbenchError(
            f"{len(indices)} indices ({len(set(indices))} distinct) and {len(seeds)} seeds for "
            f"{n} prompts: give one distinct index and one seed per prompt"
        )
    return indices, seeds


def _calls(arms: Sequence[RowArm]) -> list[list[int]]:
    """The prompts (places) of each call: every arm whose cache repair refills every row of its
    batch (`ResolvedSteering.needs_own_call`) in a call of its own, the rest together."""
    own: dict[int, list[int]] = {}
    shared = []
    for k, arm in enumerate(arms):
        if arm is not None and arm.needs_own_call:
            own.setdefault(id(arm), []).append(k)
        else:
            shared.append(k)
    return [group for group in (shared, *own.values()) if group]


def _static_refusal(
    bridge: Any, cfg: GenerationConfig, arms: Sequence[RowArm], hooked: bool, feed_final: bool
) -> str | None:
    """Why this call decodes with continuous batching (None: with the static step); `hooked`:
    an intervention or observers around the call."""
    cuda = torch.device(bridge.cfg.device).type == "cuda"
    if cfg.static_step == "off" or (cfg.static_step == "auto" and not cuda):
        return "static_step"
    if hooked:
        return "an intervention or observers around the call"
    if feed_final:
        return "states recorded"
    reasons = (arm.static_support() for arm in arms if arm is not None)
    return next((why for why in reasons if why is not None), None)


@contextlib.contextmanager
def _arm_hooks(bridge: Any, arms: Sequence[RowArm], indices: list[int]) -> Iterator[None]:
    """Each distinct arm's steering hooks, on the rows (decode indices) it steers."""
    rows: dict[int, list[int]] = {}
    by_id: dict[int, Any] = {}
    for k, arm in enumerate(arms):
        if arm is not None:
            rows.setdefault(id(arm), []).append(indices[k])
            by_id[id(arm)] = arm
    with contextlib.ExitStack() as stack:
        for key, arm in by_id.items():
            stack.enter_context(steering_hooks(bridge, arm, rows=rows[key]))
        yield


def decode(
    bridge: Any,
    prompts: Sequence[Sequence[int]],
    cfg: GenerationConfig = GenerationConfig(),
    *,
    stop: StopRule | None = None,
    arms: Sequence[RowArm] | None = None,
    intervention: ContextManager[Any] | None = None,
    observers: Sequence[ContextManager[Any]] = (),
    indices: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    on_complete: Callable[[int, Completion], None] | None = None,
    feed_final: bool = False,
) -> list[Completion]:
    """Decode every prompt (token-id lists), at most `cfg.batch_size` at a time; completions in
    the order of `prompts`.

    `stop(text)` ends a sequence once it returns True on its generated text; it is read on the
    whole text only where it (or its attribute `tail_check`, for a rule that a tail cannot decide)
    holds on the text of the last 48 tokens. `arms` gives each prompt its steering (a
    `ResolvedSteering`, one object per arm, or None), so that several arms share one batch, each
    arm's hooks acting on its own rows. Around the call are entered, in this order: `intervention`
    (e.g. a `steer` context over every row), the arms' hooks, then `observers` (contexts whose
    hooks read the states the arms made, e.g. `workbench.core.recording`).

    `indices` number the sequences (`PassInfo.rows`; default 0..n-1); `seeds` (default: the
    indices) are their sampling seeds, e.g. the problem's number for each of several arms decoding
    the same problems. `on_complete(i, completion)` is called once sequence `i` (its place in
    `prompts`) has finished (static batches: when its batch is done). With `feed_final`, a
    sequence that ends on a token of its own (answer complete, or the cap; not EOS) stays for one
    more pass that feeds that token, its prediction discarded, so that hooks see the state at every
    generated token's position (`on_complete` is called after that pass).
    """
    check_prompts(prompts)
    indices, seeds = _checked_numbering(len(prompts), indices, seeds)
    arms = [None] * len(prompts) if arms is None else list(arms)
    if len(arms) != len(prompts):
        raise WorkbenchError(f"{len(arms)} arms for {len(prompts)} prompts: give one per prompt")
    hooked = intervention is not None or bool(observers)
    refusal = _static_refusal(bridge, cfg, arms, hooked, feed_final)
    if refusal is None:
        return decode_static(
            bridge, prompts, cfg, arms=arms, stop=stop, seeds=seeds, on_complete=on_complete
        )
    if cfg.static_step != "off" and refusal != "static_step":
        log.info("continuous batching, not the static step: %s", refusal)
    calls = _Calls(bridge, prompts, cfg, stop, indices, seeds, on_complete, feed_final)
    with (
        torch.inference_mode(),
        intervention or contextlib.nullcontext(),
        _arm_hooks(bridge, arms, indices),
        contextlib.ExitStack() as stack,
    ):
        for observer in observers:
            stack.enter_context(observer)
        with lean_passes(bridge):  # after every hook: it bypasses what is not hooked
            done = {k: c for call in _calls(arms) for k, c in calls.run(call).items()}
    return [done[k] for k in range(len(prompts))]


@dataclass(frozen=True)
class _Calls:
    """The continuous-batching calls of one `decode`, each over some of its prompts."""

    bridge: Any
    prompts: Sequence[Sequence[int]]
    cfg: GenerationConfig
    stop: StopRule | None
    indices: list[int]
    seeds: list[int]
    on_complete: Callable[[int, Completion], None] | None
    feed_final: bool

    def run(self, call: list[int]) -> dict[int, Completion]:
        """The prompts `call` (places in `prompts`) decoded in one continuous batch."""

        def complete(j: int, completion: Completion) -> None:
            if self.on_complete is not None:
                self.on_complete(call[j], completion)

        out = decode_continuous(
            self.bridge,
            [self.prompts[k] for k in call],
            self.cfg,
            stop=self.stop,
            indices=[self.indices[k] for k in call],
            seeds=[self.seeds[k] for k in call],
            on_complete=complete,
            feed_final=self.feed_final,
        )
        return dict(zip(call, out, strict=True))
