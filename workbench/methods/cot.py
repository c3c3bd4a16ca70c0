"""Graded chain-of-thought runs: problems -> prompts -> decoding -> verdicts -> JSONL rows.

Rows are appended one by one as sequences finish (decoding is continuously batched); a run that
is killed and started again reads the rows already written and decodes only the problems that have
none. Greedy generations do not depend on the batching (tested; `benchmarks/batch_invariance.py`
on the embedded model), so a resumed run writes the rows an uninterrupted one would, possibly in
another order.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from workbench.core.artifacts import append_jsonl, read_rows
from workbench.core.directions import LayerDirections
from workbench.core.grading import AnswerFormat, grade
from workbench.core.problems import Problem
from workbench.core.prompts import PromptConfig, encode_problems, stop_rule
from workbench.core.recording import StateRecorder
from workbench.core.records import GradedRow
from workbench.core.steering import SteeringSpec, resolve
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.sequences import Completion

__all__ = [
    "Arm",
    "Job",
    "completion_from_row",
    "decode_call_id",
    "run_arms",
    "run_cot",
    "run_jobs",
]

logger = logging.getLogger(__name__)


def _row(
    problem: Problem,
    completion: Any,
    method: str,
    answer_format: AnswerFormat = "boxed",
    decode_call: str | None = None,
) -> dict[str, Any]:
    verdict = grade(completion.text, problem.answer, problem.family, answer_format)
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
        extras={
            **problem.meta.get("sample", {}),  # a sampled chain's problem, index and seed
            **({} if decode_call is None else {"decode_call": decode_call}),
        },
    ).to_json()


def decode_call_id() -> str:
    """A name for one `decode` call, written into each of its rows (``decode_call``): rows that
    share it were decoded in one continuous batch, so their seconds compare like for like."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}"


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
    job = _Decoder(bridge, generation, prompt, stop_at_answer, progress)
    return job.run({method: Job(problems, out=out, method=method)}, intervention)[method]


Arm = tuple[SteeringSpec, LayerDirections] | None
"""A decoding arm: a steering spec with its directions, or None for plain CoT."""


@dataclass(frozen=True)
class Job:
    """One share of a continuously batched decode: its problems, its arm, its rows file."""

    problems: Sequence[Problem]
    """The problems this share decodes (rows come back in this order)."""
    arm: Arm = None
    """Steering on this share's rows only, or None for plain CoT."""
    out: str | Path | None = None
    """JSONL file its rows are appended to as they finish, and resumed from."""
    method: str = "cot"
    """The rows' `method` field."""
    recorder: StateRecorder | None = None
    """Records the states of this job's rows while they decode (`workbench.core.recording`):
    what a teacher-forced `cache_activations` pass over them would cache, without the pass.
    Rows whose states the recorder's folder holds already are not recorded again."""


