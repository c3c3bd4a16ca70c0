"""Cost of one decoding step by rows per step, with either attention path.

Prefills `--width` random tokens per row (KV cache), then times `--steps` single-token steps and
keeps the median, for each `--batch-sizes` value, with the HF module's attention kernel (what the
workbench's passes use: `workbench.core.native_attention`) and, unless `--sdpa-only`, with
TransformerLens's own eager attention (forced by a no-op hook on ``blocks.0.attn.hook_pattern``),
and with `--concat-cache`, with transformers' own `DynamicLayer` cache, which appends by
concatenation, instead of the workbench's in-place growing layers (`workbench.core.kv_cache`).
Last line: ``step_s=<median seconds per step at the largest batch, sdpa>``.

    python benchmarks/step_cost.py --model embedded --batch-sizes 1,8,16,32,64
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Sequence

import torch

from workbench.core.kv_cache import cache_kwargs, new_cache
from workbench.core.native_attention import native_attention
from workbench.sources.models import load_model


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--batch-sizes", default="1,8,16,32,64")
    parser.add_argument("--width", type=int, default=300, help="cached positions per row")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--sdpa-only", action="store_true")
    parser.add_argument("--concat-cache", action="store_true")
    return parser.parse_args(argv)


def step_seconds(bridge, rows: int, width: int, steps: int, path, make_cache=new_cache) -> float:
    """Median seconds of a single-token step over `rows` rows with `width` cached positions."""
    g = torch.Generator().manual_seed(0)
    vocab = int(bridge.cfg.d_vocab)
    ids = torch.randint(min(100, vocab - 1), min(20_000, vocab), (rows, width + steps), generator=g)
    mask = torch.ones(rows, width, dtype=torch.long)
    kwargs = {"return_type": "logits", "logits_to_keep": 1}
    times = []
    with torch.inference_mode(), path(bridge):
        cache = make_cache(bridge)
        bridge(ids[:, :width], attention_mask=mask, **kwargs, **cache_kwargs(bridge, cache))
        for i in range(steps):
            mask = torch.cat([mask, mask.new_ones((rows, 1))], dim=1)
            start = time.perf_counter()
            step = ids[:, width + i : width + i + 1]
            bridge(step, attention_mask=mask, **kwargs, **cache_kwargs(bridge, cache))
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
    last = 0.0
    for rows in (int(b) for b in args.batch_sizes.split(",")):
        cells = []
        for name, (path, make_cache) in paths.items():
            s = step_seconds(bridge, rows, args.width, args.steps, path, make_cache)
            cells.append(f"{name} {s:.3f} s ({rows / s:.1f} tok/s)")
            if name == "sdpa":
                last = s
        print(f"rows={rows}: " + ", ".join(cells), flush=True)
    print(f"step_s={last:.3f}")


if __name__ == "__main__":
    main()
