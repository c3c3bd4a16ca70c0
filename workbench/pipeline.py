"""`als run`: the ALS experiment end to end, honest about splits, resumable at every stage.

1. fit: greedy CoT on a fit split (GSM8K train, or the MATH pool), graded against gold answers;
   residuals cached at every layer.
2. directions: per layer, success centroid minus failure centroid.
3. selection, on a validation split disjoint from fit and test: candidate layers are those with
   the best cross-validated AUROC on the fit split; tau is set per layer as a quantile of
   cos(h_t, v_l) over the fit generations' tokens (so 'tau quantile 0.5' fires on about half of
   fit-like tokens); each (layer, alpha, tau) condition is decoded on the validation split and
   the best accuracy wins (ties: smaller alpha, then fewer interventions).
4. test: CoT and ALS (the selected condition only) on held-out test problems; accuracy with Wilson
   CIs, exact McNemar test, tokens, seconds and intervention rate; figures and `report.html`.

Every stage writes its outputs under the run folder and is skipped when they exist.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from workbench.activations import ActivationSet, CacheConfig, cache_activations
from workbench.artifacts import check_settings, write_json
from workbench.config import check_finite, check_quantiles
from workbench.cot import run_cot
from workbench.data import (
    EXPERIMENT_SPLITS,
    Problem,
    check_disjoint,
    load_problems,
    save_split,
    split_problems,
)
from workbench.directions import LayerDirections, fit_directions, separation
from workbench.errors import WorkbenchError
from workbench.evaluation import mcnemar_exact, paired_counts, summarize
from workbench.generation import GenerationConfig
from workbench.hooks import Site
from workbench.probing import ProbeConfig, probe_layers
from workbench.prompts import PromptConfig
from workbench.run_report import build_run_report
from workbench.steering import SteeringSpec, steer

__all__ = ["ALSRunConfig", "run_als"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ALSRunConfig:
    """Sizes, splits and the selection grid of an ALS run."""

    dataset: Literal["gsm8k", "math", "toy"] = "gsm8k"
    """gsm8k (fit/val from train, test from test), math (fit/val from the pool, test MATH-500),
    or toy (single-digit sums for smoke runs with --model toy)."""
    n_fit: int = 32
    """Problems whose graded CoT gives the directions."""
    n_val: int = 8
    """Problems on which layer, alpha and tau are chosen."""
    n_test: int = 16
    """Held-out test problems (the first n of the test split)."""
    split_seed: int = 0
    """Seed of the fit/validation draw."""
    position: Literal["mean_generated", "last_prompt"] = "mean_generated"
    """States the directions are fit on."""
    site: Site = "resid_post"
    """Residual hook site for caching and steering."""
    n_candidate_layers: int = 2
    """How many layers with the best cross-validated fit-split AUROC enter the validation grid."""
    candidate_layers: tuple[int, ...] | None = None
    """Explicit candidate layers (overrides n_candidate_layers)."""
    alphas: tuple[float, ...] = (0.1,)
    """Steering strengths, relative to the layer's mean residual norm."""
    tau_quantiles: tuple[float, ...] = (0.5,)
    """Thresholds as quantiles of cos(h_t, v_l) over fit tokens (>= 1: always fire)."""
    min_per_class: int = 4
    """Fewest correct and incorrect fit generations accepted."""

    def __post_init__(self) -> None:
        if self.dataset not in EXPERIMENT_SPLITS:
            raise WorkbenchError(
                f"unknown dataset {self.dataset!r}; use {', '.join(EXPERIMENT_SPLITS)}"
            )
        if min(self.n_fit, self.n_val, self.n_test) < 1:
            raise WorkbenchError("n_fit, n_val and n_test must all be >= 1")
        if not self.alphas or not self.tau_quantiles:
            raise WorkbenchError("the selection grid needs at least one alpha and one tau quantile")
        check_finite(self)
        check_quantiles(self.tau_quantiles)
        if self.n_candidate_layers < 1 or self.min_per_class < 1:
            raise WorkbenchError("n_candidate_layers and min_per_class must be >= 1")
        if self.candidate_layers is not None and (
            not self.candidate_layers or min(self.candidate_layers) < 0
        ):
            raise WorkbenchError(
                f"candidate_layers must be layer numbers >= 0, not {self.candidate_layers}"
            )


