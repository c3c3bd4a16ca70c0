"""What recording the fit states while decoding costs, and what the in-place KV cache saves.

The first `--n` GSM8K test problems are decoded (greedy, stop at the answer, `--max-new-tokens`,
all in one batch) through `run_jobs`, as the fit stage decodes them, up to three ways in one
process, one after the other: with the workbench's cache (growing in place) and no recording; the
same while a `StateRecorder` records every layer's states, the early means and every token's state
at every layer (what the default run's fit stage keeps); and, with `--concat-cache`, with
transformers' own concatenating `DynamicLayer` cache and no recording. Every way must produce the
same tokens. One short decode warms up first. Last line: ``overhead=<r>``, recording seconds /
plain seconds.

    python benchmarks/recording_overhead.py --model embedded --n 16 --concat-cache
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import workbench.engine.generation as generation
from workbench.core.activations import CacheConfig
from workbench.core.probing import EARLY_KS
from workbench.core.recording import StateRecorder
from workbench.engine.config import GenerationConfig
from workbench.methods.cot import Job, run_jobs
from workbench.sources.data import load_problems
from workbench.sources.models import load_model


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--n", type=int, default=16, help="problems, decoded in one batch")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--concat-cache", action="store_true")
    return parser.parse_args(argv)


def concat_cache(bridge: Any) -> Any:
    """transformers' own dynamic cache: every append copies the whole cache."""
    from transformers import DynamicCache

    return DynamicCache(config=bridge.original_model.config)


def timed(
    bridge: Any, problems, gen: GenerationConfig, make_cache: Callable, record: bool
) -> tuple[float, list[list[int]]]:
    """Seconds of one decode of `problems`, and its tokens."""
    real = generation.new_cache
    generation.new_cache = make_cache
    try:
        with tempfile.TemporaryDirectory() as folder:
            cfg = CacheConfig(
                trajectory_layers=tuple(range(bridge.cfg.n_layers)),
                early_ks=EARLY_KS,
                batch_size=len(problems),
            )
            recorder = StateRecorder(bridge, folder, cfg) if record else None
            start = time.perf_counter()
            job = Job(problems, recorder=recorder)
            rows = run_jobs(bridge, {"fit": job}, generation=gen, progress=False)["fit"]
            seconds = time.perf_counter() - start
    finally:
        generation.new_cache = real
    return seconds, [r["tokens"] for r in rows]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    bridge = load_model(args.model, self_check=False)
    problems = load_problems("gsm8k", "test", limit=args.n)
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.n)
    ways = {"growing cache": (generation.new_cache, False)}
    ways["growing cache, recording every layer"] = (generation.new_cache, True)
    if args.concat_cache:
        ways["concatenating cache"] = (concat_cache, False)
    print(f"model={args.model} n={args.n} max_new_tokens={args.max_new_tokens}")
    timed(bridge, problems[:1], GenerationConfig(max_new_tokens=4), generation.new_cache, False)
    seconds, tokens = {}, {}
    for name, (make_cache, record) in ways.items():
        seconds[name], tokens[name] = timed(bridge, problems, gen, make_cache, record)
        n_tokens = sum(len(t) for t in tokens[name])
        print(f"{name}: {seconds[name]:.1f} s, {n_tokens} tokens", flush=True)
    same = all(t == tokens["growing cache"] for t in tokens.values())
    print(f"identical={same}")
    plain = seconds["growing cache"]
    if args.concat_cache:
        print(f"concat_over_growing={seconds['concatenating cache'] / plain:.3f}")
    print(f"overhead={seconds['growing cache, recording every layer'] / plain:.3f}")


if __name__ == "__main__":
    main()
