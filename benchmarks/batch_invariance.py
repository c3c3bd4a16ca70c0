"""Do greedy generations depend on how the problems were batched? (a check, not a timing)

Decodes the first `--n` GSM8K test problems exactly as the main job does (chat prompt, greedy,
stop at the answer, `--max-new-tokens` cap) twice, at two batch sizes, and compares the tokens.
Float rounding differs between batch shapes (padding, matrix sizes), so a rare near-tie of the
argmax can flip and the two texts part from there. The last line is
``identical=<k>/<n> first_divergence=<token indices>``.

    python benchmarks/batch_invariance.py --model embedded --n 24 --batch-sizes 8,3
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from workbench.core.prompts import answer_complete, encode_prompts
from workbench.engine.config import GenerationConfig
from workbench.engine.generation import decode
from workbench.sources.data import load_problems
from workbench.sources.models import load_model


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--batch-sizes", default="8,3")
    parser.add_argument("--max-new-tokens", type=int, default=384)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    bridge = load_model(args.model)
    problems = load_problems("gsm8k", "test", limit=args.n)
    prompts = encode_prompts(bridge.tokenizer, [p.question for p in problems])
    runs = []
    for size in (int(b) for b in args.batch_sizes.split(",")):
        cfg = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=size)
        runs.append([c.tokens for c in decode(bridge, prompts, cfg, stop=answer_complete)])
    a, b = runs[0], runs[1]
    same = sum(x == y for x, y in zip(a, b, strict=True))
    divergence = [
        next((i for i, (s, t) in enumerate(zip(x, y, strict=False)) if s != t), min(len(x), len(y)))
        for x, y in zip(a, b, strict=True)
        if x != y
    ]
    print(f"model={args.model} n={args.n} batch sizes={args.batch_sizes}")
    print(f"identical={same}/{len(a)} first_divergence={divergence}")


if __name__ == "__main__":
    main()
