"""Sampled chains per problem: k chains of thought at a temperature, one graded row each.

Each sample is a row of its own, with its text and tokens (so that its states can be cached by
teacher forcing, as the fit stage's greedy rows are), its problem, its sample index and its
sampling seed. Sample j of the i-th problem (in the order given) is sequence i * k + j of one
continuously batched decode and draws from its own generator, seeded ``seed + i * k + j``, the
seeds `run_self_consistency` gives its samples; rows are written as they finish and a rerun
decodes only the samples that have none. From the same rows come each problem's pass rate and
its SC@k answer (`voted_rows`), with no further decoding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from workbench.core.grading import AnswerFormat
from workbench.core.problems import Problem
from workbench.core.prompts import PromptConfig
from workbench.engine.config import GenerationConfig
from workbench.errors import WorkbenchError
from workbench.methods.baselines import SCConfig, voted_row
from workbench.methods.cot import completion_from_row, run_cot

__all__ = [
    "PassRate",
    "pass_rates",
    "run_samples",
    "sample_id",
    "sampled_problems",
    "samples_by_problem",
    "voted_rows",
]

SAMPLE_SEP = "#"
"""Separates a problem id from the sample index in a sample row's id (``gsm8k/train/0001#3``)."""


def sample_id(problem_id: str, j: int) -> str:
    """The row id of sample `j` of a problem."""
    return f"{problem_id}{SAMPLE_SEP}{j}"


def sampled_problems(problems: Sequence[Problem], cfg: SCConfig) -> list[Problem]:
    """Each problem k times, as sample problems with their own ids; the i-th problem's sample
    j sits at place i * k + j, and its meta's ``sample`` says which problem, sample and seed."""
    out = []
    for i, p in enumerate(problems):
        for j in range(cfg.k):
            tag = {"problem_id": p.id, "sample": j, "seed": cfg.seed + i * cfg.k + j}
            out.append(replace(p, id=sample_id(p.id, j), meta={**p.meta, "sample": tag}))
    return out


def run_samples(
    bridge: Any,
    problems: Sequence[Problem],
    cfg: SCConfig = SCConfig(),
    *,
    generation: GenerationConfig = GenerationConfig(),
    prompt: PromptConfig = PromptConfig(),
    out: str | Path | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """k sampled, graded chains per problem in one continuously batched decode; one row per
    sample (``problem_id``, ``sample``, ``seed``, text and tokens), in problem-then-sample order.
    With `out`, rows go to that JSONL file as they finish and samples that have one are skipped."""
    return run_cot(
        bridge,
        sampled_problems(problems, cfg),
        generation=cfg.sampling(generation),
        prompt=prompt,
        out=out,
        method="sample",
        progress=progress,
    )


def samples_by_problem(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Sample rows grouped by problem (problems in first-seen order, samples by index)."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        if "problem_id" not in row:
            raise WorkbenchError(f"row {row.get('id')!r} is not a sample row (no problem_id)")
        groups[row["problem_id"]].append(row)
    return {pid: sorted(g, key=lambda r: r["sample"]) for pid, g in groups.items()}


@dataclass(frozen=True)
class PassRate:
    """How many of a problem's samples were graded correct."""

    correct: int
    """Correct samples."""
    n: int
    """Samples."""

    @property
    def rate(self) -> float:
        return self.correct / self.n

    @property
    def mixed(self) -> bool:
        """Both outcomes among the samples (a within-problem contrast exists)."""
        return 0 < self.correct < self.n


def pass_rates(rows: Sequence[Mapping[str, Any]]) -> dict[str, PassRate]:
    """Per problem, its samples' correct count."""
    return {
        pid: PassRate(sum(bool(r["correct"]) for r in g), len(g))
        for pid, g in samples_by_problem(rows).items()
    }


def voted_rows(
    problems: Sequence[Problem],
    rows: Sequence[Mapping[str, Any]],
    k: int | None = None,
    answer_format: AnswerFormat = "boxed",
) -> list[dict[str, Any]]:
    """SC@k rows (majority vote, costs summed) from sample rows, using each problem's first k
    samples (all when None); a problem with fewer than k samples is an error."""
    groups = samples_by_problem(rows)
    out = []
    for p in problems:
        have = groups.get(p.id, [])
        use = have if k is None else have[:k]
        if not use or (k is not None and len(use) < k):
            raise WorkbenchError(f"{p.id} has {len(have)} samples, fewer than the {k} asked")
        method = f"sc@{len(use)}"
        samples = [completion_from_row(dict(r)) for r in use]
        out.append(voted_row(p, samples, method, answer_format))
    return out
