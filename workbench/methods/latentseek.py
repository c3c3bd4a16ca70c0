"""LatentSeek (arXiv 2505.13308): per-problem policy-gradient search over latent states.

Our own implementation of the published algorithm (read from bigai-nlco/LatentSeek):

1. The model answers greedily (chain of thought). The states that feed the unembedding (after
   the final norm) at the first k = min(int(rho * n_generated), max_latents) answer positions
   (the state at the last prompt token produces answer token 0) become a parameter z.
2. Each iteration, while reward <= threshold and fewer than `max_iters` steps were taken: the loss
   is -reward * sum_t log softmax(z_t W_U + b_U)[argmax], one Adam step on z only (the model's
   weights are detached: their gradients are never computed). The new prefix is the argmax tokens
   of the updated z; the rest of the answer is regenerated from prompt + prefix with the same
   batched, KV-cached `decode` as every other method; the new answer is rewarded.
3. The answer is the latest one (not the best-rewarded), as in the reference code.

Rewards are in [-1, 0]. `oracle` rewards 0 for a correct answer and -1 otherwise (the paper's
perfect sparse reward model, an upper bound). `self` asks the model itself four verification
questions (calculations, final answer, completeness, understanding; weights 2, 1, 2, 1) and scores
-(weight of failed checks) / 6; a check passes only if the verifier ends with
"FINAL VERIFICATION ANSWER IS: TRUE". Costs are counted the same way as for the other methods:
generated tokens (solver and verifier), forward passes (one per generated token plus the state
capture) and backward passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.checks import check_finite
from workbench.core.grading import grade
from workbench.core.problems import Problem
from workbench.core.prompts import answer_complete
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.hooks import check_hook_names
from workbench.engine.sequences import Completion
from workbench.errors import WorkbenchError

__all__ = [
    "LatentSeekConfig",
    "LatentSeekResult",
    "final_states",
    "latentseek",
    "oracle_reward",
    "self_reward",
    "verdict_reward",
    "verifier_prompts",
]

FINAL_STATE_HOOK = "unembed.hook_in"

VERIFIERS: tuple[tuple[str, float], ...] = (
    ("Re-do every calculation in the solution. Are all of them correct?", 2.0),
    ("Look only at the final answer. Is it the correct answer to the question?", 1.0),
    ("Does the solution end with one clear, fully computed final answer?", 2.0),
    ("Did the solution understand the question correctly (what is given, what is asked)?", 1.0),
)
VERDICT_MARK = "FINAL VERIFICATION ANSWER IS:"


@dataclass(frozen=True, kw_only=True)
class LatentSeekConfig:
    """LatentSeek settings (defaults: the reference implementation's)."""

    lr: float = 0.03
    """Adam learning rate on the latents."""
    rho: float = 0.1
    """Fraction of the answer's first positions whose latents are optimised."""
    max_latents: int = 300
    """Cap on the number of optimised positions."""
    max_iters: int = 10
    """Most optimisation steps per problem."""
    threshold: float = -0.2
    """Stop once the reward exceeds this."""
    reward: Literal["self", "oracle"] = "self"
    """'self' (the model verifies its own answer) or 'oracle' (gold answer; an upper bound)."""
    verifier_max_new_tokens: int = 256
    """Token cap of each verification answer."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.max_latents < 1 or self.verifier_max_new_tokens < 1:
            raise WorkbenchError("max_latents and verifier_max_new_tokens must be >= 1")
        if not 0 < self.rho <= 1:
            raise WorkbenchError(f"rho must be in (0, 1], not {self.rho}")
        if self.max_iters < 0 or self.lr <= 0:
            raise WorkbenchError("max_iters must be >= 0 and lr > 0")
        if self.reward not in ("self", "oracle"):
            raise WorkbenchError(f"reward must be 'self' or 'oracle', not {self.reward!r}")


@dataclass
class LatentSeekResult:
    """The final answer of one problem and what it cost."""

    tokens: list[int]
    """Generated token ids of the final answer."""
    text: str
    """Its text."""
    rewards: list[float] = field(default_factory=list)
    """Reward of each answer in turn (the initial one first)."""
    losses: list[float] = field(default_factory=list)
    """Loss at each optimisation step."""
    iterations: int = 0
    """Optimisation steps taken."""
    forward_passes: int = 0
    """Model forward passes (solver and verifier decoding steps, state captures)."""
    backward_passes: int = 0
    """Backward passes (one per step; through the unembedding only)."""
    generated_tokens: int = 0
    """All tokens generated: solver answers and verifier answers."""
    seconds: float = 0.0
    """Wall time."""


def _passes(c: Completion) -> int:
    return len(c.tokens) + (c.finish == "eos")


def final_states(
    bridge: Any, prompt: list[int], tokens: list[int]
) -> Float[Tensor, "tokens d_model"]:
    """The unembedding's inputs that produced each of `tokens` after `prompt` (teacher-forced)."""
    check_hook_names(bridge, [FINAL_STATE_HOOK])
    got: dict[str, Tensor] = {}

    def grab(x: Tensor, hook: Any) -> Tensor:
        got["x"] = x[0].detach().clone()
        return x

    ids = torch.tensor([prompt + tokens], device=bridge.cfg.device)
    with torch.inference_mode(), bridge.hooks(fwd_hooks=[(FINAL_STATE_HOOK, grab)]):
        bridge(ids)
    return got["x"][len(prompt) - 1 : len(prompt) - 1 + len(tokens)].clone()


def oracle_reward(problem: Problem) -> Callable[[str], tuple[float, int, int]]:
    """Reward 0 if the answer is graded correct against the gold answer, else -1."""

    def reward(text: str) -> tuple[float, int, int]:
        return (0.0 if grade(text, problem.answer, problem.family).correct else -1.0), 0, 0

    return reward


def verifier_prompts(tokenizer: Any, problem: Problem, text: str) -> list[list[int]]:
    """Token ids of the four verification prompts (`VERIFIERS`) about answer `text`."""
    prompts = []
    for question, _ in VERIFIERS:
        content = (
            f"You are a critical verifier.\nQuestion: {problem.question}\n"
            f"Proposed solution: {text}\n{question} Explain briefly, then end with "
            f"'{VERDICT_MARK} TRUE' or '{VERDICT_MARK} FALSE'."
        )
        msgs = [{"role": "user", "content": content}]
        if getattr(tokenizer, "chat_template", None):
            p = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            prompts.append(tokenizer(p, add_special_tokens=False)["input_ids"])
        else:
            prompts.append(tokenizer(content + "\n")["input_ids"])
    return prompts


def verdict_reward(answers: list[str]) -> float:
    """-(weight of the failed checks) / (total weight), from the four verifiers' answers in the
    order of `VERIFIERS`: 0 when every check ends with the TRUE verdict."""
    failed = 0.0
    for (_, weight), text in zip(VERIFIERS, answers, strict=True):
        verdict = text.rsplit(VERDICT_MARK, 1)[-1] if VERDICT_MARK in text else ""
        failed += weight * ("TRUE" not in verdict.upper())
    return -failed / sum(w for _, w in VERIFIERS)


def self_reward(
    bridge: Any, problem: Problem, cfg: LatentSeekConfig
) -> Callable[[str], tuple[float, int, int]]:
    """The model's own weighted verification of an answer: (reward, tokens, forward passes)."""
    gen = GenerationConfig(max_new_tokens=cfg.verifier_max_new_tokens, batch_size=len(VERIFIERS))

    def reward(text: str) -> tuple[float, int, int]:
        out = decode(bridge, verifier_prompts(bridge.tokenizer, problem, text), gen)
        tokens, passes = sum(len(c.tokens) for c in out), sum(_passes(c) for c in out)
        return verdict_reward([c.text for c in out]), tokens, passes

    return reward


def latentseek(
    bridge: Any,
    prompt: list[int],
    initial: Completion,
    reward_fn: Callable[[str], tuple[float, int, int]],
    cfg: LatentSeekConfig = LatentSeekConfig(),
    *,
    generation: GenerationConfig = GenerationConfig(),
) -> LatentSeekResult:
    """Search the latents of one problem, starting from its CoT answer `initial`."""
    start = time.perf_counter()
    tokens = list(initial.tokens)
    res = LatentSeekResult(tokens=tokens, text=initial.text)
    res.forward_passes, res.generated_tokens = _passes(initial), len(tokens)
    reward, n_tok, n_fwd = reward_fn(initial.text)
    res.rewards.append(reward)
    res.generated_tokens += n_tok
    res.forward_passes += n_fwd
    k = min(int(cfg.rho * len(tokens)), cfg.max_latents)
    if k == 0 or reward > cfg.threshold or cfg.max_iters == 0:
        res.seconds = time.perf_counter() - start
        return res
    z = torch.nn.Parameter(final_states(bridge, prompt, tokens[:k]).float())
    res.forward_passes += 1
    w_u, b_u = bridge.W_U.detach().float(), bridge.b_U.detach().float()
    opt = torch.optim.Adam([z], lr=cfg.lr)
    tok = bridge.tokenizer
    while res.iterations < cfg.max_iters and reward <= cfg.threshold:
        with torch.enable_grad():
            logp = torch.log_softmax(z @ w_u + b_u, dim=-1)
            picked = logp.gather(-1, logp.argmax(-1, keepdim=True)).sum()
            loss = -reward * picked
            opt.zero_grad()
            loss.backward()
            opt.step()
        res.losses.append(float(loss.detach()))
        res.backward_passes += 1
        res.iterations += 1
        with torch.no_grad():
            prefix = (z @ w_u + b_u).argmax(-1).tolist()
        budget = generation.max_new_tokens - len(prefix)
        rest = decode(
            bridge,
            [prompt + prefix],
            GenerationConfig(
                **{**generation.__dict__, "max_new_tokens": max(1, budget), "batch_size": 1}
            ),
            stop=lambda t, p=tok.decode(prefix): answer_complete(p + t),
        )[0]
        tokens = prefix + list(rest.tokens)
        res.tokens, res.text = tokens, tok.decode(tokens, skip_special_tokens=True)
        res.generated_tokens += len(rest.tokens)
        res.forward_passes += _passes(rest)
        reward, n_tok, n_fwd = reward_fn(res.text)
        res.rewards.append(reward)
        res.generated_tokens += n_tok
        res.forward_passes += n_fwd
    res.seconds = time.perf_counter() - start
    return res
