"""Cost of one nucleus-sampling step: the workbench's sampler vs a full-vocabulary sort.

Both draw a top-p sample for every row of a batch of logits (random, peaked like a language
model's: scaled Gaussian); the reference sorts the whole vocabulary, as `next_tokens` did before
it ranked only the top `_TOP_K_FIRST` tokens. Vocabulary 151,936 = Qwen2.5's (the embedded model).

    python benchmarks/sampling_step.py

Last line: ``sort_vs_workbench=<r>`` (how many times dearer the full sort is per step).
"""

from __future__ import annotations

import argparse
import time

import torch

from workbench.engine.config import GenerationConfig
from workbench.engine.sampling import next_tokens


def full_sort_step(logits: torch.Tensor, cfg: GenerationConfig, gens: list) -> torch.Tensor:
    probs = torch.softmax(logits / cfg.temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    sorted_probs = sorted_probs * (sorted_probs.cumsum(-1) - sorted_probs < cfg.top_p)
    picks = [torch.multinomial(sorted_probs[i], 1, generator=g) for i, g in enumerate(gens)]
    return order.gather(-1, torch.stack(picks)).squeeze(-1)


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="rows sampled per step")
    parser.add_argument("--vocab", type=int, default=151936)
    parser.add_argument("--scale", type=float, default=8.0, help="logit scale (peakedness)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    cfg = GenerationConfig(do_sample=True)  # the workbench's defaults: T 0.7, top-p 0.95
    logits = torch.randn(args.batch, args.vocab, generator=torch.Generator().manual_seed(0))
    logits *= args.scale
    gens = [torch.Generator().manual_seed(i) for i in range(args.batch)]
    rows = torch.arange(args.batch)
    ours = best_of(lambda: next_tokens(logits, rows, cfg, gens), args.repeats)
    sort = best_of(lambda: full_sort_step(logits, cfg, gens), args.repeats)
    print(f"threads={torch.get_num_threads()} batch={args.batch} vocab={args.vocab}")
    print(f"workbench sampler: {ours * 1e3:.2f} ms/step; full sort: {sort * 1e3:.2f} ms/step")
    print(f"sort_vs_workbench={sort / ours:.1f}")


if __name__ == "__main__":
    main()
