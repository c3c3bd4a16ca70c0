"""What steering does to the next-token distribution where it fires.

A steered generation is replayed teacher-forced twice: under the same steering (which fires where
it fired while decoding: positions are causal, so the steered states are the decoded ones) and
without it. At every generated token whose state was steered, the next-token distributions are
compared: KL(p_steered || p_plain), the entropy change H(p_steered) - H(p_plain), and whether the
most likely token changed. Small KL with many interventions means steering barely moves the
output; large entropy increases point at the degenerate text that strong additive steering gives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.core.directions import LayerDirections
from workbench.core.problems import Problem
from workbench.core.prompts import PromptConfig, encode_problems
from workbench.core.steering import SteeringSpec, steer
from workbench.engine.teacher_forced import teacher_forced
from workbench.errors import WorkbenchError

__all__ = ["distribution_shift", "next_token_effects"]


def distribution_shift(
    steered: Float[Tensor, "n vocab"], plain: Float[Tensor, "n vocab"]
) -> dict[str, Float[Tensor, " n"]]:
    """Per row: KL(p_steered || p_plain), H(p_steered) - H(p_plain), and top-1 change (0/1)."""
    log_s = torch.log_softmax(steered.float(), dim=-1)
    log_p = torch.log_softmax(plain.float(), dim=-1)
    p_s, p_p = log_s.exp(), log_p.exp()
    return {
        "kl": (p_s * (log_s - log_p)).sum(-1),
        "entropy_delta": -(p_s * log_s).sum(-1) + (p_p * log_p).sum(-1),
        "top1_changed": (steered.argmax(-1) != plain.argmax(-1)).float(),
    }


def _logits(bridge: Any, ids: Tensor, keep: Tensor, n_prompt: int) -> tuple[Tensor, int]:
    with teacher_forced(bridge, 1, n_prompt) as record:
        logits = bridge(ids, return_type="logits", logits_to_keep=keep)
    return logits[0], int(record.counts.sum())


def next_token_effects(
    bridge: Any,
    problems: Sequence[Problem],
    rows: Sequence[Mapping[str, Any]],
    spec: SteeringSpec,
    directions: LayerDirections,
    *,
    prompt: PromptConfig = PromptConfig(),
) -> list[dict[str, Any]]:
    """One row per steered generation (rows from `run_cot` under `spec`): means over its steered
    steps of KL, entropy change and top-1 change, and `replayed`, the interventions counted in
    the teacher-forced replay (equal to the row's `interventions` when the replay is faithful)."""
    by_id = {p.id: p for p in problems}
    missing = [r["id"] for r in rows if r["id"] not in by_id]
    if missing:
        raise WorkbenchError(f"{len(missing)} rows have no problem (e.g. {missing[0]})")
    device = torch.device(bridge.cfg.device)
    out = []
    with torch.inference_mode():
        for row in rows:
            # the tokens that decoding fed back (the last one only if it was followed by EOS)
            fed = list(row["tokens"]) if row["finish"] == "eos" else list(row["tokens"][:-1])
            steps = [s for s in row["steered_steps"] if s < len(fed)]
            result: dict[str, Any] = {"id": row["id"], "n_steered": len(steps)}
            if not steps:
                out.append({**result, "kl": None, "entropy_delta": None, "top1_changed": None})
                continue
            p_ids = encode_problems(bridge.tokenizer, [by_id[row["id"]]], prompt)[0]
            ids = torch.tensor([p_ids + fed], device=device)
            keep = torch.tensor([len(p_ids) + s for s in steps], device=device)
            plain, _ = _logits(bridge, ids, keep, len(p_ids))
            with steer(bridge, spec, directions):
                steered, replayed = _logits(bridge, ids, keep, len(p_ids))
            shift = distribution_shift(steered, plain)
            result.update({k: float(v.mean()) for k, v in shift.items()}, replayed=replayed)
            out.append(result)
    return out
