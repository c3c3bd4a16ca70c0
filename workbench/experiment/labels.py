"""Which fit generations count as successes: graded against the gold answer, or self-verified.

The directions are success centroid minus failure centroid, so the label source decides what
"success" means. ``gold`` (the default) grades each generation against the gold answer
(`workbench.core.grading`). ``self`` is the ALS authors' choice: the model checks its own solution
with four verification prompts, and the generation is a success only if all four pass (the
verifiers of `workbench.methods.latentseek`; reward 0), all generations' prompts decoded together.
The labels stage writes the self labels beside the gold ones (`fit/labels.jsonl`, resumable), and
`label_agreement` reports how far the two sources agree.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Literal

import torch
from jaxtyping import Bool
from sklearn.metrics import cohen_kappa_score
from torch import Tensor
from tqdm.auto import tqdm

from workbench.core.activations import ActivationSet
from workbench.core.artifacts import append_jsonl, read_rows
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.sequences import Completion
from workbench.errors import WorkbenchError
from workbench.experiment.rundir import RunDir
from workbench.methods.latentseek import (
    VERIFIERS,
    LatentSeekConfig,
    verdict_reward,
    verifier_prompts,
)

__all__ = ["LABEL_SOURCES", "LabelSource", "fit_labels", "label_agreement", "self_verify_fit"]

LabelSource = Literal["gold", "self"]
LABEL_SOURCES: tuple[str, ...] = ("gold", "self")


def self_verify_fit(
    bridge: Any,
    run: RunDir,
    *,
    data_dir: str | None = None,
    cfg: LatentSeekConfig = LatentSeekConfig(),
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, bool]:
    """The labels stage: self-verify the fit generations not yet labelled (the first `limit` in
    the fit split's order, or all); return id -> label of every labelled one.

    The four verification prompts of every generation to label are decoded together, in batches
    of the run's batch size (continuous batching); a generation's label is written as soon as its
    four answers are in, so an interrupted stage resumes where it stopped."""
    done = {r["id"]: r for r in read_rows(run.labels_path)}
    problems = {p.id: p for p in run.problems("fit", data_dir=data_dir)}
    order = {pid: i for i, pid in enumerate(problems)}
    rows = sorted(run.rows("fit", "cot"), key=lambda r: order[r["id"]])[:limit]
    todo = [r for r in rows if r["id"] not in done]
    prompts, owner, slot = [], [], []
    for j, row in enumerate(todo):
        for k, p in enumerate(verifier_prompts(bridge.tokenizer, problems[row["id"]], row["text"])):
            prompts.append(p)
            owner.append(j)
            slot.append(k)
    answers: dict[int, dict[int, Completion]] = defaultdict(dict)
    bar = tqdm(
        total=len(rows), initial=len(rows) - len(todo), desc="self-verify", disable=not progress
    )

    def finished(i: int, completion: Completion) -> None:
        j = owner[i]
        answers[j][slot[i]] = completion
        if len(answers[j]) < len(VERIFIERS):
            return
        row, got = todo[j], [answers[j][k] for k in range(len(VERIFIERS))]
        reward = verdict_reward([c.text for c in got])
        label = {
            "id": row["id"],
            "gold": bool(row["correct"]),
            "self": reward == 0.0,
            "reward": reward,
            "verifier_tokens": sum(len(c.tokens) for c in got),
        }
        append_jsonl(run.labels_path, [label])
        done[row["id"]] = label
        bar.update(1)

    if prompts:
        gen = GenerationConfig(
            max_new_tokens=cfg.verifier_max_new_tokens, batch_size=run.generation().batch_size
        )
        decode(bridge, prompts, gen, on_complete=finished)
    bar.close()
    return {i: bool(r["self"]) for i, r in done.items()}


def fit_labels(run: RunDir, source: LabelSource, aset: ActivationSet) -> Bool[Tensor, " n"]:
    """Success labels of the fit generations of `aset`, in its order, from `source` (gold: the
    labels cached with the states)."""
    if source not in LABEL_SOURCES:
        raise WorkbenchError(f"unknown label source {source!r}; use {', '.join(LABEL_SOURCES)}")
    if source == "gold":
        return aset.labels
    by_id = {r["id"]: bool(r["self"]) for r in read_rows(run.labels_path)}
    ids = aset.problem_ids
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise WorkbenchError(
            f"{len(missing)} fit generations have no {source} label (e.g. {missing[0]}); "
            f"run the labels stage first: als stage labels {run.root}"
        )
    return torch.tensor([by_id[i] for i in ids], dtype=torch.bool)


def label_agreement(run: RunDir) -> dict[str, Any] | None:
    """How the gold and self labels of the fit generations agree (None before the labels stage):
    counts, the agreement rate and Cohen's kappa."""
    rows = read_rows(run.labels_path)
    if not rows:
        return None
    gold = [bool(r["gold"]) for r in rows]
    self_ = [bool(r["self"]) for r in rows]
    agree = sum(g == s for g, s in zip(gold, self_, strict=True))
    kappa = cohen_kappa_score(gold, self_) if len(set(gold) | set(self_)) > 1 else float("nan")
    return {
        "n": len(rows),
        "gold_success": sum(gold),
        "self_success": sum(self_),
        "agree": agree,
        "agreement": agree / len(rows),
        "cohen_kappa": float(kappa),
    }
