"""The real workload: the first GSM8K test problems decoded as the main job decodes them.

Greedy chain of thought with the run's prompt, each sequence stopped as soon as its answer is
complete (`answer_complete`: a closed ``\\boxed{}`` or a finished ``####`` line) or at the token cap
(512 by default). Two ways, at the same batch size:

- **workbench**: `decode` with continuous batching (a finished row's place is taken by a waiting
  prompt, prefilled and joined to the running batch; longest prompts first);
- **generate**: Hugging Face `model.generate` on a separate copy of the weights (its default sdpa
  attention), static batches in problem order, the same stop rule as a `StoppingCriteria` (a
  finished row is padded until the whole batch is done, as `generate` does).

Per (method, batch size): problems/s, useful tokens/s (tokens up to each sequence's stop) and how
many problems came out token-identical to the other method. The last line is ``ratio=<x>``:
workbench problems/s at its best batch size over `generate` problems/s at its best.

    python benchmarks/workload_throughput.py --model embedded --n 64 --batch-sizes 8,32
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import torch
from generation_throughput import chunks, hf_copy, sync

from workbench.core.prompts import answer_complete, encode_prompts
from workbench.engine.batching import left_pad
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.sources.data import load_problems
from workbench.sources.models import ModelConfig, load_model
from workbench.sources.runtime import resolve_device, resolve_dtype


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="embedded", help="'embedded', 'coder-1.5b', 'tiny' or a HF folder"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    parser.add_argument("--n", type=int, default=64, help="first N GSM8K test problems")
    parser.add_argument("--max-new-tokens", type=int, default=512, help="token cap")
    parser.add_argument("--batch-sizes", default="8,32", help="comma-separated batch sizes")
    args = parser.parse_args(argv)
    try:
        args.batch_sizes = tuple(int(b) for b in args.batch_sizes.split(","))
    except ValueError:
        parser.error(f"--batch-sizes must be whole numbers like 8,32, not {args.batch_sizes!r}")
    if min(args.n, args.max_new_tokens, *args.batch_sizes) < 1:
        parser.error("--n, --max-new-tokens and --batch-sizes must be >= 1")
    return args


def run_workbench(bridge, prompts, batch: int, cap: int) -> list[tuple[int, ...]]:
    cfg = GenerationConfig(max_new_tokens=cap, batch_size=batch)
    return [c.tokens for c in decode(bridge, prompts, cfg, stop=answer_complete)]


class _AnswerComplete:
    """`generate`'s stopping criterion: per row, done once its generated text is complete."""

    def __init__(self, tokenizer, n_prompt: int) -> None:
        self.tokenizer, self.n_prompt = tokenizer, n_prompt

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.n_prompt :])
        return torch.tensor([answer_complete(t) for t in texts], device=input_ids.device)


def _until_stop(tokens: list[int], tokenizer, eos: set[int]) -> tuple[int, ...]:
    """The generated tokens a row keeps: up to its stop (as `decode` cuts), EOS and padding off."""
    kept: list[int] = []
    for t in tokens:
        if t in eos:
            break
        kept.append(t)
        if answer_complete(tokenizer.decode(kept)):
            break
    return tuple(kept)


def run_generate(model, tokenizer, prompts, batch: int, cap: int) -> list[tuple[int, ...]]:
    from transformers import StoppingCriteriaList

    pad_id = tokenizer.pad_token_id
    pad_id = tokenizer.eos_token_id if pad_id is None else pad_id
    cfg_eos = model.generation_config.eos_token_id
    cfg_eos = [cfg_eos] if isinstance(cfg_eos, int) else list(cfg_eos or [])
    eos = {tokenizer.eos_token_id, *cfg_eos} - {None}
    out = []
    for chunk in chunks(prompts, batch):
        ids, mask = left_pad(chunk, pad_id, model.device)
        gen = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=cap,
            do_sample=False,
            pad_token_id=pad_id,
            stopping_criteria=StoppingCriteriaList([_AnswerComplete(tokenizer, ids.shape[1])]),
        )
        out += [_until_stop(row.tolist(), tokenizer, eos) for row in gen[:, ids.shape[1] :]]
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    bridge = load_model(ModelConfig(name=args.model, device=args.device, dtype=args.dtype))
    hf_model = hf_copy(args.model, device, dtype)
    tok = bridge.tokenizer
    problems = load_problems("gsm8k", "test", limit=args.n)
    prompts = encode_prompts(tok, [p.question for p in problems])
    print(
        f"model={args.model} device={device} dtype={dtype} torch_threads={torch.get_num_threads()}"
        f" problems={len(prompts)} max_new_tokens={args.max_new_tokens}"
    )
    methods = {
        "workbench": lambda b: run_workbench(bridge, prompts, b, args.max_new_tokens),
        "generate": lambda b: run_generate(hf_model, tok, prompts, b, args.max_new_tokens),
    }
    rate: dict[str, float] = {}
    with torch.inference_mode():
        for batch in args.batch_sizes:
            outputs = {}
            for name, run in methods.items():
                sync(device)
                start = time.perf_counter()
                outputs[name] = run(batch)
                sync(device)
                seconds = time.perf_counter() - start
                tokens = sum(len(t) for t in outputs[name])
                rate[name] = max(rate.get(name, 0.0), len(prompts) / seconds)
                print(
                    f"{name:<9} batch={batch} seconds={seconds:.1f} "
                    f"problems/s={len(prompts) / seconds:.3f} tokens/s={tokens / seconds:.2f} "
                    f"tokens={tokens}"
                )
            same = sum(a == b for a, b in zip(*outputs.values(), strict=True))
            print(f"identical batch={batch}: {same}/{len(prompts)}")
    print(f"ratio={rate['workbench'] / rate['generate']:.3f}")


if __name__ == "__main__":
    main()
