"""Conditional steering along success directions while decoding (the ALS update).

At each chosen layer and token: if ``cos(h_t, v) < tau`` then ``h_t <- update(h_t, v_hat, alpha)``;
the paper's update is additive, ``h_t + alpha * v_hat``. Other update rules sit beside it in
`RULES`. `steer` is a context manager: it adds its hooks through ``bridge.hooks`` and removes
exactly those on exit, exception or not; the caller's model is otherwise untouched.

Units of alpha: by default ``relative``, i.e. alpha is a fraction of the layer's mean residual norm
measured on the fit split (``alpha_abs = alpha * mean_norm_l``). Residual norms grow by orders of
magnitude with depth and differ between models, so a relative alpha means the same push at every
layer and on every model, and a sweep over alpha is comparable across layers. ``absolute`` uses
alpha as given.

Inside `workbench.core.generation.decode`, only generated positions are steered by default (the hook
reads the `DecodeStep`); outside it (a plain forward pass) every position is a candidate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from workbench.core.config import check_finite
from workbench.core.decode_step import current_step, interventions_suppressed
from workbench.core.directions import LayerDirections
from workbench.core.hooks import Site, check_hook_names, check_layers, model_shape, resid_hook
from workbench.core.json_answer import json_gate_open
from workbench.core.mid_residual import edit_resid_mid
from workbench.core.transient import capture_block_calls, first_reached_block
from workbench.errors import WorkbenchError

__all__ = ["RULES", "SteeringSpec", "SteeringStats", "steer"]

UpdateRule = Callable[
    [Float[Tensor, "... d_model"], Float[Tensor, " d_model"], Float[Tensor, "..."], float],
    Float[Tensor, "... d_model"],
]
"""(h, v_hat, cos(h, v), alpha) -> steered h, applied where the condition fires."""


def additive(h: Tensor, v_hat: Tensor, cos: Tensor, alpha: float) -> Tensor:
    """The ALS update: h + alpha * v_hat."""
    return h + alpha * v_hat


def norm_preserving(h: Tensor, v_hat: Tensor, cos: Tensor, alpha: float) -> Tensor:
    """Additive, then rescaled to the original norm ||h||."""
    new = h + alpha * v_hat
    return new * (h.norm(dim=-1, keepdim=True) / new.norm(dim=-1, keepdim=True).clamp_min(1e-12))


def drift_scaled(h: Tensor, v_hat: Tensor, cos: Tensor, alpha: float) -> Tensor:
    """h + alpha (1 - cos(h, v)) v_hat: the further h has drifted, the harder the push."""
    return h + alpha * (1.0 - cos)[..., None] * v_hat


RULES: dict[str, UpdateRule] = {
    "additive": additive,
    "norm_preserving": norm_preserving,
    "drift_scaled": drift_scaled,
}


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


@dataclass
class SteeringStats:
    """What the hooks did, per layer, over the life of one `steer` context."""

    _fired: dict[int, Tensor] = field(default_factory=dict)
    _considered: dict[int, Tensor] = field(default_factory=dict)

    def add(self, layer: int, fired: Tensor, considered: Tensor) -> None:
        """Accumulate counts (kept as device tensors: no synchronisation per token)."""
        self._fired[layer] = self._fired.get(layer, 0) + fired
        self._considered[layer] = self._considered.get(layer, 0) + considered

    @property
    def fired(self) -> dict[int, int]:
        """Tokens steered at each layer."""
        return {layer: int(n) for layer, n in self._fired.items()}

    @property
    def considered(self) -> dict[int, int]:
        """Candidate tokens (new positions of the allowed kind) at each layer."""
        return {layer: int(n) for layer, n in self._considered.items()}

    def rate(self, layer: int | None = None) -> float:
        """Share of candidate tokens steered (at one layer, or over all layers)."""
        fired, considered = self.fired, self.considered
        layers = [layer] if layer is not None else list(fired)
        total = sum(considered.get(x, 0) for x in layers)
        return sum(fired.get(x, 0) for x in layers) / total if total else 0.0


def _make_hook(
    layer: int,
    v_unit: Tensor,
    alpha: float,
    tau: float,
    spec: SteeringSpec,
    stats: SteeringStats,
    rows: Tensor | None,
    n_layers: int,
    tokenizer: Any,
):
    rule = RULES[spec.rule]
    first_block = first_reached_block(layer, spec.site, n_layers)
    by_device: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def hook(x: Float[Tensor, "batch pos d_model"], hook: Any) -> Tensor:
        if interventions_suppressed():
            return x
        if x.device not in by_device:
            by_device[x.device] = (v_unit.to(x.device, torch.float32), v_unit.to(x.device, x.dtype))
        v32, v = by_device[x.device]
        cos = torch.nn.functional.cosine_similarity(x.float(), v32.expand_as(x), dim=-1)
        allowed = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        new = allowed
        step = current_step()
        if step is not None:
            new = step.new_mask(x.shape[1], x.device)[None, :].expand_as(allowed)
            if spec.positions == "generated":
                allowed = step.generated_mask(x.shape[1], x.device)
        if spec.positions == "newest":
            allowed = torch.zeros_like(allowed)
            allowed[:, -1] = True
        if spec.persistence == "transient":
            allowed = allowed & new  # a position seen before is seen unsteered
        if rows is not None:
            allowed = allowed & _rows_mask(step, rows, x.device)[:, None]
        if spec.json_gate:
            allowed = allowed & _json_gate(step, tokenizer, allowed)[:, None]
        fire = (cos < tau) & allowed
        counted = fire & new
        if step is not None:
            step.counts += counted.sum(dim=1)
            step.fired_last |= fire[:, -1]
            if spec.persistence == "transient" and bool(fire.any()):
                step.mark_transient(
                    int(fire.any(dim=0).long().argmax()),
                    fire.any(dim=1),
                    block=first_block,
                    state=x.clone() if first_block is not None else None,
                )
        stats.add(layer, counted.sum(), (allowed & new).sum())
        return torch.where(fire[..., None], rule(x, v, cos.to(x.dtype), alpha), x)

    return hook


def _json_gate(step: Any, tokenizer: Any, allowed: Tensor) -> Bool[Tensor, " batch"]:
    """Per row of the pass, whether ALS-Gated's JSON gate is open (rows not allowed anyway are
    not read)."""
    if step is None or step.generated is None:
        raise WorkbenchError("the JSON gate reads each row's generated text: steer inside `decode`")
    wanted = allowed.any(dim=1).tolist()
    gate = [
        not want or json_gate_open(tokenizer.decode(ids, skip_special_tokens=True), len(ids))
        for want, ids in zip(wanted, step.generated, strict=True)
    ]
    return torch.tensor(gate, dtype=torch.bool, device=allowed.device)


def _rows_mask(step: Any, rows: Tensor, device: torch.device) -> Bool[Tensor, " batch"]:
    """Which rows of the pass in flight are among the steered sequences."""
    if step is None:
        raise WorkbenchError(
            "steering restricted to some rows needs the decode step in flight: use it inside "
            "`decode` (or a teacher-forced pass that publishes its step)"
        )
    return torch.isin(step.rows.to(device), rows.to(device))


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
    `DecodeStep.rows`), so that several arms share one continuously batched decode; a transient
    arm (refilled KV cache) must not share it with a persistent one (`decode_arms` checks)."""
    n_layers, d_model = model_shape(bridge)
    if directions.d_model != d_model:
        raise WorkbenchError(
            f"directions have width {directions.d_model} but the model's residual stream has "
            f"{d_model}: they were fit on another model"
        )
    layers = [check_layers(bridge, [layer])[0] for layer in spec.layers]  # spec order kept
    names = [resid_hook(layer, spec.site) for layer in layers]
    check_hook_names(bridge, names)
    taus = spec.tau if isinstance(spec.tau, tuple) else (float(spec.tau),) * len(layers)
    stats = SteeringStats()
    fns = []
    for layer, tau in zip(layers, taus, strict=True):
        scale = float(directions.mean_norm[directions.index(layer)])
        alpha = spec.alpha * scale if spec.alpha_units == "relative" else spec.alpha
        only = None if rows is None else torch.tensor(list(rows), dtype=torch.long)
        unit = directions.unit(layer)
        hook = _make_hook(
            layer, unit, alpha, float(tau), spec, stats, only, n_layers, bridge.tokenizer
        )
        fns.append(hook)
    with contextlib.ExitStack() as stack:
        if spec.persistence == "transient":
            reached = [first_reached_block(layer, spec.site, n_layers) for layer in layers]
            stack.enter_context(capture_block_calls(bridge, min(b or 0 for b in reached)))
        if spec.site == "resid_mid":  # TransformerLens's hook there would not reach the stream
            stack.enter_context(edit_resid_mid(bridge, list(zip(layers, fns, strict=True))))
        else:
            stack.enter_context(bridge.hooks(fwd_hooks=list(zip(names, fns, strict=True))))
        yield stats
