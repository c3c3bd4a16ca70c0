"""Reasoning or difficulty: the contrast probes and the three directions' cosines by layer.

python analyses/contrast.py --samples results/gsm8k-samples-fit  # -> figures/contrast_probes.*,
                                                                  #    figures/contrast_cosines.*
Reads the tables `als probe RUN --samples DIR` wrote into DIR/contrast; decodes nothing. Prints the
measures by layer as a markdown table (95% intervals over problems), every `--every` layers and the
best layer of each probe, then the controls without the model (chains ranked by length alone, and
the same directions fitted on bags of tokens instead of states).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _figure import options

from workbench.core.artifacts import read_jsonl, save_figure
from workbench.experiment.contrast_run import chain_controls
from workbench.report.contrast_plots import (
    CONTRAST_LABELS,
    contrast_cosine_curves,
    contrast_probe_curves,
)


@dataclass(frozen=True, kw_only=True)
class ContrastFigures:
    """Where to read and write."""

    samples: str = "results/gsm8k-samples-fit"
    """Folder written by `als sample` and analysed by `als probe --samples`."""
    out_dir: str = "figures"
    """Folder for the figure files."""
    every: int = 3
    """The table shows layers 0, every, 2 every, ... and each probe's best layer."""


COLUMNS = (
    ("auroc_pooled", "pooled AUROC"),
    ("auroc_within", "within AUROC (within dir.)"),
    ("auroc_within_of_pooled", "within AUROC (pooled dir.)"),
    ("spearman_pass_rate", "last prompt: Spearman w/ pass rate"),
    ("cos_pooled_within", "cos(pooled, within)"),
    ("cos_pooled_difficulty", "cos(pooled, difficulty)"),
    ("pooled_share_along_difficulty", "pooled's share along difficulty"),
)
"""The table's columns: metric, header."""


def render(rows: Sequence[Mapping[str, Any]], every: int) -> str:
    """Markdown: one line per shown layer, each cell `value [low, high]`; best layers in bold."""
    cell = {(r["layer"], r["metric"]): r for r in rows}
    layers = sorted({r["layer"] for r in rows})
    best = {
        max(layers, key=lambda layer, m=m: cell[layer, m]["value"])
        for m in ("auroc_pooled", "auroc_within", "spearman_pass_rate")
    }
    shown = sorted({layer for layer in layers if layer % max(every, 1) == 0} | best)
    lines = [
        "| layer | " + " | ".join(h for _, h in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for layer in shown:
        cells = [_cell(cell.get((layer, m))) for m, _ in COLUMNS]
        name = f"**{layer}**" if layer in best else str(layer)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "-"
    return f"{row['value']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def main() -> int:
    cfg = options(ContrastFigures, __doc__.splitlines()[0])
    tables = Path(cfg.samples) / "contrast"
    if not (tables / "probes.jsonl.gz").exists():
        print(f"error: {tables} has no probes table: run `als probe RUN --samples DIR` first")
        return 2
    written = []
    probes, cosines = (read_jsonl(tables / f"{t}.jsonl.gz") for t in ("probes", "cosines"))
    print(render([*probes, *cosines], cfg.every))
    controls = chain_controls(cfg.samples)
    for r in controls:
        print(f"{CONTRAST_LABELS[r['metric']]}: {_cell(r)}")
    for name, fig in (
        ("contrast_probes", contrast_probe_curves(probes, controls=controls)),
        ("contrast_cosines", contrast_cosine_curves(cosines)),
    ):
        written += save_figure(fig, Path(cfg.out_dir) / name)
    print("wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