def _splits(cfg: ALSRunConfig, data_dir: str | None, out: Path) -> dict[str, list[Problem]]:
    fit_split, test_split = EXPERIMENT_SPLITS[cfg.dataset]
    pool = load_problems(cfg.dataset, fit_split, data_dir=data_dir)
    if cfg.n_fit + cfg.n_val > len(pool):
        raise WorkbenchError(
            f"n_fit + n_val = {cfg.n_fit + cfg.n_val} exceeds the {len(pool)} problems of "
            f"{cfg.dataset}/{fit_split}"
        )
    parts = split_problems(pool, {"fit": cfg.n_fit, "val": cfg.n_val}, seed=cfg.split_seed)
    parts["test"] = load_problems(cfg.dataset, test_split, data_dir=data_dir, limit=cfg.n_test)
    ids = {name: [p.id for p in probs] for name, probs in parts.items()}
    check_disjoint(ids["fit"] + ids["val"], ids["test"], fit_name="fit+val", eval_name="test")
    check_disjoint(ids["fit"], ids["val"], fit_name="fit", eval_name="val")
    for name, probs in parts.items():
        save_split(out / "splits" / f"{name}.json", name, [p.id for p in probs])
    return parts


def _token_cosines(aset: ActivationSet, directions: LayerDirections) -> dict[int, torch.Tensor]:
    """cos(h_t, v_l) over every cached generated token, per trajectory layer."""
    out = {}
    for j, layer in enumerate(aset.trajectory_layers):
        states = torch.cat([t[:, j].float() for t in aset.trajectories])
        out[layer] = torch.cosine_similarity(states, directions.vector(layer)[None], dim=-1)
    return out


def _tau(cos: torch.Tensor, q: float) -> float:
    return 2.0 if q >= 1 else float(torch.quantile(cos, q))


def _method_row(name: str, rows: list[dict], base: list[dict] | None, n_layers: int) -> dict:
    s = summarize(rows)
    row = {
        "method": name,
        "n": s["n"],
        "correct": s["correct"],
        "accuracy": s["accuracy"],
        "ci_low": s["ci_low"],
        "ci_high": s["ci_high"],
        "gen_tokens": s["mean_generated_tokens"],
        "sec_per_problem": s["seconds_per_problem"],
        "intervention_rate": sum(r["interventions"] for r in rows)
        / max(1, n_layers * sum(r["generated_tokens"] for r in rows)),
    }
    if base is not None:
        pc = paired_counts(
            {r["id"]: r["correct"] for r in base}, {r["id"]: r["correct"] for r in rows}
        )
        row.update(
            only_cot=pc["only_base"],
            only_als=pc["only_other"],
            mcnemar_p=mcnemar_exact(pc["only_base"], pc["only_other"]),
        )
    return row


