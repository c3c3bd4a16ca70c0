"""Graded chain-of-thought runs: problems -> prompts -> decoding -> verdicts -> JSONL rows.

Rows are appended one by one as sequences finish (decoding is continuously batched); a run that
is killed and started again reads the rows already written and decodes only the problems that have
none. Greedy generations do not depend on the batching (tested; `benchmarks/batch_invariance.py`
on the embedded model), so a resumed run writes the rows an uninterrupted one would, possibly in
another order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager as ContextManager
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from workbench.core.artifacts import append_jsonl, read_jsonl
from workbench.core.generation import Completion, GenerationConfig, decode
from workbench.core.grading import grade
from workbench.core.problems import Problem
from workbench.core.prompts import PromptConfig, answer_complete, encode_prompts
from workbench.core.records import GradedRow

__all__ = ["completion_from_row", "run_cot"]

logger = logging.getLogger(__name__)


def _row(problem: Problem, completion: Any, method: str) -> dict[str, Any]:
    verdict = grade(completion.text, problem.answer, problem.family)
    return GradedRow(
        id=problem.id,
        method=method,
        gold=problem.answer,
        predicted=verdict.predicted,
        correct=verdict.correct,
        extraction=verdict.method,
        prompt_tokens=completion.prompt_tokens,
        generated_tokens=len(completion.tokens),
        seconds=completion.seconds,
        finish=completion.finish,
        interventions=completion.interventions,
        steered_steps=list(completion.steered_steps),
        text=completion.text,
        tokens=list(completion.tokens),
    ).to_json()


def completion_from_row(row: dict[str, Any]) -> Completion:
    """The `Completion` a row of `run_cot` was made from (e.g. to restart from a CoT answer)."""
    return Completion(
        tokens=tuple(row["tokens"]),
        text=row["text"],
        prompt_tokens=row["prompt_tokens"],
        finish=row["finish"],
        seconds=row["seconds"],
        interventions=row.get("interventions", 0),
        steered_steps=tuple(row.get("steered_steps", ())),
    )


def run_cot(
    bridge: Any,
    problems: Sequence[Problem],
    *,
    generation: GenerationConfig = GenerationConfig(),
    prompt: PromptConfig = PromptConfig(),
    out: str | Path | None = None,
    intervention: ContextManager[Any] | None = None,
    method: str = "cot",
    stop_at_answer: bool = True,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Generate and grade a chain of thought per problem; rows in the order of `problems`.

    With `out`, each row goes to that JSONL file as its sequence finishes, and problems that already
    have a row there are skipped. `intervention` (e.g. a steering context) is active throughout.
    """
    done: dict[str, dict[str, Any]] = {}
    if out is not None:
        done = {r["id"]: r for r in read_jsonl(out)}
        if done:
            logger.info(
                "%s: resuming, %d of %d problems already done", out, len(done), len(problems)
            )
    todo = [(i, p) for i, p in enumerate(problems) if p.id not in done]
    stop = answer_complete if stop_at_answer else None
    bar = tqdm(
        total=len(problems), initial=len(problems) - len(todo), desc=method, disable=not progress
    )

    def finished(j: int, completion: Completion) -> None:
        row = _row(todo[j][1], completion, method)
        if out is not None:
            append_jsonl(out, [row])
        done[row["id"]] = row
        bar.update(1)
        bar.set_postfix(acc=f"{sum(r['correct'] for r in done.values()) / len(done):.2f}")

    if todo:
        ids = encode_prompts(bridge.tokenizer, [p.question for _, p in todo], prompt)
        with intervention if intervention is not None else _null():
            decode(
                bridge,
                ids,
                generation,
                stop=stop,
                indices=[i for i, _ in todo],
                on_complete=finished,
            )
    bar.close()
    return [done[p.id] for p in problems]


def _null() -> ContextManager[None]:
    import contextlib

    return contextlib.nullcontext()
