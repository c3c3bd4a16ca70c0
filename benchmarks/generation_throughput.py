"""Generation throughput: the workbench's `decode` against plain Hugging Face `model.generate`.

Both decode the same GSM8K test prompts (`encode_prompts`) greedily with a KV cache, on the same
weights and dtype, at batch 1 and batch 8 (left-padded; `--batch-sizes` changes them). Hugging
Face runs on a separate copy of the model with its default attention (sdpa), loaded with
`from_pretrained` (for ``random:<shape>`` models: built again from the same seed): `load_model`
switches the attention implementation of its own copy in place, so it cannot be shared.

Hugging Face is forced to generate exactly `--max-new-tokens` per sequence (`min_new_tokens`).
The workbench is not forced (its tokenizer is left alone): a sequence that emits EOS stops early
and leaves the batch. So each method reports the tokens it actually generated (EOS included: it
cost a forward pass) and tokens/s = generated tokens / wall seconds.

Each (method, batch size) is warmed up once, then timed `--repeats` times (methods interleaved);
the best run counts. The last line is ``ratio=<x>``: workbench tokens/s / HF tokens/s at the
largest batch size. `--static` adds `decode_static` (static batches and KV cache, the step replayed
from a CUDA graph on CUDA) as a third method, with ``static_ratio=<x>`` before that line.

    python benchmarks/generation_throughput.py --model embedded
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from workbench.core.prompts import encode_prompts
from workbench.engine.batching import left_pad
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.engine.static import decode_static
from workbench.sources.architectures import RANDOM_PREFIX, build_random_model
from workbench.sources.data import load_problems
from workbench.sources.embedded import packaged_model
from workbench.sources.models import ModelConfig, load_model
from workbench.sources.runtime import resolve_device, resolve_dtype
from workbench.sources.tiny import cache_root


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded", help="'embedded', 'tiny' or a HF folder")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="tokens per sequence")
    parser.add_argument("--n-prompts", type=int, default=8, help="GSM8K test questions used")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs; the best counts")
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated batch sizes")
    parser.add_argument("--static", action="store_true", help="also time decode_static")
    args = parser.parse_args(argv)
    if args.max_new_tokens < 1 or args.n_prompts < 1 or args.repeats < 1:
        parser.error("--max-new-tokens, --n-prompts and --repeats must be >= 1")
    try:
        args.batch_sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    except ValueError:
        parser.error(
            f"--batch-sizes must be whole numbers separated by commas, not {args.batch_sizes!r}"
        )
    if min(args.batch_sizes) < 1:
        parser.error("--batch-sizes must be >= 1")
    return args


def hf_folder(name: str) -> Path | str:
    """Where `load_model(name)` read its weights from."""
    packaged = packaged_model(name)  # embedded, coder-1.5b: the converted cache folder
    if packaged is not None:
        return packaged.model_dir()
    if name == "tiny":
        return cache_root() / "tiny-qwen2"  # built by load_model("tiny")
    return name


def hf_copy(name: str, device: torch.device, dtype: torch.dtype):
    """A second Hugging Face model with the weights `load_model(name)` loaded."""
    from transformers import AutoModelForCausalLM

    if name.startswith(RANDOM_PREFIX):
        return build_random_model(name[len(RANDOM_PREFIX) :], device, dtype)[0]
    return AutoModelForCausalLM.from_pretrained(hf_folder(name), dtype=dtype).to(device).eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def chunks(prompts: Sequence[Sequence[int]], size: int) -> list[Sequence[Sequence[int]]]:
    return [prompts[lo : lo + size] for lo in range(0, len(prompts), size)]


def run_workbench(
    bridge, prompts: Sequence[Sequence[int]], batch: int, max_new_tokens: int, static: bool = False
) -> tuple[int, int]:
    """(generated tokens, sequences that ended before max_new_tokens); `static`: through
    `decode_static` (a CUDA graph on CUDA) instead of `decode`."""
    cfg = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=batch, do_sample=False)
    run = decode_static if static else decode
    completions = run(bridge, prompts, cfg)
    tokens = sum(len(c.tokens) + (c.finish == "eos") for c in completions)
    early = sum(c.finish != "length" for c in completions)
    return tokens, early


def run_hf(
    model, prompts: Sequence[Sequence[int]], batch: int, max_new_tokens: int, pad_id: int
) -> tuple[int, int]:
    """(generated tokens, sequences that ended before max_new_tokens)."""
    device = model.device
    tokens = early = 0
    for chunk in chunks(prompts, batch):
        ids, mask = left_pad(chunk, pad_id, device)
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
            use_cache=True,
        )
        generated = out.shape[1] - ids.shape[1]
        tokens += generated * len(chunk)
        early += len(chunk) * (generated < max_new_tokens)
    return tokens, early


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    bridge = load_model(ModelConfig(name=args.model, device=args.device, dtype=args.dtype))
    tok = bridge.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    # A separate copy for Hugging Face, with its default attention implementation.
    hf_model = hf_copy(args.model, device, dtype)

    problems = load_problems("gsm8k", "test", limit=args.n_prompts)
    prompts = encode_prompts(tok, [p.question for p in problems])
    lengths = [len(p) for p in prompts]
    threads = torch.get_num_threads()
    print(f"model={args.model} device={device} dtype={dtype} torch_threads={threads}")
    print(
        f"attention: workbench={bridge.original_model.config._attn_implementation} "
        f"hf={hf_model.config._attn_implementation}"
    )
    print(
        f"prompts={len(prompts)} prompt_tokens min/mean/max="
        f"{min(lengths)}/{sum(lengths) / len(lengths):.0f}/{max(lengths)} "
        f"max_new_tokens={args.max_new_tokens} repeats={args.repeats}"
    )

    methods: dict[str, Callable[[Sequence[Sequence[int]], int], tuple[int, int]]] = {
        "workbench": lambda ps, b: run_workbench(bridge, ps, b, args.max_new_tokens),
        "hf": lambda ps, b: run_hf(hf_model, ps, b, args.max_new_tokens, pad_id),
    }
    if args.static:
        methods["static"] = lambda ps, b: run_workbench(bridge, ps, b, args.max_new_tokens, True)
    best: dict[tuple[str, int], tuple[float, int, float, int]] = {}
    with torch.inference_mode():
        for batch in args.batch_sizes:
            for fn in methods.values():  # warm-up: the first batch of prompts
                fn(prompts[:batch], batch)
            sync(device)
            for _ in range(args.repeats):
                for name, fn in methods.items():
                    sync(device)
                    start = time.perf_counter()
                    tokens, early = fn(prompts, batch)
                    sync(device)
                    seconds = time.perf_counter() - start
                    rate = tokens / seconds
                    if (name, batch) not in best or rate > best[name, batch][0]:
                        best[name, batch] = (rate, tokens, seconds, early)

    for batch in args.batch_sizes:
        for name in methods:
            rate, tokens, seconds, early = best[name, batch]
            print(
                f"{name:<9} batch={batch} tokens={tokens} seconds={seconds:.3f} "
                f"tokens/s={rate:.2f} ended_early={early}/{len(prompts)}"
            )
    hf_rate = best["hf", args.batch_sizes[-1]][0]
    if args.static:
        print(f"static_ratio={best['static', args.batch_sizes[-1]][0] / hf_rate:.3f}")
    print(f"ratio={best['workbench', args.batch_sizes[-1]][0] / hf_rate:.3f}")


if __name__ == "__main__":
    main()
