"""Two models on the same problems: probe curves on relative depth, and a paired table.

python analyses/two_models.py --small results/gsm8k-scale --large results/gsm8k-1.5b
  # -> figures/two_models.html, .png (and two_models_strata.* where both runs have
  # probe/difficulty); prints the paired CoT outcomes on the shared test problems
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


def _strata_curves(run: RunDir, name: str) -> dict[str, tuple[int, list[dict]]]:
    """The run's `probe/difficulty` curves (all pairs, within strata), if it has that table."""
    if not jsonl_exists(run.probe_table("difficulty")):
        return {}
    rows = read_jsonl(run.probe_table("difficulty"))
    curves = {}
    for metric, label in (("auroc", "all pairs"), ("auroc_within_difficulty", "within strata")):
        sub = [r for r in rows if r["metric"] == metric]
        curves[f"{name}, {label}"] = (len(sub), sub)
    return curves


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
    strata = [_strata_curves(r, n) for r, n in zip(runs, names, strict=True)]
    if all(strata):  # both ran `als probe --probe.difficulty_from` (the 0.5B model's chains)
        fig = depth_curves(
            {**strata[0], **strata[1]},
            title="The fit probe beyond difficulty, two models (strata of sampled pass rate)",
        )
        written += save_figure(fig, Path(cfg.out_dir) / "two_models_strata")
    arms = [{a: r.rows("test", a) for a in ("cot", "als")} for r in runs]
    for key, value in paired_outcomes(*arms).items():
        print(f"{key}: {value}")
    print("wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
