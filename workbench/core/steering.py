"""The steering specification: where and how hard to steer, resolved against a model.

At each chosen layer and token: if ``cos(h_t, v) < tau`` then ``h_t <- update(h_t, v_hat, alpha)``;
the paper's update is additive, ``h_t + alpha * v_hat`` (the update rules:
`workbench.engine.steering.RULES`). A `SteeringSpec` says where and how hard; `resolve` turns it,
with fitted `LayerDirections` and a model, into the engine's `ResolvedSteering` (per layer a unit
vector, an absolute alpha and a threshold), checked once; `steer` is the context manager that
applies it: it adds its hooks through ``bridge.hooks`` and removes exactly those on exit, exception
or not; the caller's model is otherwise untouched.

Units of alpha: by default ``relative``, i.e. alpha is a fraction of the layer's mean residual norm
measured on the fit split (``alpha_abs = alpha * mean_norm_l``). Residual norms grow by orders of
magnitude with depth and differ between models, so a relative alpha means the same push at every
layer and on every model, and a sweep over alpha is comparable across layers. ``absolute`` uses
alpha as given.

Inside `workbench.engine.generation.decode`, only generated positions are steered by default;
outside it (a plain forward pass) every position is a candidate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from workbench.checks import check_finite
from workbench.core.directions import LayerDirections
from workbench.core.json_answer import json_gate_open
from workbench.engine.hooks import Site, check_hook_names, check_layers, model_shape, resid_hook
from workbench.engine.steering import (
    RULES,
    LayerSteering,
    ResolvedSteering,
    RowGate,
    SteeringStats,
    steering_hooks,
)
from workbench.errors import WorkbenchError

__all__ = ["SteeringSpec", "resolve", "steer"]


@dataclass(frozen=True, kw_only=True)
class SteeringSpec:
    """Where and how hard to steer."""

    layers: tuple[int, ...]
    """Layers to steer (each with its own direction)."""
    alpha: float = 0.1
    """Strength; a fraction of the layer's mean residual norm when alpha_units is 'relative'."""
    tau: float | tuple[float, ...] = 0.0
    """Steer a token when cos(h, v) < tau (one value, or one per layer in `layers` order).
    tau > 1: always; tau < -1: never."""
    alpha_units: Literal["relative", "absolute"] = "relative"
    """'relative' (times the layer's mean residual norm on the fit split) or 'absolute'."""
    site: Site = "resid_post"
    """Residual hook site."""
    positions: Literal["generated", "all", "newest"] = "generated"
    """Steer generated tokens only, the prompt too, or only the newest position of each forward
    pass (the last prompt token, then each new token: the ALS authors' code)."""
    persistence: Literal["persistent", "transient"] = "persistent"
    """'persistent': a steered state stays steered in the KV cache, so later tokens attend to it.
    'transient': the nudge changes only the logits of the pass that computes the position; later
    passes see it unsteered (the cache is refilled without the nudge), exactly as the authors'
    full recompute at every step, which nudges only the newest position."""
    rule: str = "additive"
    """Update rule, one of `RULES`."""
    json_gate: bool = False
    """ALS-Gated (the paper's structured-output variant, their `gated_generation.py`): once more
    than five tokens are generated, steer a row only while the text from its first ``{``,
    closed with ``}``, parses as JSON (`workbench.core.json_answer.json_gate_open`); composes
    with the cosine gate (both must allow). Needs `decode` (it reads each row's text)."""

    @classmethod
    def authors(cls, layer: int, alpha: float = 0.3, tau: float = 0.1) -> SteeringSpec:
        """The ALS authors' update at the input of block `layer` (they use the last block):
        where the raw cosine of that input with the unit vector is below `tau` (0.1, theirs),
        `alpha` times the unit vector is added at the newest position of the pass, never
        persisting. Their code (negbuna/ALS `src/steered_generation.py`, read through the
        copy BurnyCoder/ALS) takes ``hidden_states[num_layers - 1]``, nudges only
        ``[:, -1, :]`` when ``cosine_similarity(last_token_hs, steering_vector) <
        similarity_threshold`` (default 0.1; paper section 3.2: tau chosen on 200 held-out
        examples), reruns the last block from there and recomputes the whole sequence at the
        next step, so nothing persists. `tau` above 1 gives the always-on variant that earlier
        runs of this workbench called the reference arm (`als-reference-always`)."""
        return cls(
            layers=(layer,),
            alpha=alpha,
            alpha_units="absolute",
            tau=tau,
            site="resid_pre",
            positions="newest",
            persistence="transient",
        )

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> SteeringSpec:
        """The spec that `dataclasses.asdict` wrote to JSON (lists back to tuples)."""
        tau = saved.get("tau", 0.0)
        return cls(
            **{
                **saved,
                "layers": tuple(saved["layers"]),
                "tau": tuple(tau) if isinstance(tau, list) else tau,
            }
        )

    def __post_init__(self) -> None:
        if not self.layers:
            raise WorkbenchError("steering needs at least one layer")
        if min(self.layers) < 0:
            raise WorkbenchError(f"layers must be >= 0, not {self.layers}")
        check_finite(self)
        if isinstance(self.tau, tuple) and len(self.tau) != len(self.layers):
            raise WorkbenchError(f"{len(self.tau)} taus for {len(self.layers)} layers")
        if self.rule not in RULES:
            raise WorkbenchError(f"unknown update rule {self.rule!r}; use one of {sorted(RULES)}")
        if self.alpha_units not in ("relative", "absolute"):
            raise WorkbenchError(
                f"alpha_units must be relative or absolute, not {self.alpha_units}"
            )
        if self.positions not in ("generated", "all", "newest"):
            raise WorkbenchError(
                f"positions must be generated, all or newest, not {self.positions}"
            )
        if self.persistence not in ("persistent", "transient"):
            raise WorkbenchError(
                f"persistence must be persistent or transient, not {self.persistence}"
            )


