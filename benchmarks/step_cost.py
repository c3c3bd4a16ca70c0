"""Cost of one decoding step by rows per step, with either attention path.

Prefills `--width` random tokens per row (KV cache), then times `--steps` single-token steps and
keeps the median, for each `--batch-sizes` value, with the HF module's attention kernel (what the
workbench's passes use: `workbench.engine.native_attention`) and, unless `--sdpa-only`, with
TransformerLens's own eager attention (forced by a no-op hook on ``blocks.0.attn.hook_pattern``),
with `--concat-cache`, with transformers' own `DynamicLayer` cache, which appends by
concatenation, instead of the workbench's in-place growing layers (`workbench.engine.kv_cache`), and
with `--hf`, on a separate Hugging Face copy of the weights called directly, as `generate` calls it
(its own sdpa attention and concatenating cache, no bridge): what the bridge costs a step.
Last line: ``step_s=<median seconds per step at the largest batch, sdpa>``.

    python benchmarks/step_cost.py --model embedded --batch-sizes 1,8,16,32,64
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import time
from collections.abc import Sequence

import torch
from generation_throughput import hf_copy

from workbench.engine.kv_cache import cache_kwargs, new_cache
from workbench.engine.native_attention import native_attention
from workbench.sources.models import load_model


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--batch-sizes", default="1,8,16,32,64")
    parser.add_argument("--width", type=int, default=300, help="cached positions per row")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--sdpa-only", action="store_true")
    parser.add_argument("--concat-cache", action="store_true")
    parser.add_argument("--hf", action="store_true", help="also time the bare HF model")
    return parser.parse_args(argv)


def step_seconds(bridge, rows: int, width: int, steps: int, path, make_cache=new_cache) -> float:
    """Median seconds of a single-token step over `rows` rows with `width` cached positions."""

    def forward(ids, mask, cache):
        kwargs = {"return_type": "logits", "logits_to_keep": 1, **cache_kwargs(bridge, cache)}
        bridge(ids, attention_mask=mask, **kwargs)

    with path(bridge):
        return _median_step(
            forward, lambda: make_cache(bridge), int(bridge.cfg.d_vocab), rows, width, steps
        )


def hf_step_seconds(model, rows: int, width: int, steps: int) -> float:
    """As `step_seconds`, for a bare Hugging Face model and its own dynamic cache."""
    from transformers import DynamicCache

    def forward(ids, mask, cache):
        model(
            input_ids=ids,
            attention_mask=mask,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )

    vocab = model.config.vocab_size
    return _median_step(
        forward, lambda: DynamicCache(config=model.config), vocab, rows, width, steps
    )


def _median_step(forward, make_cache, vocab: int, rows: int, width: int, steps: int) -> float:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(min(100, vocab - 1), min(20_000, vocab), (rows, width + steps), generator=g)
    mask = torch.ones(rows, width, dtype=torch.long)
    times = []
    with torch.inference_mode():
        cache = make_cache()
        forward(ids[:, :width], mask, cache)
        for i in range(steps):
            mask = torch.cat([mask, mask.new_ones((rows, 1))], dim=1)
            start = time.perf_counter()
            forward(ids[:, width + i : width + i + 1], mask, cache)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def concat_cache(bridge):
    """transformers' own dynamic cache: every append copies the whole cache."""
    from transformers import DynamicCache

    return DynamicCache(config=bridge.original_model.config)


@contextlib.contextmanager
def bridge_attention(bridge):
    with bridge.hooks(fwd_hooks=[("blocks.0.attn.hook_pattern", lambda x, hook: x)]):
        yield


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    bridge = load_model(args.model, self_check=False)
    print(f"model={args.model} width={args.width} torch_threads={torch.get_num_threads()}")
    paths = {"sdpa": (native_attention, new_cache)}
    if args.concat_cache:
        paths["sdpa, concatenating cache"] = (native_attention, concat_cache)
    if not args.sdpa_only:
        paths["bridge"] = (bridge_attention, new_cache)
    timers = {
        name: functools.partial(step_seconds, bridge, path=path, make_cache=make_cache)
        for name, (path, make_cache) in paths.items()
    }
    if args.hf:
        hf_model = hf_copy(args.model, torch.device(bridge.cfg.device), bridge.cfg.dtype)
        timers["bare HF model"] = functools.partial(hf_step_seconds, hf_model)
    last = 0.0
    for rows in (int(b) for b in args.batch_sizes.split(",")):
        cells = []
        for name, timer in timers.items():
            s = timer(rows=rows, width=args.width, steps=args.steps)
            cells.append(f"{name} {s:.3f} s ({rows / s:.1f} tok/s)")
            if name == "sdpa":
                last = s
        print(f"rows={rows}: " + ", ".join(cells), flush=True)
    print(f"step_s={last:.3f}")


if __name__ == "__main__":
    main()
