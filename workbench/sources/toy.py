"""A toy task and a toy model, so that every stage can run end to end in seconds without a download.

A random tiny model answers nothing right, which leaves no success class to fit a direction on.
The toy model is the tiny Qwen2 of `workbench.sources.models` (character tokenizer, 2 layers, width
64) trained for a few hundred steps on single-digit sums (``What is 3 + 5?`` -> ``\\boxed{8}``): it
learns the answer format and some of the sums, so its greedy answers are partly right and partly
wrong, graded by the real grader. It is for smoke runs and tutorials, not for results:
``--model.name toy --als.dataset toy`` (notebooks: ``ALS_SMOKE=1``).

Train and test are disjoint by construction: the pair (a, b) is a test problem iff
``(a + 3b) % 5 == 0`` (20 of the 100 pairs). The model is trained on the train pairs only.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import torch

from workbench.core.problems import Problem
from workbench.core.prompts import encode_prompts
from workbench.errors import WorkbenchError
from workbench.sources.tiny import build_tiny_model, cache_root

__all__ = ["TOY_SPLITS", "build_toy_model", "toy_model_dir", "toy_problems"]

TOY_SPLITS = ("train", "test")
_STEPS = 250
_VERSION = 1


def toy_problems(split: str) -> list[Problem]:
    """The sums ``a + b`` (0 <= a, b <= 9) of `split`, in a fixed shuffled order."""
    if split not in TOY_SPLITS:
        raise WorkbenchError(f"unknown split {split!r} of toy; valid: {', '.join(TOY_SPLITS)}")
    pairs = [(a, b) for a in range(10) for b in range(10)]
    pairs = [(a, b) for a, b in pairs if ((a + 3 * b) % 5 == 0) == (split == "test")]
    random.Random(0).shuffle(pairs)
    return [
        Problem(
            id=f"toy/{split}/{a}+{b}",
            family="gsm8k",
            question=f"What is {a} + {b}?",
            answer=str(a + b),
            meta={"dataset": "toy", "split": split},
        )
        for a, b in pairs
    ]


def build_toy_model(folder: str | Path, *, steps: int = _STEPS, seed: int = 0) -> Path:
    """Build the tiny model in `folder` and train it on the toy train split (seconds on a CPU)."""
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    folder = build_tiny_model(folder, n_layers=2, d_model=64, seed=seed)
    tok = AutoTokenizer.from_pretrained(folder)
    model = Qwen2ForCausalLM.from_pretrained(folder).train()
    problems = toy_problems("train")
    prompts = encode_prompts(tok, [p.question for p in problems])
    answers = [tok(f"\\boxed{{{p.answer}}}")["input_ids"] + [tok.eos_token_id] for p in problems]
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        idx = torch.randint(len(problems), (32,), generator=gen).tolist()
        seqs = [prompts[i] + answers[i] for i in idx]
        ids = torch.full((len(seqs), max(map(len, seqs))), tok.pad_token_id)
        labels = torch.full_like(ids, -100)  # loss on the answer tokens only
        for r, i in enumerate(idx):
            ids[r, : len(seqs[r])] = torch.tensor(seqs[r])
            labels[r, len(prompts[i]) : len(seqs[r])] = torch.tensor(answers[i])
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().save_pretrained(folder)
    return Path(folder)


def toy_model_dir() -> Path:
    """The toy model's folder in the model cache, built (and trained) on first use."""
    target = cache_root() / f"toy-addition-v{_VERSION}"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    work = target.with_name(f"{target.name}.partial-{random.getrandbits(32):08x}")
    build_toy_model(work)
    if (target / "model.safetensors").exists():  # another process finished first
        shutil.rmtree(work)
    else:
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    return target
