"""Does today's decoder reproduce a run's stored generations? (a check, not a timing)

Re-decodes the problems of the first `--n` stored rows of one split of a run folder with the run's
own model, prompt and generation settings (unsteered CoT rows only) and compares the tokens with
the stored ones. A change to the decoding path (batch shape, attention kernel) changes float
rounding, so a rare near-tie of the argmax can flip; this says how often it does on the run's
own problems, before a resumed run mixes rows decoded both ways. Last line:
``identical=<k>/<n> first_divergence=<token indices>``.

    python benchmarks/rows_agreement.py --run runs/scale-gsm8k --split fit --n 32
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from workbench.core.prompts import answer_complete, encode_prompts
from workbench.engine.generation import decode
from workbench.experiment.rundir import RunDir


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a run folder with stored CoT rows")
    parser.add_argument("--split", default="fit")
    parser.add_argument("--n", type=int, default=32)
    return parser.parse_args(argv)


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first differing token (the shorter length if one is a prefix); None if equal."""
    if list(a) == list(b):
        return None
    pairs = enumerate(zip(a, b, strict=False))
    return next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    run = RunDir.of(args.run)
    stored = run.rows(args.split, "cot")[: args.n]
    by_id = {p.id: p for p in run.problems(args.split)}
    problems = [by_id[row["id"]] for row in stored]
    bridge = run.load_model()
    prompts = encode_prompts(bridge.tokenizer, [p.question for p in problems], run.prompt())
    start = time.perf_counter()
    got = decode(bridge, prompts, run.generation(), stop=answer_complete)
    seconds = time.perf_counter() - start
    wanted = [r["tokens"] for r in stored]
    splits = [first_divergence(w, c.tokens) for w, c in zip(wanted, got, strict=True)]
    same = sum(s is None for s in splits)
    print(f"{len(stored)} rows re-decoded in {seconds:.1f} s")
    print(f"identical={same}/{len(stored)} first_divergence={[s for s in splits if s is not None]}")


if __name__ == "__main__":
    main()
