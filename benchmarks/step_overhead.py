"""Per-step framework overhead: the workbench's `decode` against Hugging Face `generate` (CPU).

A proxy for the GPU gap (issue 31): on a GPU a 7-8B model's step is short, and what the workbench
adds per step (Python work per layer and per hook point) is what separates it from `generate`.
Here the models have the real layer count and layout of Qwen2.5-7B and Llama-3.1-8B (28 and 32
layers, grouped-query attention, their norms, MLPs, biases and rotary; `ARCHITECTURES`'
``*-layout`` shapes) at widths where a step's arithmetic costs next to nothing, so that a step's
time is the framework's own cost.

Both decode the same random prompts greedily with a KV cache on the same random weights (Hugging
Face on its own copy, built from the same seed; EOS unreachable, so every row runs to
`--new-tokens`), at each batch size, three ways for the workbench: unsteered, with a gated
steering hook at the middle layer (tau 0: the cosine gate fires on some tokens, not all), and with
the middle layer recorded (a hook that keeps each pass's newest states); and two ways through
`decode_static` (static KV cache and buffers, the step replayed from a CUDA graph on CUDA),
unsteered and with the same gated steering as row tensors. Seconds per step =
wall seconds / new tokens (one prefill and new-tokens - 1 single-token passes, for both). Every
way is warmed up once; then, over `--repeats` rounds, each way runs beside a `generate` call of its
own (the way first in even rounds, `generate` first in odd ones; the ways' order rotating from round
to round). Each line gives the best ms/step of the way and of `generate`, their ratio
(``best_ratio``), and ``ratio``: the median over rounds of the way's s/step over that of the
`generate` call beside it (paired, so that a stretch of machine slowness, which on a shared 2-core
machine outlasts a call, slows both sides of a ratio instead of one).

Last lines: ``static_ratio=<the same over the static ways>`` and ``ratio=<worst paired-median
ratio over shapes, batches and decode's ways>``.
`--device cuda --dtype bfloat16 --archs qwen2.5-7b,llama-3.1-8b` runs the same at the real shapes
on a GPU (`scripts/gpu_check.sh`).

    python benchmarks/step_overhead.py
    python benchmarks/step_overhead.py --smoke     # seconds: the tests' check that it runs
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import time
from collections.abc import Callable, Iterator, Sequence

import torch
from steering_overhead import random_directions

from workbench.core.steering import SteeringSpec, resolve, steer
from workbench.engine.batching import left_pad
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.hooks import resid_hook
from workbench.engine.static import decode_static
from workbench.sources.architectures import build_random_model
from workbench.sources.models import ModelConfig, load_model

WAYS = ("unsteered", "steered", "recorded")
"""The workbench's ways through `decode` (see the module docstring); Hugging Face always runs
unsteered."""
STATIC_WAYS = ("static", "static-steered")
"""The same through `decode_static` (static cache; a CUDA graph on CUDA), unsteered and with the
steered way's steering as row tensors."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="qwen2.5-7b-layout,llama-3.1-8b-layout")
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--new-tokens", type=int, default=48, help="tokens per sequence")
    parser.add_argument("--prompt-len", type=int, default=24, help="prompt tokens per row")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--device", default="cpu", help="cpu (the proxy), cuda, cuda:N")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16, float16")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, 4 tokens, 1 round")
    args = parser.parse_args(argv)
    if args.smoke:
        args.archs, args.batch_sizes, args.new_tokens, args.repeats = "tiny,tiny-llama", "1,2", 4, 1
    try:
        args.archs = tuple(a for a in args.archs.split(",") if a)
        args.batch_sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    except ValueError:
        parser.error(f"--batch-sizes must be whole numbers, not {args.batch_sizes!r}")
    if min(args.batch_sizes) < 1 or min(args.new_tokens, args.prompt_len, args.repeats) < 1:
        parser.error("--batch-sizes, --new-tokens, --prompt-len and --repeats must be >= 1")
    return args


@contextlib.contextmanager
def recorded(bridge, layer: int) -> Iterator[list[torch.Tensor]]:
    """Keep each pass's newest states at `layer` (what recording a layer costs a step)."""
    kept: list[torch.Tensor] = []

    def hook(x: torch.Tensor, hook) -> torch.Tensor:
        kept.append(x[:, -1].detach().clone())
        return x

    with bridge.hooks(fwd_hooks=[(resid_hook(layer), hook)]):
        yield kept


