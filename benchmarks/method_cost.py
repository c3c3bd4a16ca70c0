"""Seconds per problem of SC@k, LatentSeek and ALS relative to CoT, on the same problems, one run.

All four use the workbench's batched, KV-cached `decode`. ALS steers one middle layer with a
direction from `--run` (a folder of `als run`) or, without one, a random direction of the same
relative strength: its cost does not depend on what the direction means. LatentSeek uses the
self-reward (the model verifies its own answers) unless `--oracle`.

    python benchmarks/method_cost.py --model embedded --n 8 --k 5

Last line: ``als_vs_latentseek=<x> als_vs_sc=<y>`` (how many times faster ALS is).
Targets: ALS >= 5x faster than LatentSeek and >= k/1.1 times faster than SC@k.
"""

from __future__ import annotations

import argparse
import time

import torch

from workbench.core.directions import LayerDirections
from workbench.core.grading import grade
from workbench.core.prompts import encode_prompts
from workbench.core.steering import SteeringSpec, steer
from workbench.engine.config import GenerationConfig
from workbench.methods.baselines import SCConfig, run_self_consistency
from workbench.methods.cot import completion_from_row, run_cot
from workbench.methods.latentseek import LatentSeekConfig, latentseek, oracle_reward, self_reward
from workbench.sources.data import load_problems
from workbench.sources.models import ModelConfig, load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n", type=int, default=8, help="GSM8K test problems")
    parser.add_argument("--k", type=int, default=5, help="Self-Consistency samples")
    parser.add_argument("--max-new-tokens", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--run", default=None, help="als run folder to take the direction from")
    parser.add_argument("--oracle", action="store_true", help="LatentSeek with the gold reward")
    parser.add_argument("--iters", type=int, default=10, help="LatentSeek's iteration cap")
    parser.add_argument("--verifier-tokens", type=int, default=256, help="cap per verification")
    args = parser.parse_args()

    bridge = load_model(ModelConfig(name=args.model, device=args.device))
    problems = load_problems("gsm8k", "test", limit=args.n)
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    if args.run:
        directions = LayerDirections.load(f"{args.run}/directions")
    else:
        n_layers, d = bridge.cfg.n_layers, bridge.cfg.d_model
        g = torch.Generator().manual_seed(0)
        directions = LayerDirections(
            layers=tuple(range(n_layers)),
            success_mean=torch.randn(n_layers, d, generator=g),
            failure_mean=torch.zeros(n_layers, d),
            mean_norm=torch.full((n_layers,), 50.0),
            n_success=1,
            n_failure=1,
        )
    layer = bridge.cfg.n_layers // 2
    spec = SteeringSpec(layers=(layer,), alpha=0.05, tau=0.5)

    run_cot(bridge, problems[:1], generation=gen, progress=False)  # warm-up, not timed
    sec: dict[str, float] = {}
    acc: dict[str, float] = {}
    start = time.perf_counter()
    cot = run_cot(bridge, problems, generation=gen, progress=False)
    sec["cot"] = (time.perf_counter() - start) / len(problems)
    acc["cot"] = sum(r["correct"] for r in cot) / len(cot)

    start = time.perf_counter()
    with steer(bridge, spec, directions):
        als = run_cot(bridge, problems, generation=gen, method="als", progress=False)
    sec["als"] = (time.perf_counter() - start) / len(problems)
    acc["als"] = sum(r["correct"] for r in als) / len(als)

    start = time.perf_counter()
    sc = run_self_consistency(bridge, problems, SCConfig(k=args.k), generation=gen, progress=False)
    sec[f"sc@{args.k}"] = (time.perf_counter() - start) / len(problems)
    acc[f"sc@{args.k}"] = sum(r["correct"] for r in sc) / len(sc)

    ls_cfg = LatentSeekConfig(
        reward="oracle" if args.oracle else "self",
        verifier_max_new_tokens=args.verifier_tokens,
        max_iters=args.iters,
    )
    start = time.perf_counter()
    correct = 0
    for problem, row in zip(problems, cot, strict=True):
        initial = completion_from_row(row)
        reward = oracle_reward(problem) if args.oracle else self_reward(bridge, problem, ls_cfg)
        prompt = encode_prompts(bridge.tokenizer, [problem.question])[0]
        res = latentseek(bridge, prompt, initial, reward, ls_cfg, generation=gen)
        correct += grade(res.text, problem.answer, problem.family).correct
    # LatentSeek starts from the CoT answer: its cost includes it.
    sec["latentseek"] = (time.perf_counter() - start) / len(problems) + sec["cot"]
    acc["latentseek"] = correct / len(problems)

    print(
        f"model={args.model} n={args.n} k={args.k} max_new_tokens={args.max_new_tokens} "
        f"batch={args.batch_size} latentseek_reward={ls_cfg.reward}"
    )
    for name in sec:
        print(
            f"{name:>12}: {sec[name]:8.2f} s/problem ({sec[name] / sec['cot']:.2f}x CoT), "
            f"accuracy {acc[name]:.3f} (n={args.n}: indicative only)"
        )
    print(
        f"als_vs_latentseek={sec['latentseek'] / sec['als']:.2f} "
        f"als_vs_sc={sec[f'sc@{args.k}'] / sec['als']:.2f}"
    )


if __name__ == "__main__":
    main()
