"""Cost of the load-time self-check (`workbench.sources.selfcheck.check_stack`) next to the model's
load.

The model is loaded once with the check switched off (timed), then `check_stack` runs `--repeats`
times (the first is a warm-up and is reported apart). The last line is ``check_ms=<median>``;
the line before it gives the check as a share of the load time.

    python benchmarks/self_check.py --model embedded
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch

from workbench.sources.models import ModelConfig, load_model
from workbench.sources.selfcheck import check_stack, stack_versions


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--repeats", type=int, default=10)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = ModelConfig(name=args.model, device=args.device, dtype=args.dtype, self_check=False)
    start = time.perf_counter()
    bridge = load_model(cfg)
    load_s = time.perf_counter() - start
    print(
        f"{stack_versions()}; device {bridge.cfg.device}, dtype {bridge.cfg.dtype}, "
        f"{torch.get_num_threads()} torch threads"
    )
    times, check = [], None
    for _ in range(args.repeats + 1):
        start = time.perf_counter()
        check = check_stack(bridge)
        times.append(time.perf_counter() - start)
    median_ms = 1000 * statistics.median(times[1:])
    print(
        f"load {load_s:.2f} s (check off); first check {1000 * times[0]:.0f} ms; "
        f"relative logit difference {check.error:.1e} (cached), {check.attention_error:.1e} "
        "(attention paths)"
    )
    print(f"check / load = {median_ms / 1000 / load_s:.3f}")
    print(f"check_ms={median_ms:.1f}")


if __name__ == "__main__":
    main()