def steering(layer: int) -> SteeringSpec:
    """The steered ways' steering: gated at `layer`'s output (fires on some tokens, not all)."""
    return SteeringSpec(layers=(layer,), alpha=0.05, tau=0.0)


def way_context(bridge, way: str, layer: int, directions) -> contextlib.AbstractContextManager:
    if way == "steered":
        return steer(bridge, steering(layer), directions)
    if way == "recorded":
        return recorded(bridge, layer)
    return contextlib.nullcontext()


def timed(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def measure(bridge, hf, tok, prompts: list[list[int]], args: argparse.Namespace) -> dict:
    """Per way: (its best s/step, `generate`'s best, the median over rounds of the way's s/step
    over that of the `generate` call run right beside it). The paired median is the headline: a
    stretch of machine slowness slows both calls of a pair, and one lucky call moves nothing."""
    n_layers, d_model = int(bridge.cfg.n_layers), int(bridge.cfg.d_model)
    layer, directions = n_layers // 2, random_directions(n_layers, d_model)
    cfg = GenerationConfig(max_new_tokens=args.new_tokens, batch_size=len(prompts))
    device = torch.device(args.device)
    ids, mask = left_pad(prompts, tok.pad_token_id, device)

    def hf_generate() -> None:
        with torch.inference_mode():
            hf.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=args.new_tokens,
                min_new_tokens=args.new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )

    def workbench(way: str) -> None:
        with way_context(bridge, way, layer, directions):
            out = decode(bridge, prompts, cfg)
        if any(len(c.tokens) != args.new_tokens for c in out):
            raise SystemExit("a row ended early: the benchmark needs every row to run to length")

    def static(way: str) -> None:
        arm = resolve(steering(layer), directions, bridge) if way == "static-steered" else None
        out = decode_static(bridge, prompts, cfg, arms=[arm] * len(prompts))
        if any(len(c.tokens) != args.new_tokens for c in out):
            raise SystemExit("a row ended early: the benchmark needs every row to run to length")

    runs: dict[str, Callable[[], None]] = {"hf": hf_generate}
    runs |= {way: functools.partial(workbench, way) for way in WAYS}
    runs |= {way: functools.partial(static, way) for way in STATIC_WAYS}
    for fn in runs.values():  # warm-up
        fn()
    ways = [name for name in runs if name != "hf"]
    times: dict[str, list[float]] = {name: [] for name in runs}
    paired: dict[str, list[float]] = {way: [] for way in ways}
    for r in range(args.repeats):
        shift = r % len(ways)  # a different order each round: no way always runs first
        for way in ways[shift:] + ways[:shift]:
            pair = ("hf", way) if r % 2 else (way, "hf")  # and each side runs first half the time
            t = {name: timed(runs[name], device) / args.new_tokens for name in pair}
            paired[way].append(t[way] / t["hf"])
            for name in pair:
                times[name].append(t[name])
    return {
        way: (min(times[way]), min(times["hf"]), statistics.median(paired[way])) for way in ways
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    print(
        f"device={args.device} dtype={args.dtype} torch_threads={torch.get_num_threads()} "
        f"new_tokens={args.new_tokens} "
        f"prompt_len={args.prompt_len} repeats={args.repeats}"
    )
    worst, worst_static = 0.0, 0.0
    for arch in args.archs:
        cfg = ModelConfig(name=f"random:{arch}", device=args.device, dtype=args.dtype)
        bridge = load_model(cfg)
        hf, tok = build_random_model(arch, torch.device(args.device), getattr(torch, args.dtype))
        gen = torch.Generator().manual_seed(0)
        for batch in args.batch_sizes:
            prompts = torch.randint(3, 98, (batch, args.prompt_len), generator=gen).tolist()
            measured = measure(bridge, hf, tok, prompts, args)
            for way in WAYS + STATIC_WAYS:
                best, best_hf, ratio = measured[way]
                if way in WAYS:
                    worst = max(worst, ratio)
                else:
                    worst_static = max(worst_static, ratio)
                print(
                    f"arch={arch} layers={bridge.cfg.n_layers} batch={batch} way={way} "
                    f"workbench_ms={best * 1e3:.2f} hf_ms={best_hf * 1e3:.2f} "
                    f"best_ratio={best / best_hf:.3f} ratio={ratio:.3f}"
                )
    print(f"static_ratio={worst_static:.3f}")
    print(f"ratio={worst:.3f}")


if __name__ == "__main__":
    main()
