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
   CIs, exact McNemar test, tokens, seconds and intervention rate.

Each stage is a function over the run folder (`RunDir`) that reads its inputs from disk, so it
reruns alone; decoding resumes from the rows already written. Figures and `report.html` are the
report stage's (`workbench.report.run_report`), so the experiment itself imports no plotting
library.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from workbench.checks import check_finite, check_quantiles
from workbench.core.activations import (
    ActivationSet,
    CacheConfig,
    cache_activations,
    cached_settings,
)
from workbench.core.artifacts import read_json, write_json
from workbench.core.directions import LayerDirections, fit_directions, separation
from workbench.core.evaluation import with_tradeoff_fields
from workbench.core.probing import EARLY_KS, ProbeConfig, probe_layers
from workbench.core.prompts import PromptConfig
from workbench.core.recording import StateRecorder
from workbench.core.records import summarize
from workbench.core.selection import ALWAYS_ON_TAU, pick_best, tau_from_quantile
from workbench.core.steering import SteeringSpec, steer
from workbench.engine.config import GenerationConfig
from workbench.engine.hooks import Site
from workbench.errors import WorkbenchError
from workbench.experiment.labels import LabelSource, fit_labels, label_agreement, self_verify_fit
from workbench.experiment.rundir import RunDir
from workbench.experiment.sweeps import control_directions
from workbench.methods.cot import Arm, Job, run_arms, run_cot, run_jobs
from workbench.sources.data import (
    EXPERIMENT_SPLITS,
    check_disjoint,
    load_problems,
    save_split,
    split_problems,
)
from workbench.sources.models import ModelConfig, model_config_of

