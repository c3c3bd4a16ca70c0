"""Two models on the same problems: probe curves on relative depth, and a paired table.

python analyses/two_models.py --small results/gsm8k-scale --large results/gsm8k-1.5b
  # -> figures/two_models.html, .png; prints the paired CoT outcomes on the shared test problems
Each run's curve is its `als probe` table (probe/layers, the run's position) where it has one,
else the cross-validated AUROC its selection recorded (no interval). Decodes nothing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from _figure import options

from workbench.core.artifacts import jsonl_exists, read_json, read_jsonl, save_figure
from workbench.experiment.rundir import RunDir
from workbench.report.model_compare import depth_curves, paired_outcomes


@dataclass(frozen=True, kw_only=True)
class TwoModels:
    """Which runs, where to write."""

    small: str = "results/gsm8k-scale"
    """The smaller model's run (a finished `als run` folder)."""
    large: str = "results/gsm8k-1.5b"
    """The larger model's run on the same test problems."""
    out_dir: str = "figures"
    """Folder for the figure files."""


def _curve(run: RunDir) -> tuple[int, list[dict]]:
    position = run.settings()["als"]["position"]
    table = run.probe_table("layers")
    if jsonl_exists(table):
        rows = [
            r for r in read_jsonl(table) if r["metric"] == "auroc" and r["position"] == position
        ]
    else:
        cv = read_json(run.selection_plan_path)["fit_cv_auroc"]
        rows = [{"layer": int(k), "value": v} for k, v in cv.items()]
    return len(rows), rows


def main() -> int:
    cfg = options(TwoModels, __doc__.splitlines()[0])
    runs = [RunDir(Path(cfg.small)), RunDir(Path(cfg.large))]
    for run in runs:
        if not run.results_path.exists():
            print(f"error: {run.root} is not a finished `als run` folder (no results.json)")
            return 2
    names = [f"{r.settings()['model']['name']} ({r.root.name})" for r in runs]
    fig = depth_curves({n: _curve(r) for n, r in zip(names, runs, strict=True)})
    written = save_figure(fig, Path(cfg.out_dir) / "two_models")
    arms = [{a: r.rows("test", a) for a in ("cot", "als")} for r in runs]
    for key, value in paired_outcomes(*arms).items():
        print(f"{key}: {value}")
    print("wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
