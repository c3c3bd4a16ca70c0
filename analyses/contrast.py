"""Reasoning or difficulty: the contrast probes and the three directions' cosines by layer.

python analyses/contrast.py --samples results/gsm8k-samples-fit  # -> figures/contrast_probes.*,
                                                                  #    figures/contrast_cosines.*
Reads the tables `als probe RUN --samples DIR` wrote into DIR/contrast; decodes nothing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from _figure import options

from workbench.core.artifacts import read_jsonl, save_figure
from workbench.report.contrast_plots import contrast_cosine_curves, contrast_probe_curves


@dataclass(frozen=True, kw_only=True)
class ContrastFigures:
    """Where to read and write."""

    samples: str = "results/gsm8k-samples-fit"
    """Folder written by `als sample` and analysed by `als probe --samples`."""
    out_dir: str = "figures"
    """Folder for the figure files."""


def main() -> int:
    cfg = options(ContrastFigures, __doc__.splitlines()[0])
    tables = Path(cfg.samples) / "contrast"
    if not (tables / "probes.jsonl.gz").exists():
        print(f"error: {tables} has no probes table: run `als probe RUN --samples DIR` first")
        return 2
    written = []
    for name, build, table in (
        ("contrast_probes", contrast_probe_curves, "probes"),
        ("contrast_cosines", contrast_cosine_curves, "cosines"),
    ):
        fig = build(read_jsonl(tables / f"{table}.jsonl.gz"))
        written += save_figure(fig, Path(cfg.out_dir) / name)
    print("wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
