"""A run that steers with a direction from sampled chains, on another run's problems and rules.

`derive_run` makes a run folder that is the source run (`als run`) in all but its direction: the
same splits, settings, prompt, grid of alphas and tau quantiles, and the source's plain CoT rows
(greedy decoding does not depend on the batch, so they are not decoded again; `als stage retime`
re-decodes CoT beside the steered arm on a subset, and compares them token for token). Its
directions are a samples folder's within-problem or difficulty direction
(`workbench.experiment.contrast_run`); its candidate layers are the two best of that direction's
own probe (within-problem AUROC, or the last prompt token's Spearman with pass rate); tau at each
quantile comes from that direction's cosines over the first `n_tau_fit` fit generations' tokens,
as the source's did. No reference or control arm of its own: the source's selected arm and
control sit beside it on test (`ALSRunConfig.beside`), their rows copied, so that the test table
pairs them and `als stage retime` decodes them together with CoT and the new arm. Then
``als stage select OUT`` and ``als stage test OUT`` decode the validation grid and the test arm.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from workbench.core.artifacts import append_jsonl, jsonl_exists, read_jsonl, write_json
from workbench.core.directions import LayerDirections
from workbench.errors import WorkbenchError
from workbench.experiment.pipeline import (
    BESIDE,
    ALSRunConfig,
    quantile_taus,
    record_run_settings,
    tau_tokens,
)
from workbench.experiment.rundir import RunDir, SamplesDir
from workbench.sources.models import ModelConfig

__all__ = ["PROBE_OF", "derive_run"]

PROBE_OF: dict[str, str] = {"within": "auroc_within", "difficulty": "spearman_pass_rate"}
"""The probe that ranks candidate layers for each direction."""


def _candidates(samples: SamplesDir, kind: str, n: int) -> tuple[tuple[int, ...], dict]:
    path = samples.contrast_table("probes")
    if not path.exists():
        raise WorkbenchError(f"{samples.root} has no contrast tables: run `als probe --samples`")
    rows = [r for r in read_jsonl(path) if r["metric"] == PROBE_OF[kind]]
    ranked = sorted(rows, key=lambda r: r["value"], reverse=True)
    return tuple(sorted(r["layer"] for r in ranked[:n])), {
        str(r["layer"]): r["value"] for r in rows
    }


def _copy_rows(source: RunDir, run: RunDir) -> None:
    """The source's splits, plain CoT rows (fit, validation, test) and its selected and control
    arms' test rows (as `BESIDE` names them) into the new run."""
    copies = [(split, "cot", "cot") for split in ("fit", "val", "test")]
    copies += [("test", arm, beside) for arm, beside in BESIDE.items()]
    for split in ("fit", "val", "test"):
        run.split_path(split).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source.split_path(split), run.split_path(split))
    for split, arm, name in copies:
        have = jsonl_exists(source.rows_path(split, arm))
        if have and not run.rows_path(split, name).exists():
            rows = [{**r, "method": name} for r in source.rows(split, arm)]
            append_jsonl(run.rows_path(split, name), rows)


def derive_run(
    bridge: Any,
    samples: str | Path | SamplesDir,
    kind: str,
    out: str | Path,
    *,
    n_candidates: int = 2,
    data_dir: str | None = None,
) -> RunDir:
    """Prepare `out` (see the module docstring); rerunning it on a prepared folder is a no-op."""
    if kind not in PROBE_OF:
        raise WorkbenchError(
            f"derive a run from the {' or '.join(PROBE_OF)} direction, not {kind!r}"
        )
    samples = SamplesDir.of_samples(samples)
    source = samples.source().require_finished()
    settings = source.settings()
    candidates, ranking = _candidates(samples, kind, n_candidates)
    cfg = replace(
        ALSRunConfig.from_json(settings["als"]),
        candidate_layers=candidates,
        reference=False,
        reference_always=False,
        gated=False,
        control=False,
        beside=str(source.root),
    )
    run = RunDir(Path(out))
    record_run_settings(
        run, ModelConfig(**settings["model"]), cfg, source.generation(), source.prompt()
    )
    if run.selection_plan_path.exists():
        return run
    _copy_rows(source, run)
    directions = LayerDirections.load(samples.contrast_directions(kind))
    directions.save(run.directions_path)
    traj = tau_tokens(bridge, source, run, candidates, cfg, data_dir=data_dir)
    plan = {
        "candidates": list(candidates),
        "fit_cv_auroc": {},
        "candidate_probe": {"metric": PROBE_OF[kind], "by_layer": ranking},
        "direction_from": str(samples.contrast_directions(kind)),
        "n_tau_generations": len(traj),
        "taus": {"als": quantile_taus(traj, directions, cfg)},
        "fit_separation": {},
    }
    write_json(run.selection_plan_path, plan)
    return run
