"""The steering gate, written once, and the TransformerLens hooks that apply it while decoding.

At each steered layer and position: if ``cos(h, v) < tau`` then ``h <- update(h, v_hat, alpha)``;
the ALS update is additive, ``h + alpha * v_hat``, and other update rules sit beside it in `RULES`.
The engine steers with a `ResolvedSteering`: per layer a unit vector, an absolute alpha and a
threshold, with the site, rule, positions and persistence, already checked against the model
(`workbench.core.steering.resolve` makes one from a `SteeringSpec` and fitted directions). `gate`
is the arithmetic; `steering_hooks` applies it through the bridge's hook points (this module) and
`workbench.engine.row_steering` through per-row tensors for the static step, both by `gate`.

`steering_hooks` reads the pass in flight (`workbench.engine.passes`): inside a decode only
generated positions are steered by default; outside one (a plain forward pass) every position is a
candidate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from workbench.engine.hooks import Site, resid_hook
from workbench.engine.mid_residual import edit_resid_mid
from workbench.engine.passes import ForwardPass, current_pass, interventions_suppressed
from workbench.engine.transient import capture_block_calls, first_reached_block, needs_own_call
from workbench.errors import WorkbenchError

__all__ = [
    "RULES",
    "LayerSteering",
    "ResolvedSteering",
    "RowGate",
    "SteeringStats",
    "gate",
    "steering_hooks",
]

UpdateRule = Callable[
    [Float[Tensor, "... d_model"], Float[Tensor, "... d_model"], Float[Tensor, "..."], Any],
    Float[Tensor, "... d_model"],
]
"""(h, v_hat, cos(h, v), alpha) -> steered h, applied where the gate fires; v_hat and alpha
broadcast against h (one direction and strength, or one per row)."""


def additive(h: Tensor, v_hat: Tensor, cos: Tensor, alpha: Any) -> Tensor:
    """The ALS update: h + alpha * v_hat."""
    return h + alpha * v_hat


def norm_preserving(h: Tensor, v_hat: Tensor, cos: Tensor, alpha: Any) -> Tensor:
    """Additive, then rescaled to the original norm ||h||."""
    new = h + alpha * v_hat
    return new * (h.norm(dim=-1, keepdim=True) / new.norm(dim=-1, keepdim=True).clamp_min(1e-12))


def drift_scaled(h: Tensor, v_hat: Tensor, cos: Tensor, alpha: Any) -> Tensor:
    """h + alpha (1 - cos(h, v)) v_hat: the further h has drifted, the harder the push."""
    return h + alpha * (1.0 - cos)[..., None] * v_hat


RULES: dict[str, UpdateRule] = {
    "additive": additive,
    "norm_preserving": norm_preserving,
    "drift_scaled": drift_scaled,
}

Positions = Literal["generated", "all", "newest"]
Persistence = Literal["persistent", "transient"]
RowGate = Callable[[Sequence[int]], bool]
"""A further gate per row: given the row's generated token ids, whether it may be steered."""


def gate(
    h: Float[Tensor, "batch pos d_model"],
    unit32: Float[Tensor, "*rows d_model"],
    unit: Float[Tensor, "*rows d_model"],
    alpha: Any,
    tau: Any,
    allowed: Bool[Tensor, "batch pos"],
    rule: UpdateRule = additive,
) -> tuple[Float[Tensor, "batch pos d_model"], Bool[Tensor, "batch pos"]]:
    """The gated update: where `allowed` and ``cos(h, unit) < tau``, `rule` moves h along the
    unit direction by `alpha`; elsewhere h is left as it is. The cosine is taken in float32
    against `unit32`; the update is computed in h's dtype with `unit` (the same direction in that
    dtype). `unit32`, `unit`, `alpha` and `tau` are one value for every row, or one per row shaped
    to broadcast against h (``[batch, 1, d_model]`` and ``[batch, 1, 1]`` / ``[batch, 1]``).
    Returns the new states and where the update fired."""
    cos = torch.nn.functional.cosine_similarity(h.float(), unit32.expand_as(h), dim=-1)
    fire = (cos < tau) & allowed
    return torch.where(fire[..., None], rule(h, unit, cos.to(h.dtype), alpha), h), fire


@dataclass(frozen=True)
class LayerSteering:
    """One steered layer of a `ResolvedSteering`."""

    layer: int
    """The model layer (non-negative)."""
    unit: Float[Tensor, " d_model"]
    """The unit direction."""
    alpha: float
    """Strength in absolute units (residual-norm units already applied)."""
    tau: float
    """Steer where cos(h, unit) < tau."""


@dataclass(frozen=True, kw_only=True)
class ResolvedSteering:
    """Steering resolved once against directions and a model: what the engine applies."""

    layers: tuple[LayerSteering, ...]
    """The steered layers, in the order they were asked for."""
    site: Site = "resid_post"
    """Residual hook site."""
    rule: str = "additive"
    """Update rule, one of `RULES`."""
    positions: Positions = "generated"
    """Generated tokens only, every position, or the newest position of each pass."""
    persistence: Persistence = "persistent"
    """'persistent': a steered state stays in the KV cache; 'transient': the cache is repaired
    to hold the unsteered state (`workbench.engine.transient`)."""
    row_gate: RowGate | None = field(default=None, compare=False)
    """A further gate per row on its generated tokens (e.g. ALS-Gated's JSON gate), or None."""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise WorkbenchError(f"unknown update rule {self.rule!r}; use one of {sorted(RULES)}")

    @property
    def needs_own_call(self) -> bool:
        """Whether its cache repair refills every row of the batch (`transient.needs_own_call`)."""
        return needs_own_call(self.site, self.persistence)

    def static_support(self) -> str | None:
        """Why the static step cannot run this steering as row tensors (None: it can)."""
        unsupported = {
            "persistence": (self.persistence, "persistent"),
            "positions": (self.positions, "generated"),
            "rule": (self.rule, "additive"),
            "json_gate": (self.row_gate is not None, False),
        }
        for name, (value, wanted) in unsupported.items():
            if value != wanted:
                return f"{name}={value!r} (the static step steers only {name}={wanted!r})"
        if self.site not in ("resid_pre", "resid_post"):
            return f"site={self.site!r} (the static step steers resid_pre or resid_post)"
        return None


