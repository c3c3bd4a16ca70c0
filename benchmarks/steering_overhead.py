"""Steering overhead: cost per generated token of `steer` hooks during batched decoding.

The same GSM8K test prompts are decoded (greedy, KV cache, batch 8 by default) three ways in one
run: unsteered; steered with tau = 2.0 (cos < 2 always holds: every generated token is steered);
steered with tau = -2.0 (never holds: the hook runs, computes the cosine, and changes nothing).
The steered ways hook the middle layer (or `--layers`) with a small relative alpha (0.05).

Steering may change what is generated, and so how long sequences run, so the comparison is per
generated token (seconds / generated tokens, EOS included), not total time. Each way is warmed up
once, then the ways are interleaved over `--repeats` rounds (limits drift); the best round counts.
The last line is ``overhead=<r>``: seconds per token always-fires / unsteered; the lines before it
give the never-fires ratio and the transient one (the authors' update: newest position only, the KV
cache refilled without the nudge, so each pass runs twice from the steered position).

    python benchmarks/steering_overhead.py --model embedded
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Sequence

import torch

from workbench.core.directions import LayerDirections
from workbench.core.prompts import encode_prompts
from workbench.core.steering import SteeringSpec, steer
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.hooks import model_shape
from workbench.sources.data import load_problems
from workbench.sources.models import ModelConfig, load_model
from workbench.sources.runtime import resolve_device

ALPHA = 0.05
WAYS: dict[str, dict | None] = {
    "unsteered": None,
    "always-fires": {"tau": 2.0},
    "never-fires": {"tau": -2.0},
    "transient": {"tau": 2.0, "positions": "newest", "persistence": "transient"},
}
"""Each way's `SteeringSpec` settings (None: no hooks). 'transient' is the ALS authors' update:
the newest position of every pass, always, and the KV cache refilled without the nudge."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded", help="'embedded', 'tiny' or a HF folder")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="cap per sequence")
    parser.add_argument("--n-prompts", type=int, default=8, help="GSM8K test questions used")
    parser.add_argument("--batch-size", type=int, default=8, help="sequences decoded together")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; best counts")
    parser.add_argument(
        "--layers", default=None, help="comma-separated layers to steer (default: middle layer)"
    )
    args = parser.parse_args(argv)
    if min(args.max_new_tokens, args.n_prompts, args.batch_size, args.repeats) < 1:
        parser.error("--max-new-tokens, --n-prompts, --batch-size and --repeats must be >= 1")
    return args


def random_directions(n_layers: int, d_model: int, seed: int = 0) -> LayerDirections:
    """Random directions for every layer, mean_norm 1 (alpha is then absolute).

    The hook's cost (cosine, mask, update, where) does not depend on what the direction means,
    so random centroids measure the same overhead as fitted ones.
    """
    gen = torch.Generator().manual_seed(seed)
    return LayerDirections(
        layers=tuple(range(n_layers)),
        success_mean=torch.randn(n_layers, d_model, generator=gen),
        failure_mean=torch.randn(n_layers, d_model, generator=gen),
        mean_norm=torch.ones(n_layers),
        n_success=0,
        n_failure=0,
        provenance={"source": "random (benchmark)"},
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    device = resolve_device(args.device)
    bridge = load_model(ModelConfig(name=args.model, device=args.device, dtype=args.dtype))
    n_layers, d_model = model_shape(bridge)
    if args.layers is None:
        layers = (n_layers // 2,)
    else:
        layers = tuple(int(x) for x in args.layers.split(",") if x.strip())
    directions = random_directions(n_layers, d_model)
    problems = load_problems("gsm8k", "test", limit=args.n_prompts)
    prompts = encode_prompts(bridge.tokenizer, [p.question for p in problems])
    cfg = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    print(
        f"model={args.model} device={device} dtype={bridge.cfg.dtype} "
        f"torch_threads={torch.get_num_threads()} "
        f"attention={bridge.original_model.config._attn_implementation}"
    )
    print(
        f"prompts={len(prompts)} batch={args.batch_size} max_new_tokens={args.max_new_tokens} "
        f"layers={list(layers)} alpha={ALPHA} (relative, mean_norm=1) repeats={args.repeats}"
    )

    def run(way: dict | None) -> tuple[list, float, float]:
        """(completions, seconds, fire rate) of one decode of all prompts."""
        if way is None:
            ctx = contextlib.nullcontext(None)
        else:
            spec = SteeringSpec(layers=layers, alpha=ALPHA, **way)
            ctx = steer(bridge, spec, directions)
        with ctx as stats:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            completions = decode(bridge, prompts, cfg)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
        return completions, seconds, (stats.rate() if stats is not None else 0.0)

    for way in WAYS.values():  # warm-up
        run(way)
    best: dict[str, tuple[float, int, float, float, list]] = {}
    for _ in range(args.repeats):
        for name, way in WAYS.items():
            completions, seconds, rate = run(way)
            tokens = sum(len(c.tokens) + (c.finish == "eos") for c in completions)
            per_token = seconds / tokens
            if name not in best or per_token < best[name][0]:
                best[name] = (per_token, tokens, seconds, rate, completions)

    reference = [c.tokens for c in best["unsteered"][4]]
    for name, (per_token, tokens, seconds, rate, completions) in best.items():
        same = sum(c.tokens == r for c, r in zip(completions, reference, strict=True))
        print(
            f"{name:<12} tokens={tokens} seconds={seconds:.3f} tokens/s={tokens / seconds:.2f} "
            f"s/token={per_token * 1e3:.3f}ms fire_rate={rate:.3f} "
            f"same_tokens_as_unsteered={same}/{len(completions)}"
        )
    base = best["unsteered"][0]
    print(f"never_fires_overhead={best['never-fires'][0] / base:.3f}")
    print(f"transient_overhead={best['transient'][0] / base:.3f}")
    print(f"overhead={best['always-fires'][0] / base:.3f}")


if __name__ == "__main__":
    main()