def run_arms(
    bridge: Any,
    problems: Sequence[Problem],
    arms: Mapping[str, Arm],
    *,
    generation: GenerationConfig = GenerationConfig(),
    prompt: PromptConfig = PromptConfig(),
    outs: Mapping[str, str | Path] | None = None,
    stop_at_answer: bool = True,
    progress: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """`run_cot` for several arms on the same problems, in one continuously batched decode: each
    steered arm's hooks act on its own rows only (`steer(..., rows=...)`), so the batch stays full
    while the arms' rows finish at different times. Rows, per arm, in the order of `problems`;
    `outs` maps an arm to its JSONL file (written as rows finish, resumed per arm). See
    `run_jobs`, which this calls with one job per arm (`method` = the arm's name)."""
    outs = outs or {}
    jobs = {n: Job(problems, arm, outs.get(n), method=n) for n, arm in arms.items()}
    return run_jobs(
        bridge,
        jobs,
        generation=generation,
        prompt=prompt,
        stop_at_answer=stop_at_answer,
        progress=progress,
    )


def run_jobs(
    bridge: Any,
    jobs: Mapping[str, Job],
    *,
    generation: GenerationConfig = GenerationConfig(),
    prompt: PromptConfig = PromptConfig(),
    stop_at_answer: bool = True,
    progress: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """Several jobs (problems, arm, rows file), each on its own problems, decoded as one
    continuous batch; rows per job in the order of its problems. A sequence's sampling seed is
    its problem's number in its job, as when each job decodes alone. The engine decides how the
    arms share the batch (`workbench.engine.generation.decode`)."""
    decoder = _Decoder(bridge, generation, prompt, stop_at_answer, progress)
    return decoder.run(jobs)


@dataclass(frozen=True)
class _Decoder:
    """Jobs decoded and graded under one decoding setup."""

    bridge: Any
    generation: GenerationConfig
    prompt: PromptConfig
    stop_at_answer: bool
    progress: bool

    def run(
        self, jobs: Mapping[str, Job], intervention: ContextManager[Any] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Decode what the jobs' files lack (one call; `intervention` and each steered job's
        hooks on its own rows active throughout), write rows as they finish, return all."""
        done = {name: self._resumed(job.out) for name, job in jobs.items()}
        todo = [
            (name, i)
            for name, job in jobs.items()
            for i, p in enumerate(job.problems)
            if p.id not in done[name]
        ]
        n_all = sum(len(job.problems) for job in jobs.values())
        desc = "+".join(jobs) if len(jobs) <= 3 else f"{len(jobs)} arms"
        bar = tqdm(total=n_all, initial=n_all - len(todo), desc=desc, disable=not self.progress)

        tally = [
            sum(len(d) for d in done.values()),
            sum(r["correct"] for d in done.values() for r in d.values()),
        ]

        def finished(k: int, completion: Completion) -> None:
            name, i = todo[k]
            job = jobs[name]
            row = _row(job.problems[i], completion, job.method, self.prompt.answer_format, call)
            if job.out is not None:
                append_jsonl(job.out, [row])
            if k in recorded:
                job.recorder.complete(k, row["id"], len(row["tokens"]), bool(row["correct"]))
            done[name][row["id"]] = row
            tally[0] += 1
            tally[1] += bool(row["correct"])
            bar.update(1)
            bar.set_postfix(acc=f"{tally[1] / tally[0]:.2f}")

        recorded = self._recorded(jobs, todo)
        call = decode_call_id()
        if todo:
            problems = [jobs[n].problems[i] for n, i in todo]
            arms = {n: resolve(*j.arm, self.bridge) for n, j in jobs.items() if j.arm is not None}
            decode(
                self.bridge,
                encode_problems(self.bridge.tokenizer, problems, self.prompt),
                self.generation,
                stop=stop_rule(self.prompt) if self.stop_at_answer else None,
                arms=[arms.get(n) for n, _ in todo],
                intervention=intervention,
                observers=[r.recording(rows) for r, rows in _by_recorder(jobs, todo, recorded)],
                seeds=[i for _, i in todo],
                on_complete=finished,
                feed_final=bool(recorded),
            )
        bar.close()
        return {name: [done[name][p.id] for p in job.problems] for name, job in jobs.items()}

    @staticmethod
    def _recorded(jobs: Mapping[str, Job], todo: list[tuple[str, int]]) -> set[int]:
        """The decode sequences (places in `todo`) whose states a job's recorder records."""
        have = {n: j.recorder.recorded_ids for n, j in jobs.items() if j.recorder is not None}
        recorded = set()
        for k, (name, i) in enumerate(todo):
            if name in have and jobs[name].problems[i].id not in have[name]:
                recorded.add(k)
        return recorded

    @staticmethod
    def _resumed(out: str | Path | None) -> dict[str, dict[str, Any]]:
        if out is None:
            return {}
        done = {r["id"]: r for r in read_rows(out)}  # one per problem, the first if written twice
        if done:
            logger.info("%s: resuming, %d problems already done", out, len(done))
        return done


def _by_recorder(
    jobs: Mapping[str, Job], todo: list[tuple[str, int]], recorded: set[int]
) -> list[tuple[StateRecorder, list[int]]]:
    """Each recorder with the decode sequences it records."""
    groups: dict[int, tuple[StateRecorder, list[int]]] = {}
    for k in sorted(recorded):
        recorder = jobs[todo[k][0]].recorder
        groups.setdefault(id(recorder), (recorder, []))[1].append(k)
    return list(groups.values())