@dataclass
class SteeringStats:
    """What the hooks did, per layer, over the life of one steering context."""

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


def _allowed(
    steering: ResolvedSteering, now: ForwardPass | None, rows: Tensor | None, x: Tensor
) -> tuple[Bool[Tensor, "batch pos"], Bool[Tensor, "batch pos"]]:
    """Where the gate may fire in this pass, and which positions are new (counted)."""
    allowed = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    new = allowed
    if now is not None:
        new = now.info.new_mask(x.shape[1], x.device)[None, :].expand_as(allowed)
        if steering.positions == "generated":
            allowed = now.info.generated_mask(x.shape[1], x.device)
    if steering.positions == "newest":
        allowed = torch.zeros_like(allowed)
        allowed[:, -1] = True
    if steering.persistence == "transient":
        allowed = allowed & new  # a position seen before is seen unsteered
    if rows is not None:
        allowed = allowed & _rows_mask(now, rows, x.device)[:, None]
    if steering.row_gate is not None:
        allowed = allowed & _row_gate(now, steering.row_gate, allowed)[:, None]
    return allowed, new


def _row_gate(now: ForwardPass | None, row_gate: RowGate, allowed: Tensor) -> Bool[Tensor, " b"]:
    """Per row of the pass, whether `row_gate` is open (rows not allowed anyway are not read)."""
    if now is None or now.info.generated is None:
        raise WorkbenchError(
            "this steering's gate (the JSON gate) reads each row's generated text: steer inside "
            "`decode`"
        )
    wanted = allowed.any(dim=1).tolist()
    open_ = [
        not want or row_gate(ids) for want, ids in zip(wanted, now.info.generated, strict=True)
    ]
    return torch.tensor(open_, dtype=torch.bool, device=allowed.device)


def _rows_mask(now: ForwardPass | None, rows: Tensor, device: torch.device) -> Bool[Tensor, " b"]:
    """Which rows of the pass in flight are among the steered sequences."""
    if now is None:
        raise WorkbenchError(
            "steering restricted to some rows needs the decode step in flight: use it inside "
            "`decode` (or a teacher-forced pass, `workbench.engine.teacher_forced`)"
        )
    return torch.isin(now.info.rows.to(device), rows.to(device))


def _layer_hook(
    steering: ResolvedSteering,
    one: LayerSteering,
    stats: SteeringStats,
    rows: Tensor | None,
    n_layers: int,
):
    """The TransformerLens hook that steers at `one`'s layer."""
    rule = RULES[steering.rule]
    first_block = first_reached_block(one.layer, steering.site, n_layers)
    by_device: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def hook(x: Float[Tensor, "batch pos d_model"], hook: Any) -> Tensor:
        if interventions_suppressed():
            return x
        if x.device not in by_device:
            by_device[x.device] = (
                one.unit.to(x.device, torch.float32),
                one.unit.to(x.device, x.dtype),
            )
        unit32, unit = by_device[x.device]
        now = current_pass()
        allowed, new = _allowed(steering, now, rows, x)
        out, fire = gate(x, unit32, unit, one.alpha, one.tau, allowed, rule)
        counted = fire & new
        if now is not None:
            now.record.counts += counted.sum(dim=1)
            now.record.fired_last |= fire[:, -1]
            marks = now.record.transient
            if steering.persistence == "transient" and marks is not None and bool(fire.any()):
                marks.mark(
                    int(fire.any(dim=0).long().argmax()),
                    fire.any(dim=1),
                    block=first_block,
                    state=x.clone() if first_block is not None else None,
                )
        stats.add(one.layer, counted.sum(), (allowed & new).sum())
        return out

    return hook


@contextlib.contextmanager
def steering_hooks(
    bridge: Any, steering: ResolvedSteering, *, rows: Sequence[int] | None = None
) -> Iterator[SteeringStats]:
    """Add the hooks of `steering` while the context is open; yield their `SteeringStats`.
    The hooks are added through ``bridge.hooks`` and exactly those are removed on exit, exception
    or not. `rows` restricts the steering to those sequences of a `decode` call (their indices,
    `PassInfo.rows`)."""
    n_layers = int(bridge.cfg.n_layers)
    only = None if rows is None else torch.tensor(list(rows), dtype=torch.long)
    stats = SteeringStats()
    fns = [_layer_hook(steering, one, stats, only, n_layers) for one in steering.layers]
    layers = [one.layer for one in steering.layers]
    with contextlib.ExitStack() as stack:
        if steering.persistence == "transient":
            reached = [first_reached_block(layer, steering.site, n_layers) for layer in layers]
            stack.enter_context(capture_block_calls(bridge, min(b or 0 for b in reached)))
        if steering.site == "resid_mid":  # TransformerLens's hook there would not reach the stream
            stack.enter_context(edit_resid_mid(bridge, list(zip(layers, fns, strict=True))))
        else:
            names = [resid_hook(layer, steering.site) for layer in layers]
            stack.enter_context(bridge.hooks(fwd_hooks=list(zip(names, fns, strict=True))))
        yield stats
