"""Baselines beside ALS: Self-Consistency (k sampled chains of thought, majority vote).

Self-Consistency uses the same batched, KV-cached `decode` as CoT and ALS: the k samples of a
problem are k sequences with their own seeds (problem index x k + j), so a problem's samples do
not depend on the batch it lands in. Samples of consecutive problems share batches, so every batch
holds `batch_size` sequences, as CoT's do (a batch of k alone would make SC look dearer than it
is). Answers vote by the grader's equivalence: two answers that `answers_equivalent` deems equal
are one candidate. Ties go to the candidate whose first vote came earliest (a deterministic
rule). Costs are summed over the k samples.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from workbench.checks import check_finite
from workbench.core.artifacts import append_jsonl, read_rows
from workbench.core.grading import AnswerFormat, Family, answers_equivalent, extract_final_answer
from workbench.core.problems import Problem
from workbench.core.prompts import PromptConfig, encode_problems, stop_rule
from workbench.core.records import GradedRow
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.errors import WorkbenchError

__all__ = ["SCConfig", "majority_vote", "run_self_consistency", "voted_row"]


@dataclass(frozen=True, kw_only=True)
class SCConfig:
    """Self-Consistency settings."""

    k: int = 5
    """Sampled chains of thought per problem."""
    temperature: float = 0.7
    """Sampling temperature."""
    top_p: float = 0.95
    """Nucleus mass kept."""
    seed: int = 0
    """Base seed; sample j of problem i uses seed + i * k + j."""

    def __post_init__(self) -> None:
        if self.k < 1:
            raise WorkbenchError(f"Self-Consistency needs k >= 1, not {self.k}")
        check_finite(self)
        if not (self.temperature > 0 and 0 < self.top_p <= 1):
            raise WorkbenchError("sampling needs temperature > 0 and 0 < top_p <= 1")

    def sampling(self, generation: GenerationConfig) -> GenerationConfig:
        """`generation` with these sampling settings (nucleus sampling, this base seed)."""
        return replace(
            generation,
            do_sample=True,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
        )


def majority_vote(answers: Sequence[str | None], family: Family) -> tuple[str | None, int]:
    """The answer with most votes among equivalent groups, and its vote count.

    None (no answer extracted) never wins while any answer exists. Ties: the group whose first
    member came first.
    """
    groups: list[list[str]] = []
    for answer in answers:
        if answer is None:
            continue
        for group in groups:
            if answers_equivalent(answer, group[0], family):
                group.append(answer)
                break
        else:
            groups.append([answer])
    if not groups:
        return None, 0
    best = max(groups, key=len)  # max keeps the first of equal lengths: earliest group wins
    return best[0], len(best)


def voted_row(
    problem: Problem, samples: Sequence[Any], method: str, answer_format: AnswerFormat = "boxed"
) -> dict[str, Any]:
    """The graded row of one problem from its k samples: the majority answer, costs summed."""
    answers = [extract_final_answer(s.text, problem.family, answer_format)[0] for s in samples]
    voted, votes = majority_vote(answers, problem.family)
    correct = voted is not None and answers_equivalent(voted, problem.answer, problem.family)
    finishes = [s.finish for s in samples]
    return GradedRow(
        id=problem.id,
        method=method,
        gold=problem.answer,
        predicted=voted,
        correct=correct,
        extraction="majority_vote",
        prompt_tokens=samples[0].prompt_tokens,
        generated_tokens=sum(len(s.tokens) for s in samples),
        seconds=sum(s.seconds for s in samples),
        finish=Counter(finishes).most_common(1)[0][0],
        extras={"votes": votes, "sample_answers": answers, "sample_finish": finishes},
    ).to_json()


def run_self_consistency(
    bridge: Any,
    problems: Sequence[Problem],
    cfg: SCConfig = SCConfig(),
    *,
    generation: GenerationConfig = GenerationConfig(),
    prompt: PromptConfig = PromptConfig(),
    out: str | Path | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """SC@k for every problem; rows like `run_cot`'s (costs summed over samples), resumable."""
    sampling = cfg.sampling(generation)
    method = f"sc@{cfg.k}"
    done = {r["id"]: r for r in read_rows(out)} if out is not None else {}
    todo = [(i, p) for i, p in enumerate(problems) if p.id not in done]
    # Problems per chunk: the fewest whose samples fill whole batches (written after each chunk).
    per_chunk = math.lcm(generation.batch_size, cfg.k) // cfg.k
    bar = tqdm(
        total=len(problems), initial=len(problems) - len(todo), desc=method, disable=not progress
    )
    for lo in range(0, len(todo), per_chunk):
        chunk = todo[lo : lo + per_chunk]
        ids = encode_problems(bridge.tokenizer, [p for _, p in chunk], prompt)
        prompts = [ids[c] for c in range(len(chunk)) for _ in range(cfg.k)]
        seeds = [i * cfg.k + j for i, _ in chunk for j in range(cfg.k)]
        completions = decode(bridge, prompts, sampling, stop=stop_rule(prompt), indices=seeds)
        rows = [
            voted_row(
                problem, completions[c * cfg.k : (c + 1) * cfg.k], method, prompt.answer_format
            )
            for c, (_, problem) in enumerate(chunk)
        ]
        if out is not None:
            append_jsonl(out, rows)
        done.update((r["id"], r) for r in rows)
        bar.update(len(chunk))
    bar.close()
    return [done[p.id] for p in problems]