__all__ = [
    "BESIDE",
    "ALSRunConfig",
    "beside_arms",
    "cot_jobs",
    "directions_stage",
    "evaluate_stage",
    "fit_stage",
    "labels_stage",
    "make_splits",
    "quantile_taus",
    "record_run_settings",
    "reference_select_stage",
    "run_als",
    "select_stage",
    "selection_plan",
    "tau_tokens",
    "test_arms",
    "timed_with_cot",
    "tradeoff_fields_of",
    "with_tradeoff",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ALSRunConfig:
    """Sizes, splits and the selection grid of an ALS run."""

    dataset: Literal["gsm8k", "math", "toy"] = "gsm8k"
    """gsm8k (fit/val from train, test from test), math (fit/val from the pool, test MATH-500),
    or toy (single-digit sums for smoke runs with --model.name toy)."""
    n_fit: int = 32
    """Problems whose graded CoT gives the directions."""
    n_val: int = 8
    """Problems on which layer, alpha and tau are chosen."""
    n_test: int = 16
    """Held-out test problems (the first n of the test split)."""
    split_seed: int = 0
    """Seed of the fit/validation draw."""
    split_order: Literal["seeded", "first"] = "seeded"
    """'seeded': fit and validation drawn at random (split_seed) from the fit pool; 'first': fit is
    the first n_fit problems of the pool in file order (the ALS authors' fit set: the first 1,000
    GSM8K train problems), validation the next n_val."""
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
    """Fewest correct and incorrect fit generations accepted (may change when a run resumes:
    it decides nothing that is decoded)."""
    n_tau_fit: int = 256
    """Fit generations (the first n of the fit split) whose every token's cos(h_t, v_l) sets tau
    at each quantile: their teacher-forced pass runs up to the last candidate layer, so on a
    large fit split all of them would cost as much as caching the fit split again."""
    reference: bool = False
    """Also test the ALS authors' configuration beside ours, as 'als-reference' (README: "The
    authors' configuration"): their vector (success minus failure centroid of the final
    normalised state, the unembedding's input, averaged over generated tokens) added at the last
    block's input, `alpha` times the unit vector, at the newest position only, never persisting,
    where the raw cosine of that input with the vector is below `reference_tau` (theirs: 0.1);
    alpha chosen on the validation split among `reference_alphas` (their grid; Table 1 reports
    the best alpha per setting). Departures from their code (negbuna/ALS, src/): labels from the
    run's label source (gold by default; theirs: self-verification); the mean over the generated
    tokens' own states rather than the states that produced them; a KV cache repaired without
    the nudge instead of a full recompute at every step (equal, tested); the run's prompt (the
    workbench's own unless --prompt.format says p1 / p2), its stop rule (at the first complete
    answer; theirs: EOS, <|im_end|>, <|endoftext|> or the cap; the embedded model stops at its
    EOS <|im_end|> only) and its token cap (theirs: 1,024); the run's grader (the first \\boxed{},
    no last-number fallback in LaTeX text; theirs: exact string match for GSM8K; for MATH-500
    the last box, else an answer phrase or the last number, then math-verify, Qwen's grader and
    MATH's normaliser; for P2 on MATH-500 the whole output must parse as JSON, on GSM8K a
    regular expression after "final answer" when it does not); the fit pool (MATH: drawn with
    split_seed from the MATH problems outside MATH-500; theirs: "the first 500 training
    examples", their README, though their loader given the hub name falls back to MATH-500's
    test split); float32 on the embedded model, a de-quantised Q4_K_M GGUF (theirs:
    Qwen2.5-7B-Instruct and Llama-3.1-8B)."""
    reference_alphas: tuple[float, ...] = (0.1, 0.3, 0.6)
    """The reference arm's strengths (absolute, on the unit vector) decoded on validation; the
    best accuracy is tested (ties: the smaller alpha, then fewer interventions)."""
    reference_tau: float = 0.1
    """The reference arm's gate: nudge where cos(h, v) < tau at the last block's input."""
    gated: bool = False
    """Also test ALS-Gated ('als-gated', for the P2 prompt): the reference arm, at the alpha
    chosen for it on validation, with the JSON gate of the authors' `gated_generation.py` (no
    nudge once more than five tokens are out while the text from the first "{", closed with
    "}", does not parse; `SteeringSpec.json_gate`). Needs `reference`."""
    reference_always: bool = False
    """Also test the always-on variant of the reference arm ('als-reference-always': tau above
    every cosine, alpha `reference_alpha`): what runs before 2026-12-03 called the reference arm,
    from a reading of the follow-up repository (negbuna/latense) that does not hold for ALS."""
    reference_alpha: float = 0.3
    """Strength of the always-on variant, absolute (the authors' default alpha)."""
    control: bool = False
    """Also run a random direction of the same norm at the selected layer, alpha and tau
    quantile ('random-control', seed 0; its tau at that quantile of its own fit-token cosines) on
    validation (after the pick: `selection.json`'s val_control) and test: what any push of that
    size does."""
    beside: str | None = None
    """A finished run on the same splits whose selected arm and control join this run's test
    split as 'als-beside' and 'random-control-beside' (with the steering that run chose), so that
    they are tabled, paired and re-timed (`als stage retime`) with this run's arms; `als derive`
    sets it to its source run and copies those rows (greedy decoding is batch-invariant; the
    re-timing compares them token for token)."""
    label_source: LabelSource = "gold"
    """What makes a fit generation a success: 'gold' (graded against the gold answer) or 'self'
    (the model's own four verification prompts all pass: the ALS authors' labels; adds the labels
    stage, and the agreement of the two sources to the results)."""

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> ALSRunConfig:
        """The config as the settings record holds it (lists back to tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})

    def __post_init__(self) -> None:
        if self.dataset not in EXPERIMENT_SPLITS:
            raise WorkbenchError(
                f"unknown dataset {self.dataset!r}; use {', '.join(EXPERIMENT_SPLITS)}"
            )
        if self.split_order not in ("seeded", "first"):
            raise WorkbenchError(f"split_order must be seeded or first, not {self.split_order!r}")
        if min(self.n_fit, self.n_val, self.n_test, self.n_tau_fit) < 1:
            raise WorkbenchError("n_fit, n_val, n_test and n_tau_fit must all be >= 1")
        if not self.alphas or not self.tau_quantiles:
            raise WorkbenchError("the selection grid needs at least one alpha and one tau quantile")
        check_finite(self)
        check_quantiles(self.tau_quantiles)
        if self.n_candidate_layers < 1 or self.min_per_class < 1:
            raise WorkbenchError("n_candidate_layers and min_per_class must be >= 1")
        if self.gated and not self.reference:
            raise WorkbenchError(
                "gated (ALS-Gated) takes the reference arm's alpha: add --als.reference true"
            )
        if self.candidate_layers is not None and (
            not self.candidate_layers or min(self.candidate_layers) < 0
        ):
            raise WorkbenchError(
                f"candidate_layers must be layer numbers >= 0, not {self.candidate_layers}"
            )


def make_splits(run: RunDir, cfg: ALSRunConfig, *, data_dir: str | None = None) -> None:
    """Draw the disjoint fit, validation and test problem ids into the run folder (once)."""
    if all(run.split_path(name).exists() for name in ("fit", "val", "test")):
        return
    fit_split, test_split = EXPERIMENT_SPLITS[cfg.dataset]
    pool = load_problems(cfg.dataset, fit_split, data_dir=data_dir)
    if cfg.n_fit + cfg.n_val > len(pool):
        raise WorkbenchError(
            f"n_fit + n_val = {cfg.n_fit + cfg.n_val} exceeds the {len(pool)} problems of "
            f"{cfg.dataset}/{fit_split}"
        )
    if cfg.split_order == "first":
        parts = {"fit": pool[: cfg.n_fit], "val": pool[cfg.n_fit : cfg.n_fit + cfg.n_val]}
    else:
        parts = split_problems(pool, {"fit": cfg.n_fit, "val": cfg.n_val}, seed=cfg.split_seed)
    parts["test"] = load_problems(cfg.dataset, test_split, data_dir=data_dir, limit=cfg.n_test)
    ids = {name: [p.id for p in probs] for name, probs in parts.items()}
    check_disjoint(ids["fit"] + ids["val"], ids["test"], fit_name="fit+val", eval_name="test")
    check_disjoint(ids["fit"], ids["val"], fit_name="fit", eval_name="val")
    for name, probs in ids.items():
        save_split(run.split_path(name), name, probs)


def _token_cosines(aset: ActivationSet, directions: LayerDirections) -> dict[int, torch.Tensor]:
    """cos(h_t, v_l) over every cached generated token, per trajectory layer."""
    out = {}
    for j, layer in enumerate(aset.trajectory_layers):
        states = torch.cat([t[:, j].float() for t in aset.trajectories])
        out[layer] = torch.cosine_similarity(states, directions.vector(layer)[None], dim=-1)
    return out


def _method_row(name: str, rows: list[dict], base: list[dict] | None) -> dict:
    return summarize(rows, method=name, base=base).to_json()


def fit_stage(
    bridge: Any, run: RunDir, cfg: ALSRunConfig, *, data_dir=None
) -> ActivationSet | None:
    """Graded CoT on the fit split and its states at every layer, with the early means `als
    probe` reads, and the final normalised state for the reference arm (resumable). The states
    are recorded while the fit split decodes (`workbench.core.recording`); only generations
    decoded by an earlier, interrupted call go through a teacher-forced pass. Nothing is cached
    once nothing needs it (`_fit_states_needed`).

    The validation and test splits' plain CoT, which need no direction, decode in the same
    continuous batch (`cot_jobs`): their stages then resume them, and decode only their steered
    arms."""
    generation, prompt = run.generation(), run.prompt()
    jobs = cot_jobs(run, data_dir=data_dir)
    needed = _fit_states_needed(run, cfg)
    meta = {"model": run.settings()["model"]["name"], "prompt": asdict(prompt), "split": "fit"}
    cache_cfg, final = _fit_cache_config(bridge, run, cfg) if needed else (None, None)
    if cache_cfg is not None:
        recorder = StateRecorder(
            bridge, run.fit_activations_dir, cache_cfg, final_out=final, meta=meta
        )
        jobs["fit"] = replace(jobs["fit"], recorder=recorder)
    rows = run_jobs(bridge, jobs, generation=generation, prompt=prompt)["fit"]
    if cache_cfg is None:
        return None
    problems = run.problems("fit", data_dir=data_dir)
    if _wants_reference(cfg) and final is None:  # the reference arm's site, on its own
        final_cfg = CacheConfig(site="final", batch_size=generation.batch_size)
        cache_activations(
            bridge, problems, rows, run.fit_final_dir, final_cfg, prompt=prompt, meta=meta
        )
    return cache_activations(  # loads the recorded states; teacher-forces what is missing
        bridge,
        problems,
        rows,
        run.fit_activations_dir,
        cache_cfg,
        prompt=prompt,
        meta=meta,
        final_out=final,
    )


def _fit_cache_config(
    bridge: Any, run: RunDir, cfg: ALSRunConfig
) -> tuple[CacheConfig, Path | None]:
    """What the fit states hold (a resumed cache keeps what it began with), and the folder of
    the final normalised state cached in the same passes (None: not wanted, or not at the run's
    site)."""
    cached = cached_settings(run.fit_activations_dir)
    if cached is None:
        early, kept = EARLY_KS, _kept_token_layers(bridge, run, cfg)
    else:
        early, kept = tuple(cached["early_ks"]), tuple(cached["trajectory_layers"])
    cache_cfg = CacheConfig(
        site=cfg.site,
        trajectory_layers=kept,
        early_ks=early,
        batch_size=run.generation().batch_size,
    )
    final = run.fit_final_dir if _wants_reference(cfg) and cfg.site == "resid_post" else None
    return cache_cfg, final


TOKEN_STATES_BUDGET = 1 << 30
"""Bytes (float16, at the token cap) the fit pass may spend on keeping every generated token's
state at every layer, so that tau needs no pass of its own (`selection_plan`)."""


def _kept_token_layers(bridge: Any, run: RunDir, cfg: ALSRunConfig) -> tuple[int, ...]:
    """Layers at which the fit pass keeps every generated token's state: all of them when tau
    reads the whole fit split (n_fit <= n_tau_fit) and those states fit `TOKEN_STATES_BUDGET`,
    else none (the selection plan then replays the first n_tau_fit generations to the
    candidate layers)."""
    n_layers = bridge.cfg.n_layers
    size = cfg.n_fit * run.generation().max_new_tokens * n_layers * bridge.cfg.d_model * 2
    if cfg.n_fit > cfg.n_tau_fit or size > TOKEN_STATES_BUDGET or cfg.site == "final":
        return ()
    return tuple(range(n_layers))


def _wants_reference(cfg: ALSRunConfig) -> bool:
    """Whether the run tests a reference arm (and so fits the final state's direction)."""
    return cfg.reference or cfg.reference_always


def cot_jobs(run: RunDir, *, data_dir=None) -> dict[str, Job]:
    """Plain CoT on the fit and validation splits, each to the rows file its stage reads
    ('cot-fit' rows on fit, 'cot' on validation). The test split's CoT decodes in the test
    stage, in one batch with the steered arms, so that their seconds compare like for like."""
    return {
        split: Job(
            run.problems(split, data_dir=data_dir),
            out=run.rows_path(split, "cot"),
            method="cot-fit" if split == "fit" else "cot",
        )
        for split in ("fit", "val")
    }


def _fit_states_needed(run: RunDir, cfg: ALSRunConfig) -> bool:
    """Whether a stage of the run still reads the fit states: not once the directions (and the
    reference arm's) and the selection plan exist, e.g. in a published copy of a run, which
    holds no states (`als probe` caches what it needs)."""
    made = [run.directions_path, run.selection_plan_path]
    if _wants_reference(cfg):
        made.append(run.reference_directions_path)
    return not all(path.exists() for path in made)


def labels_stage(
    bridge: Any, run: RunDir, cfg: ALSRunConfig, *, data_dir=None, limit: int | None = None
) -> dict:
    """Self-verification labels of the fit generations (`workbench.experiment.labels`; the first
    `limit` only, e.g. to measure their agreement with gold on part of a large fit split),
    resumable."""
    return self_verify_fit(bridge, run, data_dir=data_dir, limit=limit)


def directions_stage(run: RunDir, cfg: ALSRunConfig) -> LayerDirections:
    """Per layer, success centroid minus failure centroid of the fit split (from disk), with the
    run's label source; with `reference`, also the reference arm's direction (final state)."""
    if not _fit_states_needed(run, cfg):
        return run.directions()
    if _wants_reference(cfg):
        # theirs averages each example's states over its generated tokens, whatever `position`
        # says for ours (`collect_states.py`: `torch.stack(hidden_states_list).mean(dim=0)`)
        _fit_and_save(
            run, cfg, run.fit_final_dir, "final", run.reference_directions_path, "mean_generated"
        )
    return _fit_and_save(
        run, cfg, run.fit_activations_dir, cfg.site, run.directions_path, cfg.position
    )


def _fit_and_save(
    run: RunDir, cfg: ALSRunConfig, states: Path, site: str, out: Path, position: str
) -> LayerDirections:
    aset = ActivationSet.load(states)
    directions = fit_directions(
        aset.at(position),
        fit_labels(run, cfg.label_source, aset),
        aset.layers,
        min_per_class=cfg.min_per_class,
        provenance={
            "model": run.settings()["model"]["name"],
            "site": site,
            "position": position,
            "label_source": cfg.label_source,
            "fit_split_ids": list(aset.problem_ids),
        },
    )
    directions.save(out)
    return directions


def _candidate_layers(
    aset: ActivationSet, labels: Tensor, cfg: ALSRunConfig
) -> tuple[tuple[int, ...], list]:
    """Layers ranked by cross-validated AUROC on the fit split: with far fewer examples than
    dimensions the in-sample separation is inflated everywhere and ranks noise."""
    cv = [
        r
        for r in probe_layers(
            aset.at(cfg.position),
            labels,
            aset.layers,
            ProbeConfig(n_bootstrap=200, shuffled_control=False),
        )
        if r["metric"] == "auroc"
    ]
    ranked = sorted(cv, key=lambda r: r["value"], reverse=True)
    candidates = cfg.candidate_layers or tuple(
        sorted(r["layer"] for r in ranked[: cfg.n_candidate_layers])
    )
    return candidates, cv


def select_stage(bridge: Any, run: RunDir, cfg: ALSRunConfig, *, data_dir=None) -> dict:
    """Decode every (candidate layer, alpha, tau quantile) condition on the validation split and
    pick the best (`workbench.core.selection`); writes `selection.json`."""
    generation, prompt = run.generation(), run.prompt()
    plan = selection_plan(bridge, run, cfg, data_dir=data_dir)
    directions = run.directions()
    problems = run.problems("val", data_dir=data_dir)
    common = {"generation": generation, "prompt": prompt}
    arms: dict[str, Arm] = {"cot": None}
    conditions = {}
    for layer in plan["candidates"]:
        for alpha in cfg.alphas:
            for q in cfg.tau_quantiles:
                tau = _planned_tau(plan, "als", layer, q)
                name = f"als-L{layer}-a{alpha:g}-q{q:g}"
                spec = SteeringSpec(layers=(layer,), alpha=alpha, tau=tau, site=cfg.site)
                arms[name] = (spec, directions)
                conditions[name] = {"layer": layer, "alpha": alpha, "tau_quantile": q, "tau": tau}
    outs = {name: run.rows_path("val", name) for name in arms}
    rows = run_arms(bridge, problems, arms, outs=outs, **common)  # one continuous batch
    val_cot = rows["cot"]
    grid = [{**_method_row(n, rows[n], val_cot), **c} for n, c in conditions.items()]
    best = dict(pick_best(grid))
    selection = {
        "candidates": plan["candidates"],
        "grid": grid,
        "best": best,
        "val_cot": _method_row("cot", val_cot, None),
        "fit_cv_auroc": plan["fit_cv_auroc"],
    }
    if cfg.control:  # after the pick, so that it cannot be picked
        spec, control = _control_arm(run, cfg, best, plan)
        with steer(bridge, spec, control):
            rows = run_cot(
                bridge,
                problems,
                out=run.rows_path("val", "random-control"),
                **common,
                method="random-control",
            )
        selection["val_control"] = {**_method_row("random-control", rows, val_cot), **asdict(spec)}
    write_json(run.selection_path, selection)
    return selection


_CONTROL = "random:0"
"""The control arm's direction (`workbench.experiment.sweeps.control_directions`)."""


def selection_plan(bridge: Any, run: RunDir, cfg: ALSRunConfig, *, data_dir=None) -> dict:
    """What selection and test need from the fit split's states, computed once and kept in the
    run folder (`RunDir.selection_plan_path`), so that both resume without the fit activations
    (a published run holds none): the candidate layers with their cross-validated AUROC, tau at
    each quantile for the run's directions and for the control's (from the first `n_tau_fit`
    fit generations' tokens), and the fit separation per layer."""
    if run.selection_plan_path.exists():
        return read_json(run.selection_plan_path)
    aset = run.fit_states()
    labels = fit_labels(run, cfg.label_source, aset)
    candidates, cv = _candidate_layers(aset, labels, cfg)
    if len(aset) <= cfg.n_tau_fit and set(candidates) <= set(aset.trajectory_layers):
        traj = aset.with_trajectory_layers(candidates)  # kept by the fit pass
    else:
        traj = tau_tokens(bridge, run, run, candidates, cfg, data_dir=data_dir)
    directions = run.directions()
    taus = {"als": quantile_taus(traj, directions, cfg)}
    if cfg.control:
        taus["random-control"] = quantile_taus(traj, control_directions(directions, _CONTROL), cfg)
    sep = separation(aset.at(cfg.position), labels)
    plan = {
        "candidates": list(candidates),
        "fit_cv_auroc": {str(r["layer"]): r["value"] for r in cv},
        "n_tau_generations": len(traj),
        "taus": taus,
        "fit_separation": {str(ly): float(v) for ly, v in zip(aset.layers, sep, strict=True)},
    }
    write_json(run.selection_plan_path, plan)
    return plan


def tau_tokens(
    bridge: Any,
    source: RunDir,
    run: RunDir,
    layers: tuple[int, ...],
    cfg: ALSRunConfig,
    *,
    data_dir=None,
) -> ActivationSet:
    """Every generated token's state at `layers` of the first `cfg.n_tau_fit` fit generations
    of `source` (teacher-forced up to the last of them), cached in `run`'s fit trajectories:
    what tau's quantiles read."""
    return cache_activations(
        bridge,
        source.problems("fit", data_dir=data_dir)[: cfg.n_tau_fit],
        source.rows("fit", "cot"),
        run.fit_trajectories_dir,
        CacheConfig(
            layers=layers,
            trajectory_layers=layers,
            site=cfg.site,
            batch_size=source.generation().batch_size,
        ),
        prompt=source.prompt(),
    )


def quantile_taus(
    traj: ActivationSet, directions: LayerDirections, cfg: ALSRunConfig
) -> dict[str, dict[str, float]]:
    """Per candidate layer and tau quantile, the threshold over the cached fit tokens."""
    cos = _token_cosines(traj, directions)
    return {
        str(layer): {f"{q:g}": tau_from_quantile(cos[layer], q) for q in cfg.tau_quantiles}
        for layer in traj.trajectory_layers
    }


def _planned_tau(plan: dict, arm: str, layer: int, q: float) -> float:
    return plan["taus"][arm][str(layer)][f"{q:g}"]


def evaluate_stage(bridge: Any, run: RunDir, cfg: ALSRunConfig, *, data_dir=None) -> dict[str, Any]:
    """CoT and the selected ALS condition (and the control / reference arms the config asks for)
    on the held-out test split; writes `results.json` (the run is then finished)."""
    selection = run.selection()
    best = selection["best"]
    problems = run.problems("test", data_dir=data_dir)
    plan = selection_plan(bridge, run, cfg, data_dir=data_dir)
    arms = test_arms(run, cfg, plan)
    common = {"generation": run.generation(), "prompt": run.prompt()}
    outs = {name: run.rows_path("test", name) for name in arms}
    rows = run_arms(bridge, problems, arms, outs=outs, **common)
    test_rows = [_method_row("cot", rows["cot"], None)]
    test_rows += [_method_row(name, rows[name], rows["cot"]) for name in arms if name != "cot"]
    test_rows = with_tradeoff(test_rows, {name: rows[name] for name in arms})
    extra = {_SPEC_KEYS[n]: asdict(arm[0]) for n, arm in arms.items() if n in _SPEC_KEYS and arm}
    results = {
        "config": asdict(cfg),
        "model": run.settings()["model"]["name"],
        "steering": asdict(_selected_arm(run, cfg, best)[0]),
        **extra,
        "test": test_rows,
        "validation": {"cot": selection["val_cot"], "best": best, **_reference_validation(run)},
        "fit_cv_auroc": selection.get("fit_cv_auroc", {}),
        "fit_separation": plan["fit_separation"],
        "label_agreement": label_agreement(run),
    }
    write_json(run.results_path, results)
    return results


def timed_with_cot(rows: list[dict], cot: list[dict]) -> str:
    """How an arm's seconds compare with CoT's on the same problems: 'together' (every row
    decoded in the same continuous batch as CoT's row of its problem: like for like), 'apart'
    (none), 'partly', or 'unknown' (rows written before the workbench recorded decode calls)."""
    calls = {r["id"]: r.get("decode_call") for r in cot}
    if any(r.get("decode_call") is None for r in rows) or None in calls.values():
        return "unknown"
    shared = [r["decode_call"] == calls.get(r["id"]) for r in rows]
    return "together" if all(shared) else "apart" if not any(shared) else "partly"


def with_tradeoff(summaries: list[dict], rows: dict[str, list[dict]]) -> list[dict]:
    """Test summaries with how each arm was timed against CoT (`timed_with_cot`) and the
    trade-off fields (`tradeoff_fields_of`)."""
    timed = {
        name: "is cot" if name == "cot" else timed_with_cot(rows[name], rows["cot"])
        for name in (s["method"] for s in summaries)
    }
    return tradeoff_fields_of([{**s, "timed_with_cot": timed[s["method"]]} for s in summaries])


def tradeoff_fields_of(summaries: list[dict]) -> list[dict]:
    """Summaries (each with its `timed_with_cot`) with the trade-off fields (the paper's Eq. 1;
    `tradeoff_scores`): the score, its % change against CoT and the time normaliser
    (`tradeoff_normaliser`, `tradeoff_normaliser_seconds`).

    One definition everywhere: the score is given only where an iterative method (SC,
    LatentSeek) was timed together with the others, its time the normaliser
    (`iterative_normaliser`), and only to the arms timed like for like (CoT and the arms decoded
    in one batch with it). A run's test arms are CoT and steered arms, never an iterative
    method, so in `results.json` every score is None: the score of a setting is the paper
    table's, from a re-timing or `als compare` that holds SC or LatentSeek
    (`workbench.report.paper_table`)."""
    alike = {s["method"] for s in summaries if s.get("timed_with_cot") in ("is cot", "together")}
    return with_tradeoff_fields(summaries, timed=alike)


def _reference_validation(run: RunDir) -> dict[str, Any]:
    """The reference arm's alpha grid on validation, where the run decoded it."""
    if not run.reference_selection_path.exists():
        return {}
    return {"reference": read_json(run.reference_selection_path)}


_SPEC_KEYS = {
    "random-control": "control_steering",
    "als-reference": "reference_steering",
    "als-reference-always": "reference_always_steering",
    "als-gated": "gated_steering",
    "als-beside": "beside_steering",
    "random-control-beside": "beside_control_steering",
}
"""Where results.json records the steering of each extra test arm."""


def _selected_arm(run: RunDir, cfg: ALSRunConfig, best: dict) -> Arm:
    """The condition chosen on validation, with the run's directions."""
    spec = SteeringSpec(
        layers=(best["layer"],), alpha=best["alpha"], tau=best["tau"], site=cfg.site
    )
    return spec, run.directions()


def _control_arm(run: RunDir, cfg: ALSRunConfig, best: dict, plan: dict) -> Arm:
    """The selected condition with a random direction of the same norm (see `control`), its tau
    at the same quantile of its own fit-token cosines."""
    directions = control_directions(run.directions(), _CONTROL)
    tau = _planned_tau(plan, "random-control", best["layer"], best["tau_quantile"])
    spec = SteeringSpec(layers=(best["layer"],), alpha=best["alpha"], tau=tau, site=cfg.site)
    return spec, directions


def _reference_arm(run: RunDir, cfg: ALSRunConfig, alpha: float, tau: float) -> Arm:
    """The ALS authors' configuration (see `ALSRunConfig.reference`) at `alpha` and `tau`."""
    directions = LayerDirections.load(run.reference_directions_path)
    return SteeringSpec.authors(directions.layers[0], alpha, tau), directions


def reference_select_stage(bridge: Any, run: RunDir, cfg: ALSRunConfig, *, data_dir=None) -> dict:
    """Decode the reference arm at each of `reference_alphas` on the validation split (one
    continuous batch, beside the run's CoT rows) and pick its alpha (`pick_best`); writes
    `reference-selection.json`. The test split is not touched."""
    problems = run.problems("val", data_dir=data_dir)
    arms: dict[str, Arm] = {"cot": None}
    for alpha in cfg.reference_alphas:
        arms[f"als-reference-a{alpha:g}"] = _reference_arm(run, cfg, alpha, cfg.reference_tau)
    outs = {name: run.rows_path("val", name) for name in arms}
    rows = run_arms(
        bridge, problems, arms, outs=outs, generation=run.generation(), prompt=run.prompt()
    )
    grid = [
        {**_method_row(name, rows[name], rows["cot"]), "alpha": alpha, "tau": cfg.reference_tau}
        for name, alpha in zip(list(arms)[1:], cfg.reference_alphas, strict=True)
    ]
    selection = {
        "grid": grid,
        "best": dict(pick_best(grid)),
        "val_cot": _method_row("cot", rows["cot"], None),
    }
    write_json(run.reference_selection_path, selection)
    return selection


def test_arms(run: RunDir, cfg: ALSRunConfig, plan: dict) -> dict[str, Arm]:
    """Every arm the test split decodes, by name: CoT, the selected condition, and the control
    and reference arms the config asks for (transient arms share the batch)."""
    best = run.selection()["best"]
    arms: dict[str, Arm] = {"cot": None, "als": _selected_arm(run, cfg, best)}
    if cfg.control:
        arms["random-control"] = _control_arm(run, cfg, best, plan)
    arms.update(_test_reference_arms(run, cfg))
    if cfg.beside is not None:
        arms.update(beside_arms(RunDir(Path(cfg.beside))))
    return arms


BESIDE: dict[str, str] = {"als": "als-beside", "random-control": "random-control-beside"}
"""A beside run's arm -> its name among this run's test arms."""


def beside_arms(other: RunDir) -> dict[str, Arm]:
    """Another finished run's selected arm and control (where it has one), under `BESIDE`'s
    names, with the steering and directions that run chose."""
    other_cfg = ALSRunConfig.from_json(other.settings()["als"])
    best = other.selection()["best"]
    arms: dict[str, Arm] = {BESIDE["als"]: _selected_arm(other, other_cfg, best)}
    if other_cfg.control:
        plan = read_json(other.selection_plan_path)
        arms[BESIDE["random-control"]] = _control_arm(other, other_cfg, best, plan)
    return arms


test_arms.__test__ = False  # a function of the pipeline, not a pytest test


def _test_reference_arms(run: RunDir, cfg: ALSRunConfig) -> dict[str, Arm]:
    """The reference arms the config asks for on test: the gated one at the alpha chosen on
    validation, the always-on variant."""
    arms: dict[str, Arm] = {}
    if cfg.reference:
        best = read_json(run.reference_selection_path)["best"]
        arms["als-reference"] = _reference_arm(run, cfg, best["alpha"], cfg.reference_tau)
    if cfg.gated:
        spec, directions = arms["als-reference"]
        arms["als-gated"] = replace(spec, json_gate=True), directions
    if cfg.reference_always:
        arms["als-reference-always"] = _reference_arm(run, cfg, cfg.reference_alpha, ALWAYS_ON_TAU)
    return arms


def record_run_settings(
    run: RunDir,
    model: ModelConfig,
    cfg: ALSRunConfig,
    generation: GenerationConfig,
    prompt: PromptConfig,
) -> None:
    """Write (or check, when resuming) the run's settings record: the run's one writer of it."""
    run.root.mkdir(parents=True, exist_ok=True)
    run.record_settings(
        "run",
        asdict(model),
        # greedy output depends on neither (tested); min_per_class only accepts or refuses the
        # fit's labels, so a fit split with too few successes can go on with a lower one
        may_change=("generation.batch_size", "generation.static_step", "als.min_per_class"),
        als=asdict(cfg),
        generation=asdict(generation),
        prompt=asdict(prompt),
        defaults={
            "als": asdict(ALSRunConfig()),
            "generation": asdict(GenerationConfig()),
            "prompt": asdict(PromptConfig()),
        },
    )


def run_als(
    bridge: Any,
    out: str | Path,
    cfg: ALSRunConfig = ALSRunConfig(),
    *,
    generation: GenerationConfig = GenerationConfig(),
    prompt: PromptConfig = PromptConfig(),
    data_dir: str | None = None,
    model: ModelConfig | None = None,
) -> dict[str, Any]:
    """Run (or resume) the experiment's stages into `out`; return the results summary.

    Stages: splits, fit, labels (with label_source 'self'), directions, select, test (the
    report is its own stage:
    `workbench.report.run_report.build_run_report`). `model` is what the run folder records so that
    `als probe` and the others reload the same model; by default the config `load_model` loaded
    `bridge` with."""
    model = model or model_config_of(bridge)
    if model is None:
        raise WorkbenchError(
            "run_als needs the bridge's ModelConfig to record in the run folder: load the model "
            "with workbench.sources.models.load_model, or pass model=ModelConfig(...)"
        )
    run = RunDir(Path(out))
    record_run_settings(run, model, cfg, generation, prompt)
    make_splits(run, cfg, data_dir=data_dir)
    fit_stage(bridge, run, cfg, data_dir=data_dir)
    if cfg.label_source == "self":
        labels_stage(bridge, run, cfg, data_dir=data_dir)
    directions_stage(run, cfg)
    select_stage(bridge, run, cfg, data_dir=data_dir)
    if cfg.reference:
        reference_select_stage(bridge, run, cfg, data_dir=data_dir)
    return evaluate_stage(bridge, run, cfg, data_dir=data_dir)
