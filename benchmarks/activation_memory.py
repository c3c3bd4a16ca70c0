"""Peak memory of residual caching: N generations x all layers (mean position), batch by batch.

`cache_activations` reduces each batch to per-layer means inside the hooks and writes a shard per
batch, so its working memory should be one batch's forward pass, whatever N. This script caches
N synthetic generations (random prompt and answer tokens of fixed lengths: the cost depends on the
lengths, not on the words) and reports the process's peak resident memory before and after, the
size of the written shards, and the size of the loaded `ActivationSet`; on a GPU also the peak
GPU memory allocated (by PyTorch) while caching, and how far above the weights it went.

    python benchmarks/activation_memory.py --model embedded --n 1000
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from workbench.core.activations import CacheConfig, cache_activations
from workbench.core.prompts import encode_prompts
from workbench.sources.data import Problem
from workbench.sources.models import ModelConfig, load_model


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n", type=int, default=1000, help="generations to cache")
    parser.add_argument("--gen-tokens", type=int, default=32, help="generated tokens per problem")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    bridge = load_model(ModelConfig(name=args.model, device=args.device))
    vocab = bridge.cfg.d_vocab
    g = torch.Generator().manual_seed(0)
    problems = [
        Problem(id=f"synthetic/{i}", family="gsm8k", question=f"What is {i} plus {i}?", answer="0")
        for i in range(args.n)
    ]
    rows = [
        {
            "id": p.id,
            "correct": i % 2 == 0,
            "tokens": torch.randint(0, min(vocab, 5000), (args.gen_tokens,), generator=g).tolist(),
        }
        for i, p in enumerate(problems)
    ]
    prompt_len = sum(len(x) for x in encode_prompts(bridge.tokenizer, [problems[0].question]))
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: page the weights in before measuring
        cache_activations(bridge, problems[:8], rows, Path(tmp), CacheConfig(), progress=False)
    cuda = bridge.cfg.device is not None and torch.device(bridge.cfg.device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        resident = torch.cuda.memory_allocated() / 2**20
    before = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        aset = cache_activations(
            bridge,
            problems,
            rows,
            Path(tmp),
            CacheConfig(batch_size=args.batch_size),
            progress=False,
        )
        seconds = time.perf_counter() - start
        disk = sum(f.stat().st_size for f in Path(tmp).glob("*.safetensors")) / 2**20
    after = peak_rss_mb()
    loaded = sum(v.numel() * v.element_size() for v in aset.states.values()) / 2**20
    print(
        f"model={args.model} n={args.n} layers={len(aset.layers)} d_model={bridge.cfg.d_model} "
        f"prompt_tokens~{prompt_len} gen_tokens={args.gen_tokens} batch={args.batch_size}"
    )
    print(
        f"seconds={seconds:.1f} shards_on_disk={disk:.1f}MiB loaded_set={loaded:.1f}MiB "
        "(last_prompt + mean_generated)"
    )
    print(
        f"peak_rss_before={before:.0f}MiB peak_rss_after={after:.0f}MiB "
        f"growth={after - before:.0f}MiB"
    )
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20
        print(
            f"gpu_allocated_before={resident:.0f}MiB gpu_peak={peak:.0f}MiB "
            f"gpu_peak_above_resident={peak - resident:.0f}MiB"
        )


if __name__ == "__main__":
    main()
