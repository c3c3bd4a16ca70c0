"""The difficulty-controlled analysis of a folder of sampled chains (`als sample`).

States of every sampled chain are cached by teacher forcing (all layers, the source run's site;
the mean over generated tokens and the last prompt token), as the fit stage caches its greedy
chains; then, per layer (`workbench.core.contrast`, `workbench.core.contrast_probes`):

* ``contrast/probes.jsonl``: pooled AUROC, within-problem AUROC (of the within and of the pooled
  direction) and the last-prompt Spearman with pass rate, with 95% intervals over problems;
* ``contrast/cosines.jsonl``: cosines among the pooled, within-problem and difficulty directions,
  and the pooled direction's share along difficulty, with intervals;
* ``contrast/<kind>/``: each direction as `LayerDirections` (``vectors`` = the direction, and the
  fit states' mean norm for relative alphas), so that `steer` takes it like the run's own;
* ``contrast/summary.json``: problems, chains, mixed problems, the best layers.

`chain_controls` reads the chains' lengths and tokens from the folder's rows (no states, no
model) and scores them as the probes are scored: the controls a state probe's within-problem AUROC
must beat to show more than the written text.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from workbench.core.activations import ActivationSet, CacheConfig, cache_activations
from workbench.core.artifacts import read_json, write_json, write_jsonl_gz
from workbench.core.contrast import KINDS, ProblemStats, directions
from workbench.core.contrast_probes import (
    ContrastProbeConfig,
    contrast_probes,
    direction_cosines,
    length_control,
    token_control,
)
from workbench.core.directions import LayerDirections
from workbench.errors import WorkbenchError
from workbench.experiment.rundir import SamplesDir

__all__ = ["chain_controls", "contrast_run", "contrast_states"]


def contrast_states(bridge: Any, samples: SamplesDir, *, data_dir=None) -> ActivationSet:
    """Every sampled chain's states at every layer (cached once under fit/activations)."""
    source = samples.source()
    site = source.settings().get("als", {}).get("site", "resid_post")
    problems = samples.sampled(data_dir=data_dir)
    if not problems:
        raise WorkbenchError(f"{samples.root} holds no sampled chains yet (run `als sample`)")
    return cache_activations(
        bridge,
        problems,
        samples.sample_rows(),
        samples.fit_activations_dir,
        CacheConfig(site=site),
        prompt=samples.prompt(),
        meta={"source_run": str(source.root), "kind": "sampled chains"},
    )


def _as_directions(
    vectors: torch.Tensor, aset: ActivationSet, kind: str, fitted_at: str, steered_at: str
) -> LayerDirections:
    """A direction as `LayerDirections` (``vectors`` = it); relative alphas scale with the mean
    norm of the states it steers (`steered_at`), whatever position it was fitted at."""
    return LayerDirections(
        layers=aset.layers,
        success_mean=vectors.contiguous(),
        failure_mean=torch.zeros_like(vectors),
        mean_norm=aset.at(steered_at).float().norm(dim=-1).mean(0),
        n_success=int(aset.labels.sum()),
        n_failure=int((~aset.labels).sum()),
        provenance={"kind": kind, "site": aset.site, "position": fitted_at},
    )


def contrast_run(
    bridge: Any,
    samples: str | Path | SamplesDir,
    cfg: ContrastProbeConfig = ContrastProbeConfig(),
    *,
    data_dir=None,
) -> dict[str, Any]:
    """Cache the chains' states, write the contrast tables and directions; return the summary."""
    samples = SamplesDir.of_samples(samples)
    aset = contrast_states(bridge, samples, data_dir=data_dir)
    position = samples.source().settings().get("als", {}).get("position", "mean_generated")
    pids = [pid.rsplit("#", 1)[0] for pid in aset.problem_ids]
    states, prompt = aset.at(position), aset.at("last_prompt")
    stats = ProblemStats.from_rows(states, prompt, aset.labels, pids)
    probes = contrast_probes(states, prompt, aset.labels, pids, aset.layers, cfg, stats=stats)
    cos = direction_cosines(stats, aset.layers, cfg)
    samples.contrast_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl_gz(samples.contrast_table("probes"), probes)
    write_jsonl_gz(samples.contrast_table("cosines"), cos)
    fitted = directions(stats)[0]
    for k, kind in enumerate(KINDS):
        where = "last_prompt" if kind == "difficulty" else position
        _as_directions(fitted[k], aset, kind, where, position).save(
            samples.contrast_directions(kind)
        )
    summary = _summary(stats, probes, cfg)
    write_json(samples.contrast_summary_path, summary)
    return summary


def chain_controls(
    samples: str | Path | SamplesDir, cfg: ContrastProbeConfig | None = None
) -> list[dict[str, Any]]:
    """The chain-length and bag-of-tokens controls of the folder's chains (`length_control`,
    `token_control`), with the folds and resamples its probes used (`contrast/summary.json`)
    unless `cfg` is given."""
    samples = SamplesDir.of_samples(samples)
    if cfg is None and samples.contrast_summary_path.exists():
        cfg = ContrastProbeConfig(**read_json(samples.contrast_summary_path)["config"])
    cfg = cfg or ContrastProbeConfig()
    rows = samples.sample_rows()
    labels = [bool(r["correct"]) for r in rows]
    pids = [r["problem_id"] for r in rows]
    return [
        *length_control([r["generated_tokens"] for r in rows], labels, pids, cfg),
        *token_control([r["tokens"] for r in rows], labels, pids, cfg),
    ]


def _best(rows: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    best = max((r for r in rows if r["metric"] == metric), key=lambda r: r["value"])
    return {k: best[k] for k in ("layer", "value", "ci_low", "ci_high")}


def _summary(stats: ProblemStats, probes: list[dict], cfg: ContrastProbeConfig) -> dict[str, Any]:
    metrics = ("auroc_pooled", "auroc_within", "auroc_within_of_pooled", "spearman_pass_rate")
    return {
        "problems": len(stats.problem_ids),
        "chains": int((stats.n_correct + stats.n_incorrect).sum()),
        "correct_chains": int(stats.n_correct.sum()),
        "mixed_problems": int(stats.mixed.sum()),
        "none_correct": int((stats.n_correct == 0).sum()),
        "all_correct": int((stats.n_incorrect == 0).sum()),
        "best": {m: _best(probes, m) for m in metrics},
        "config": asdict(cfg),
    }