def _json_gate(tokenizer: Any) -> RowGate:
    """ALS-Gated's gate on a row's generated ids (`json_answer.json_gate_open`)."""

    def open_(ids: Sequence[int]) -> bool:
        return json_gate_open(tokenizer.decode(ids, skip_special_tokens=True), len(ids))

    return open_


def resolve(
    spec: SteeringSpec, directions: LayerDirections, bridge: Any | None = None
) -> ResolvedSteering:
    """`spec` with `directions` as the engine applies it: per layer (in `spec` order) the unit
    direction, alpha in absolute units and tau. With `bridge`, checked against the model (width,
    layers, hook names; negative layers count from the end) and the JSON gate reading its
    tokenizer; without, the layers as given and no JSON gate (it needs the tokenizer): what
    exported vectors need, not an arm to decode with."""
    layers = list(spec.layers)
    if bridge is not None:
        _, d_model = model_shape(bridge)
        if directions.d_model != d_model:
            raise WorkbenchError(
                f"directions have width {directions.d_model} but the model's residual stream has "
                f"{d_model}: they were fit on another model"
            )
        layers = [check_layers(bridge, [layer])[0] for layer in layers]  # spec order kept
        check_hook_names(bridge, [resid_hook(layer, spec.site) for layer in layers])
    missing = sorted(set(layers) - set(directions.layers))
    if missing:
        raise WorkbenchError(
            f"no direction was fit at layers {missing} (fit at {list(directions.layers)})"
        )
    taus = spec.tau if isinstance(spec.tau, tuple) else (float(spec.tau),) * len(layers)
    per_layer = []
    for layer, tau in zip(layers, taus, strict=True):
        scale = float(directions.mean_norm[directions.index(layer)])
        alpha = spec.alpha * scale if spec.alpha_units == "relative" else spec.alpha
        per_layer.append(LayerSteering(layer, directions.unit(layer), alpha, float(tau)))
    json_gate = spec.json_gate and bridge is not None
    return ResolvedSteering(
        layers=tuple(per_layer),
        site=spec.site,
        rule=spec.rule,
        positions=spec.positions,
        persistence=spec.persistence,
        row_gate=_json_gate(bridge.tokenizer) if json_gate else None,
    )


@contextlib.contextmanager
def steer(
    bridge: Any,
    spec: SteeringSpec,
    directions: LayerDirections,
    *,
    rows: Sequence[int] | None = None,
) -> Iterator[SteeringStats]:
    """Add steering hooks for `spec` while the context is open; yield their `SteeringStats`.

    `rows` restricts the steering to those sequences of a `decode` call (their indices,
    `PassInfo.rows`), so that several arms share one continuously batched decode."""
    with steering_hooks(bridge, resolve(spec, directions, bridge), rows=rows) as stats:
        yield stats
