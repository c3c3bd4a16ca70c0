"""`als sweep RUN_DIR`: layer x alpha x tau x site x rule grids with controls, on validation data.

A condition is one steering setting with one direction: the run's ALS direction, or a control (a
random direction of the same norm per layer for each control seed, a direction fit on shuffled
fit labels, the negated direction). Each condition is decoded on a named split of the run
(`val` by default) into its own JSONL file, so a sweep resumes condition by condition and problem
by problem, and `--sweep.shard i/n` runs every n-th condition (independent jobs whose rows merge
into one table). Thresholds are quantiles of cos(h_t, v_l) over the fit generations' tokens, per
layer.

Selection (`select_and_test`) reads only the validation table: the best non-control condition
there is the only one decoded on the test split, beside CoT and the controls at the same setting.
Nothing in this module reads test rows before that choice is made.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.checks import check_finite, check_quantiles
from workbench.core.activations import ActivationSet, CacheConfig, cache_activations
from workbench.core.artifacts import append_jsonl, read_json, read_rows, write_json
from workbench.core.directions import LayerDirections, fit_directions
from workbench.core.effects import next_token_effects
from workbench.core.evaluation import repetition_rate
from workbench.core.problems import Problem
from workbench.core.prompts import PromptConfig
from workbench.core.records import summarize
from workbench.core.selection import pick_best, tau_from_quantile
from workbench.core.steering import RULES, SteeringSpec, steer
from workbench.engine.config import GenerationConfig
from workbench.errors import WorkbenchError
from workbench.experiment.rundir import RunDir
from workbench.methods.cot import run_cot

__all__ = [
    "Condition",
    "SweepConfig",
    "conditions",
    "control_directions",
    "cot_reference",
    "run_sweep",
    "select_and_test",
    "sweep_table",
]


@dataclass(frozen=True, kw_only=True)
class SweepConfig:
    """The grid and its controls."""

    layer_sets: tuple[str, ...] = ("best",)
    """Layer sets: '12', '10+14', or 'best' (the run's selected layer)."""
    alphas: tuple[float, ...] = (0.05, 0.1, 0.2)
    """Relative strengths."""
    tau_quantiles: tuple[float, ...] = (0.5,)
    """Thresholds as quantiles of fit-token cosines (>= 1: always fire)."""
    sites: tuple[str, ...] = ("resid_post",)
    """Hook sites."""
    rules: tuple[str, ...] = ("additive",)
    """Update rules (see workbench.engine.steering.RULES)."""
    controls: tuple[str, ...] = ("random", "shuffled", "negated")
    """Control directions decoded at every setting."""
    control_seeds: tuple[int, ...] = (0,)
    """Seeds of the random-direction and shuffled-label controls."""
    split: str = "val"
    """Run split the grid is decoded on (never 'test': use select_and_test)."""
    shard: str = "0/1"
    """'i/n': run only every n-th condition, starting at i."""
    n_test: int | None = None
    """Test problems the selected condition is decoded on (the first n of the run's test split;
    None: all). A CPU-sized check; the paired test vs CoT uses the same problems."""
    effects: bool = True
    """Also measure KL and entropy change at steered steps (two teacher-forced passes each)."""

    def __post_init__(self) -> None:
        check_finite(self)
        check_quantiles(self.tau_quantiles)
        if not self.alphas:
            raise WorkbenchError("the sweep needs at least one alpha")
        if self.n_test is not None and self.n_test < 1:
            raise WorkbenchError(f"n_test must be >= 1 (or None for all), not {self.n_test}")
        if self.split == "test":
            raise WorkbenchError(
                "sweeps run on validation data; the test split is reached only "
                "through the selection step"
            )
        bad = [r for r in self.rules if r not in RULES]
        if bad:
            raise WorkbenchError(f"rules {bad} are unknown; use {sorted(RULES)}")
        unknown = [c for c in self.controls if c not in ("random", "shuffled", "negated")]
        if unknown:
            raise WorkbenchError(f"unknown controls {unknown}; use random, shuffled, negated")
        i, _, n = self.shard.partition("/")
        if not (i.isdigit() and n.isdigit() and 0 <= int(i) < int(n)):
            raise WorkbenchError(f"shard must be i/n with 0 <= i < n, not {self.shard!r}")


@dataclass(frozen=True, kw_only=True)
class Condition:
    """One steering setting with one direction."""

    layers: tuple[int, ...]
    alpha: float
    tau_quantile: float
    site: str
    rule: str
    direction: str  # 'als', 'random:<seed>', 'shuffled:<seed>', 'negated'

    @property
    def name(self) -> str:
        """A stable, readable file name."""
        layers = "+".join(map(str, self.layers))
        key = json.dumps(asdict(self), sort_keys=True)
        digest = hashlib.sha1(key.encode()).hexdigest()[:6]
        return (
            f"L{layers}-a{self.alpha:g}-q{self.tau_quantile:g}-{self.site}-{self.rule}-"
            f"{self.direction.replace(':', '')}-{digest}"
        )

    @property
    def is_control(self) -> bool:
        """Whether the direction is a control."""
        return self.direction != "als"


def _layer_sets(cfg: SweepConfig, best: int) -> list[tuple[int, ...]]:
    out = []
    for text in cfg.layer_sets:
        try:
            out.append((best,) if text == "best" else tuple(int(x) for x in text.split("+")))
        except ValueError as exc:
            raise WorkbenchError(f"layer set {text!r}: use '12', '10+14' or 'best'") from exc
    return out


def conditions(cfg: SweepConfig, best_layer: int) -> list[Condition]:
    """Every condition of the grid, controls included, in a fixed order."""
    kinds = ["als"]
    for control in cfg.controls:
        kinds += (
            [f"{control}:{s}" for s in cfg.control_seeds] if control != "negated" else ["negated"]
        )
    return [
        Condition(layers=layers, alpha=a, tau_quantile=q, site=site, rule=rule, direction=kind)
        for layers in _layer_sets(cfg, best_layer)
        for a in cfg.alphas
        for q in cfg.tau_quantiles
        for site in cfg.sites
        for rule in cfg.rules
        for kind in kinds
    ]


def control_directions(
    directions: LayerDirections, kind: str, fit: ActivationSet | None = None, position: str = ""
) -> LayerDirections:
    """The direction of a condition: the ALS one, negated, random of the same norm per layer
    (seeded), or fit on shuffled labels (seeded; needs the fit activations)."""
    if kind == "als":
        return directions
    name, _, seed = kind.partition(":")
    base = {
        "layers": directions.layers,
        "mean_norm": directions.mean_norm,
        "n_success": directions.n_success,
        "n_failure": directions.n_failure,
        "provenance": {**directions.provenance, "control": kind},
    }
    if name == "negated":
        return LayerDirections(
            success_mean=directions.failure_mean, failure_mean=directions.success_mean, **base
        )
    if name == "random":
        g = torch.Generator().manual_seed(int(seed))
        r = torch.randn(directions.success_mean.shape, generator=g)
        r = r / r.norm(dim=-1, keepdim=True) * directions.vectors.norm(dim=-1, keepdim=True)
        return LayerDirections(
            success_mean=directions.failure_mean + r, failure_mean=directions.failure_mean, **base
        )
    if name == "shuffled":
        if fit is None:
            raise WorkbenchError("the shuffled-label control needs the fit activations")
        g = torch.Generator().manual_seed(int(seed))
        labels = fit.labels[torch.randperm(len(fit.labels), generator=g)]
        shuffled = fit_directions(fit.at(position), labels, fit.layers, min_per_class=1)
        return LayerDirections(
            success_mean=shuffled.success_mean,
            failure_mean=shuffled.failure_mean,
            **{**base, "mean_norm": shuffled.mean_norm},
        )
    raise WorkbenchError(f"unknown direction kind {kind!r}")


@dataclass
class _Context:
    """What decoding a condition needs from the run folder."""

    bridge: Any
    run: RunDir
    directions: LayerDirections
    fit: ActivationSet
    fit_problems: list[Problem]
    position: str
    generation: GenerationConfig
    prompt: PromptConfig
    token_states: dict[tuple[int, str], torch.Tensor]

    @classmethod
    def load(cls, bridge: Any, run: RunDir, data_dir: str | None) -> _Context:
        return cls(
            bridge=bridge,
            run=run,
            directions=run.directions(),
            fit=run.fit_states(),
            fit_problems=run.problems("fit", data_dir=data_dir),
            position=run.results()["config"]["position"],
            generation=run.generation(),
            prompt=run.prompt(),
            token_states={},
        )

    def taus(self, d: LayerDirections, layers: tuple[int, ...], site: str, q: float):
        """Per layer, the q-quantile of cos(h_t, v) of direction `d` over fit tokens (so an ALS
        direction and its controls fire at the same rate on fit-like states)."""
        out = []
        for layer in layers:
            states = self.fit_token_states(layer, site)
            cos = torch.cosine_similarity(states, d.vector(layer)[None])
            out.append(tau_from_quantile(cos, q))
        return tuple(out)

    def fit_token_states(self, layer: int, site: str) -> torch.Tensor:
        """Every generated token's state at (layer, site) over the fit split (cached to the run
        folder once, then kept in memory)."""
        if (layer, site) not in self.token_states:
            aset = cache_activations(
                self.bridge,
                self.fit_problems,
                self.run.rows("fit", "cot"),
                self.run.sweep_states(layer, site),
                CacheConfig(layers=(layer,), trajectory_layers=(layer,), site=site),
                prompt=self.prompt,
                progress=False,
            )
            self.token_states[layer, site] = torch.cat([t[:, 0].float() for t in aset.trajectories])
        return self.token_states[layer, site]

    def decode(
        self, cond: Condition, problems: list[Problem], split: str, *, effects: bool = True
    ) -> list[dict]:
        """Decode `problems` of `split` under the condition's steering into its rows (resumable);
        with `effects`, also the next-token effects at steered steps."""
        d = control_directions(self.directions, cond.direction, self.fit, self.position)
        taus = self.taus(d, cond.layers, cond.site, cond.tau_quantile)
        spec = SteeringSpec(
            layers=cond.layers, alpha=cond.alpha, tau=taus, site=cond.site, rule=cond.rule
        )
        with steer(self.bridge, spec, d):
            rows = run_cot(
                self.bridge,
                problems,
                generation=self.generation,
                prompt=self.prompt,
                out=self.run.sweep_rows(split, cond.name),
                method=cond.name,
                progress=False,
            )
        if effects:
            path = self.run.sweep_effects(split, cond.name)
            done = {r["id"] for r in read_rows(path)}
            todo = [r for r in rows if r["id"] not in done]
            if todo:
                append_jsonl(
                    path,
                    next_token_effects(self.bridge, problems, todo, spec, d, prompt=self.prompt),
                )
        return rows


def _effect_means(effects_path: Path) -> dict[str, float | None]:
    """KL, entropy change and top-1 change averaged over all steered steps of a condition."""
    effects = [e for e in read_rows(effects_path) if e["n_steered"]]
    steps = sum(e["n_steered"] for e in effects)
    return {
        f"{key}_at_steered": sum(e[key] * e["n_steered"] for e in effects) / steps
        if steps
        else None
        for key in ("kl", "entropy_delta", "top1_changed")
    }


def prepare_sweep(
    bridge: Any, run: str | Path, cfg: SweepConfig = SweepConfig(), *, data_dir: str | None = None
) -> tuple[_Context, list[Problem], list[dict[str, Any]], list[Condition]]:
    """What every shard of a sweep shares, made once (resumable): the CoT rows of `cfg.split`,
    the grid (``grid.json``) and the fit-token states that set each condition's tau. Shards
    running at once must find these done (`workbench.experiment.launch` runs this as a job
    first)."""
    run = RunDir.of(run).require_finished()
    ctx = _Context.load(bridge, run, data_dir)
    problems = run.problems(cfg.split, data_dir=data_dir)
    base = run_cot(
        bridge,
        problems,
        generation=ctx.generation,
        prompt=ctx.prompt,
        out=run.sweep_rows(cfg.split, "cot"),
        progress=False,
    )
    grid = conditions(cfg, run.steering().layers[0])
    write_json(run.sweep_grid_path, [asdict(c) | {"name": c.name} for c in grid])
    for layer, site in sorted({(layer, c.site) for c in grid for layer in c.layers}):
        ctx.fit_token_states(layer, site)
    return ctx, problems, base, grid


def run_sweep(
    bridge: Any, run: str | Path, cfg: SweepConfig = SweepConfig(), *, data_dir: str | None = None
) -> list[dict[str, Any]]:
    """Decode this shard's conditions on `cfg.split`; return the merged table of all shards."""
    from tqdm.auto import tqdm

    run = RunDir.of(run).require_finished()
    ctx, problems, base, grid = prepare_sweep(bridge, run, cfg, data_dir=data_dir)
    i, n = (int(x) for x in cfg.shard.split("/"))
    for cond in tqdm(grid[i::n], desc=f"sweep {cfg.shard}"):
        ctx.decode(cond, problems, cfg.split, effects=cfg.effects)
    return sweep_table(run, cfg.split, base)


def cot_reference(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The CoT rows of a split summarised like a sweep condition (the figures' reference)."""
    repetition = sum(repetition_rate(r["tokens"]) for r in rows) / max(1, len(rows))
    return {**summarize(rows, method="cot").to_json(), "repetition": repetition}


def sweep_table(
    run: str | Path | RunDir, split: str, base: list[dict] | None = None
) -> list[dict[str, Any]]:
    """One row per condition found on disk for `split` (all shards merged), with diagnostics."""
    run = RunDir.of(run)
    grid = read_json(run.sweep_grid_path)
    base = base if base is not None else read_rows(run.sweep_rows(split, "cot"))
    base_ids = {r["id"] for r in base}
    table = []
    for cond in grid:
        rows = [r for r in read_rows(run.sweep_rows(split, cond["name"])) if r["id"] in base_ids]
        if not rows or len(rows) < len(base):
            continue  # not run here, or not finished (another shard, or interrupted)
        s = summarize(rows, method=cond["name"], base=base, n_layers=len(cond["layers"]))
        table.append(
            {
                **cond,
                **s.to_json(),
                "layers": "+".join(map(str, cond["layers"])),
                "split": split,
                "delta_vs_cot": (s.correct - sum(r["correct"] for r in base)) / s.n,
                "repetition": sum(repetition_rate(r["tokens"]) for r in rows) / s.n,
                **_effect_means(run.sweep_effects(split, cond["name"])),
            }
        )
    return table


def select_and_test(
    bridge: Any, run: str | Path, cfg: SweepConfig, *, data_dir: str | None = None
) -> dict[str, Any]:
    """Pick the best non-control validation condition (validation rows only), then decode it and
    its controls at the same setting on the test split, beside the run's CoT test rows."""
    run = RunDir.of(run).require_finished()
    val = [r for r in sweep_table(run, cfg.split) if r["direction"] == "als"]
    if not val:
        raise WorkbenchError(f"no finished sweep conditions on {cfg.split}; run `als sweep` first")
    best = pick_best(val)
    keys = ("alpha", "tau_quantile", "site", "rule")
    grid = read_json(run.sweep_grid_path)
    same = [
        c
        for c in grid
        if all(c[k] == best[k] for k in keys) and "+".join(map(str, c["layers"])) == best["layers"]
    ]
    ctx = _Context.load(bridge, run, data_dir)
    problems = run.problems("test", data_dir=data_dir)[: cfg.n_test]
    for c in same:
        fields = {k: (tuple(v) if k == "layers" else v) for k, v in c.items() if k != "name"}
        ctx.decode(Condition(**fields), problems, "test", effects=cfg.effects)
    names = {c["name"] for c in same}
    keep = {p.id for p in problems}
    base = [r for r in run.rows("test", "cot") if r["id"] in keep]
    test = [r for r in sweep_table(run, "test", base) if r["name"] in names]
    report = {"selected_on": cfg.split, "validation_best": best, "test": test}
    write_json(run.sweep_selection_path, report)
    return report