def run_als(
    bridge: Any,
    out: str | Path,
    cfg: ALSRunConfig = ALSRunConfig(),
    *,
    generation: GenerationConfig = GenerationConfig(),
    prompt: PromptConfig = PromptConfig(),
    data_dir: str | None = None,
    model_name: str = "",
) -> dict[str, Any]:
    """Run (or resume) the whole experiment into `out`; return the results summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_settings(
        out / "config.json",
        {"als": asdict(cfg), "generation": asdict(generation)},
        first_record={"command": "run", "model": {"name": model_name}},
    )
    parts = _splits(cfg, data_dir, out)
    common = {"generation": generation, "prompt": prompt}

    # 1. fit: graded CoT, residuals at every layer
    fit_rows = run_cot(
        bridge, parts["fit"], out=out / "fit" / "cot.jsonl", method="cot-fit", **common
    )
    meta = {"model": model_name, "prompt": asdict(prompt), "split": "fit"}
    aset = cache_activations(
        bridge,
        parts["fit"],
        fit_rows,
        out / "fit" / "activations",
        CacheConfig(site=cfg.site, batch_size=generation.batch_size),
        prompt=prompt,
        meta=meta,
    )

    # 2. directions
    directions = fit_directions(
        aset.at(cfg.position),
        aset.labels,
        aset.layers,
        min_per_class=cfg.min_per_class,
        provenance={
            "model": model_name,
            "site": cfg.site,
            "position": cfg.position,
            "label_source": "gold answer",
            "fit_split_ids": [p.id for p in parts["fit"]],
        },
    )
    directions.save(out / "directions")
    sep = separation(aset.at(cfg.position), aset.labels)

    # 3. selection on the validation split
    # Rank layers by cross-validated AUROC on the fit split: with far fewer examples than
    # dimensions the in-sample separation is inflated everywhere and ranks noise.
    cv = [
        r
        for r in probe_layers(
            aset.at(cfg.position),
            aset.labels,
            aset.layers,
            ProbeConfig(n_bootstrap=200, shuffled_control=False),
        )
        if r["metric"] == "auroc"
    ]
    ranked = sorted(cv, key=lambda r: r["value"], reverse=True)
    candidates = cfg.candidate_layers or tuple(
        sorted(r["layer"] for r in ranked[: cfg.n_candidate_layers])
    )
    traj = cache_activations(
        bridge,
        parts["fit"],
        fit_rows,
        out / "fit" / "trajectories",
        CacheConfig(
            layers=candidates,
            trajectory_layers=candidates,
            site=cfg.site,
            batch_size=generation.batch_size,
        ),
        prompt=prompt,
        meta=meta,
        progress=False,
    )
    token_cos = _token_cosines(traj, directions)
    val_cot = run_cot(bridge, parts["val"], out=out / "val" / "cot.jsonl", method="cot", **common)
    grid = []
    for layer in candidates:
        for alpha in cfg.alphas:
            for q in cfg.tau_quantiles:
                spec = SteeringSpec(
                    layers=(layer,), alpha=alpha, tau=_tau(token_cos[layer], q), site=cfg.site
                )
                name = f"als-L{layer}-a{alpha:g}-q{q:g}"
                with steer(bridge, spec, directions):
                    rows = run_cot(
                        bridge,
                        parts["val"],
                        out=out / "val" / f"{name}.jsonl",
                        method=name,
                        **common,
                    )
                grid.append(
                    {
                        **_method_row(name, rows, val_cot, 1),
                        "layer": layer,
                        "alpha": alpha,
                        "tau_quantile": q,
                        "tau": spec.tau,
                    }
                )
    best = max(grid, key=lambda g: (g["accuracy"], -g["alpha"], -g["intervention_rate"]))
    selection = {
        "candidates": list(candidates),
        "grid": grid,
        "best": best,
        "val_cot": _method_row("cot", val_cot, None, 1),
    }
    write_json(out / "selection.json", selection)

    # 4. test: CoT vs the selected ALS condition only
    test_cot = run_cot(
        bridge, parts["test"], out=out / "test" / "cot.jsonl", method="cot", **common
    )
    spec = SteeringSpec(
        layers=(best["layer"],), alpha=best["alpha"], tau=best["tau"], site=cfg.site
    )
    with steer(bridge, spec, directions):
        test_als = run_cot(
            bridge, parts["test"], out=out / "test" / "als.jsonl", method="als", **common
        )
    table = [_method_row("cot", test_cot, None, 1), _method_row("als", test_als, test_cot, 1)]
    results = {
        "config": asdict(cfg),
        "model": model_name,
        "steering": asdict(spec),
        "test": table,
        "validation": {"cot": selection["val_cot"], "best": best},
    }
    results["fit_cv_auroc"] = {str(r["layer"]): r["value"] for r in cv}
    results["fit_separation"] = {
        str(layer): float(v) for layer, v in zip(aset.layers, sep, strict=True)
    }
    write_json(out / "results.json", results)
    build_run_report(out)
    return results
