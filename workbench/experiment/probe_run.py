"""`als probe RUN_DIR`: which layers carry the direction, and how generations drift, for a run of
`als run`.

* Per layer and position policy (fit split): cross-validated AUROC of the projection onto the
  mean-difference direction, logistic-probe accuracy, Cohen's d, a shuffled-label control, each
  with a bootstrap 95% CI (`workbench.core.probing`).
* Early prediction: the same AUROC from the mean of the first k generated tokens only.
* Trajectories at the selected layer on the test split: cos(h_t, v) per token for CoT generations
  (correct and incorrect) and for ALS generations (teacher-forced under the same steering, so the
  states are those the steered model had), drift measures, and where steering fired.
* A PCA plane fitted on the fit split's states, with both centroids.

Everything lands in `RUN_DIR/probe/` (tables as JSONL, a summary) and `RUN_DIR/figures/`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from workbench.core.activations import ActivationSet, CacheConfig, cache_activations
from workbench.core.artifacts import (
    append_jsonl,
    gzipped,
    jsonl_exists,
    read_json,
    read_jsonl,
    write_json,
)
from workbench.core.probing import EARLY_KS, ProbeConfig, probe_layers
from workbench.core.projection import fit_pca, step_bands, trajectory_rows
from workbench.core.steering import steer
from workbench.core.strata import StrataConfig
from workbench.errors import WorkbenchError
from workbench.experiment.rundir import RunDir, SamplesDir
from workbench.experiment.strata_run import difficulty_strata
from workbench.sources.data import load_split

__all__ = ["ProbeRunConfig", "probe_run", "sampled_fit_problems"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ProbeRunConfig:
    """What `als probe` measures."""

    early_ks: tuple[int, ...] = EARLY_KS
    """Numbers of first generated tokens for early prediction (plus all tokens)."""
    n_bootstrap: int = 1000
    """Bootstrap resamples for the 95% CIs."""
    n_folds: int = 5
    """Cross-validation folds."""
    max_trajectory_steps: int = 400
    """Longest decoding step shown in trajectory plots."""
    n_replay: int | None = None
    """Where `als probe` replays generations itself (teacher-forced), at most the first n of a
    split: the test trajectories of CoT and ALS, and the fit states of the PCA plane when the
    run's own are gone (a published run); None = all. Each replay of a large split costs about
    as much as decoding it again."""
    fit_only: bool = False
    """Probe the fit split only: every layer's probe and early prediction (`probe/layers` and
    `probe/early`), which need the fit generations, not a finished run; no drift, PCA plane or
    summary."""
    difficulty_from: str | None = None
    """A folder of sampled chains (`als sample`) of this run's fit problems, possibly by another
    model: also rank the fit generations within strata of their pass rate there
    (`probe/difficulty`: what the probe knows beyond the difficulty those chains measured)."""

    def __post_init__(self) -> None:
        if self.n_replay is not None and self.n_replay < 1:
            raise WorkbenchError(f"n_replay must be >= 1 (or None: all), not {self.n_replay}")
        if not self.early_ks or min(self.early_ks) < 1:
            raise WorkbenchError(f"early_ks must be numbers of tokens >= 1, not {self.early_ks}")
        if self.n_bootstrap < 1 or self.n_folds < 2 or self.max_trajectory_steps < 1:
            raise WorkbenchError(
                "n_bootstrap and max_trajectory_steps must be >= 1, and n_folds >= 2"
            )


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.unlink(missing_ok=True)
    gzipped(path).unlink(missing_ok=True)  # a published copy's
    append_jsonl(path, rows)


def _probe_fit(bridge: Any, run: RunDir, cfg: ProbeRunConfig, site: str, data_dir) -> tuple:
    """Fit split: cross-validated probes at every layer for both position policies, and early
    prediction from the first k generated tokens; the tables of an earlier probe with the same
    settings are kept (then no states are loaded: the set returned is None)."""
    record = {"site": site, "n_folds": cfg.n_folds, "n_bootstrap": cfg.n_bootstrap}
    record["early_ks"] = list(cfg.early_ks)
    tables = [run.probe_table("layers"), run.probe_table("early")]
    path = run.probe_fit_record_path
    if all(map(jsonl_exists, tables)) and path.exists() and read_json(path) == record:
        return None, read_jsonl(tables[0]), read_jsonl(tables[1])
    probe_cfg = ProbeConfig(n_folds=cfg.n_folds, n_bootstrap=cfg.n_bootstrap)
    aset = _fit_states(bridge, run, cfg, site, data_dir)
    layer_rows = []
    for position in ("mean_generated", "last_prompt"):
        layer_rows += probe_layers(
            aset.at(position), aset.labels, aset.layers, probe_cfg, position=position
        )
    _write_rows(tables[0], layer_rows)
    early_rows = []
    for k in (*cfg.early_ks, "all"):
        states = aset.at("mean_generated" if k == "all" else f"mean_first_{k}")
        rows = probe_layers(
            states, aset.labels, aset.layers, replace(probe_cfg, shuffled_control=False)
        )
        early_rows += [{**r, "k": k} for r in rows if r["metric"] == "auroc"]
    _write_rows(tables[1], early_rows)
    write_json(path, record)
    return aset, layer_rows, early_rows


def _difficulty(
    bridge: Any, run: RunDir, cfg: ProbeRunConfig, site: str, aset: Any, data_dir
) -> None:
    """`probe/difficulty` when `cfg.difficulty_from` names a samples folder, from the fit states
    `aset` (None when the fit probe's tables were kept: loaded here)."""
    if cfg.difficulty_from is None:
        return
    samples = SamplesDir.of_samples(cfg.difficulty_from)
    if aset is None:  # replayed, if it must be, for the sampled problems only (checked at start)
        only = {r["problem_id"] for r in samples.sample_rows()}
        aset = _fit_states(bridge, run, cfg, site, data_dir, only=only)
    rows = difficulty_strata(
        aset,
        run.settings()["als"]["position"],
        samples,
        n_folds=cfg.n_folds,
        cfg=StrataConfig(n_bootstrap=cfg.n_bootstrap),
    )
    _write_rows(run.probe_table("difficulty"), rows)


def sampled_fit_problems(run: RunDir, samples_folder: str | Path) -> set[str]:
    """The run's fit problems that the samples folder sampled; a folder `als sample` did not
    write, or one with fewer than 4 of them, is refused."""
    samples = SamplesDir.of_samples(samples_folder)
    sampled = {r["problem_id"] for r in samples.sample_rows()}
    fit = set(load_split(run.split_path("fit")))
    if len(fit & sampled) < 4:
        raise WorkbenchError(
            f"{samples.root} sampled {len(fit & sampled)} of {run.root}'s fit problems; the strata "
            "need at least 4: sample the run's fit split (`als sample RUN --split fit`)"
        )
    return fit & sampled


def _fit_states(
    bridge: Any,
    run: RunDir,
    cfg: ProbeRunConfig,
    site: str,
    data_dir,
    *,
    only: set[str] | None = None,
) -> Any:
    """Every layer's fit states with the early means: the run's own (the fit stage keeps the
    default `EARLY_KS`) where they have what is asked, else a teacher-forced pass of its own (of
    the problems in `only`, when given; a later pass resumes it for the rest)."""
    own = run.fit_activations_dir
    if (own / "activations.json").exists():
        aset = run.fit_states()
        if aset.site == site and all(f"mean_first_{k}" in aset.states for k in cfg.early_ks):
            return aset
    problems = run.problems("fit", data_dir=data_dir)
    return cache_activations(
        bridge,
        problems if only is None else [p for p in problems if p.id in only],
        run.rows("fit", "cot"),
        run.probe_states("fit-early"),
        CacheConfig(site=site, early_ks=cfg.early_ks, batch_size=run.generation().batch_size),
        prompt=run.prompt(),
    )


def _pca_fit_states(
    bridge: Any, run: RunDir, cfg: ProbeRunConfig, layer: int, site: str, data_dir
) -> ActivationSet:
    """Fit states at the steered layer for the PCA plane, when the run's own are gone: the
    first `n_replay` fit generations replayed up to that layer."""
    own = run.fit_activations_dir
    if (own / "activations.json").exists():
        aset = ActivationSet.load(own)
        if aset.site == site and layer in aset.layers:
            return aset
    return cache_activations(
        bridge,
        run.problems("fit", data_dir=data_dir)[: cfg.n_replay],
        run.rows("fit", "cot"),
        run.probe_states("fit-pca"),
        CacheConfig(layers=(layer,), site=site, batch_size=run.generation().batch_size),
        prompt=run.prompt(),
    )


def _fired_steps(tokens: list[dict], bands: list[dict]) -> list[dict]:
    """Steps of the steered trajectories at which steering fired, with its rate there."""
    fired = []
    als_tokens = [r for r in tokens if r["group"] == "ALS (steered)"]
    for band in (b for b in bands if b["group"] == "ALS (steered)"):
        at_step = [r for r in als_tokens if r["step"] == band["step"]]
        rate = sum(r["steered"] for r in at_step) / len(at_step)
        if rate > 0:
            fired.append({"step": band["step"], "mean": band["mean"], "rate": rate})
    return fired


def _test_trajectories(
    bridge: Any, run: RunDir, cfg: ProbeRunConfig, spec, directions, data_dir
) -> tuple:
    """Test split: cos(h_t, v) trajectories at the steered layer of CoT and ALS generations
    (the first `n_replay` test problems)."""
    layer = spec.layers[0]
    test = run.problems("test", data_dir=data_dir)[: cfg.n_replay]
    traj_cfg = CacheConfig(
        layers=(layer,),
        trajectory_layers=(layer,),
        site=spec.site,
        batch_size=run.generation().batch_size,
    )
    rows = {"cot": run.rows("test", "cot"), "als": run.rows("test", "als")}
    cot_set = cache_activations(
        bridge, test, rows["cot"], run.probe_states("test-cot"), traj_cfg, prompt=run.prompt()
    )
    with steer(bridge, spec, directions):
        als_set = cache_activations(
            bridge, test, rows["als"], run.probe_states("test-als"), traj_cfg, prompt=run.prompt()
        )
    by_id = {m: {r["id"]: r for r in method_rows} for m, method_rows in rows.items()}
    v = directions.vector(layer)
    groups = [
        "CoT correct" if by_id["cot"][i]["correct"] else "CoT incorrect"
        for i in cot_set.problem_ids
    ]
    tok_cot, drift_cot = trajectory_rows(
        [t[:, 0] for t in cot_set.trajectories],
        v,
        ids=cot_set.problem_ids,
        groups=groups,
        tau=spec.tau,
    )
    tok_als, drift_als = trajectory_rows(
        [t[:, 0] for t in als_set.trajectories],
        v,
        ids=als_set.problem_ids,
        groups=["ALS (steered)"] * len(als_set),
        tau=spec.tau,
        steered_steps=[by_id["als"][i]["steered_steps"] for i in als_set.problem_ids],
    )
    tokens = [r for r in tok_cot + tok_als if r["step"] < cfg.max_trajectory_steps]
    bands = step_bands(tokens)
    _write_rows(run.probe_table("trajectory_bands"), bands)
    _write_rows(run.probe_table("steering_fired"), _fired_steps(tokens, bands))
    _write_rows(run.probe_table("drift"), drift_cot + drift_als)
    return cot_set, als_set, by_id, drift_cot + drift_als


def _pca_plane(run: RunDir, aset, cot_set, als_set, by_id, directions, layer, position) -> tuple:
    """The fit split's PCA plane at the steered layer, with the test generations and the two
    centroids projected on it."""
    fit_states = aset.at(position)[:, aset.layers.index(layer)]
    basis = fit_pca(fit_states)
    pts = []
    for name, states, labels, ids in (
        ("fit", fit_states, aset.labels, aset.problem_ids),
        ("test CoT", cot_set.at(position)[:, 0], None, cot_set.problem_ids),
        ("test ALS", als_set.at(position)[:, 0], None, als_set.problem_ids),
    ):
        xy = basis.project(states)
        for i, pid in enumerate(ids):
            ok = (
                bool(labels[i])
                if labels is not None
                else by_id["cot" if name == "test CoT" else "als"][pid]["correct"]
            )
            group = f"{name} {'correct' if ok else 'incorrect'}"
            pts.append({"id": pid, "group": group, "x": float(xy[i, 0]), "y": float(xy[i, 1])})
    j = directions.index(layer)
    cents = basis.project(torch.stack([directions.success_mean[j], directions.failure_mean[j]]))
    _write_rows(run.probe_table("pca_points"), pts)
    return basis, cents


def probe_run(
    bridge: Any, run: str | Path, cfg: ProbeRunConfig = ProbeRunConfig(), *, data_dir=None
) -> dict:
    """Probe the run folder `run` (made by `als run`); return the summary."""
    if cfg.difficulty_from is not None:  # before any pass: a wrong folder fails at once
        sampled_fit_problems(RunDir.of(run), cfg.difficulty_from)
    if cfg.fit_only:
        return _probe_fit_only(bridge, RunDir.of(run), cfg, data_dir)
    run = RunDir.of(run).require_finished()
    directions, spec = run.directions(), run.steering()
    layer = spec.layers[0]
    aset, layer_rows, early_rows = _probe_fit(bridge, run, cfg, spec.site, data_dir)
    _difficulty(bridge, run, cfg, spec.site, aset, data_dir)
    cot_set, als_set, by_id, drift = _test_trajectories(
        bridge, run, cfg, spec, directions, data_dir
    )
    position = run.results()["config"]["position"]
    if aset is None or layer not in aset.layers:
        aset = _pca_fit_states(bridge, run, cfg, layer, spec.site, data_dir)
    basis, cents = _pca_plane(run, aset, cot_set, als_set, by_id, directions, layer, position)
    summary = _summary(layer_rows, early_rows, drift, layer, basis, cents)
    summary["tau"] = float(spec.tau) if not isinstance(spec.tau, tuple) else float(spec.tau[0])
    write_json(run.probe_summary_path, summary)
    return summary


def _probe_fit_only(bridge: Any, run: RunDir, cfg: ProbeRunConfig, data_dir) -> dict:
    """The fit split's tables of a run that need not be finished, and their best layer."""
    if not jsonl_exists(run.rows_path("fit", "cot")):
        raise WorkbenchError(f"{run.root} has no fit generations yet: run `als stage fit` first")
    site = run.settings()["als"]["site"]
    aset, layer_rows, early_rows = _probe_fit(bridge, run, cfg, site, data_dir)
    _difficulty(bridge, run, cfg, site, aset, data_dir)
    best, early16 = _best_layer(layer_rows, early_rows)
    return {
        "best_layer": best["layer"],
        "best_auroc": {k: best[k] for k in ("value", "ci_low", "ci_high", "n")},
        "early_auroc_k16_at_best_layer": early16,
    }


def _best_layer(layer_rows: list[dict], early_rows: list[dict]) -> tuple[dict, dict | None]:
    """The layer with the best out-of-fold AUROC (mean over generated tokens), and the AUROC of
    its first 16 tokens' mean."""
    auroc = [r for r in layer_rows if r["metric"] == "auroc" and r["position"] == "mean_generated"]
    best = max(auroc, key=lambda r: r["value"])
    early16 = [r for r in early_rows if r["k"] == 16 and r["layer"] == best["layer"]]
    return best, early16[0] if early16 else None


def _summary(layer_rows, early_rows, drift, layer, basis, cents) -> dict[str, Any]:
    auroc = [r for r in layer_rows if r["metric"] == "auroc" and r["position"] == "mean_generated"]
    best, early16 = _best_layer(layer_rows, early_rows)
    by_group: dict[str, list[dict]] = {}
    for d in drift:
        by_group.setdefault(d["group"], []).append(d)
    drift_summary = {
        g: {
            "n": len(rows),
            "mean_cos": sum(r["mean_cos"] for r in rows) / len(rows),
            "frac_below_tau": sum(r["frac_below_tau"] for r in rows) / len(rows),
        }
        for g, rows in by_group.items()
    }
    return {
        "best_layer": best["layer"],
        "best_auroc": {k: best[k] for k in ("value", "ci_low", "ci_high", "n")},
        "early_auroc_k16_at_best_layer": early16,
        "steered_layer": layer,
        "steered_layer_auroc": next((r for r in auroc if r["layer"] == layer), None),
        "drift_by_group": drift_summary,
        "pca_explained": basis.explained.tolist(),
        "pca_centroids": {"success": cents[0].tolist(), "failure": cents[1].tolist()},
    }
