"""Steering as tensors, one setting per batch row: the form a static (graphable) decode step needs.

`steer` decides in Python, per pass, which rows and positions a hook may touch (it reads the
`DecodeStep`), and holds alpha and tau as Python numbers. A step replayed from a CUDA graph cannot
branch or read Python state: its hooks must do the same arithmetic on every replay. Here every
row of the batch carries, at every steered layer, its own unit direction, strength and gate
threshold as tensors, and the gate is a masked add, ``where(on & (cos(h, v) < tau), h + alpha v,
h)``. Rows that a layer does not steer (another arm's rows, plain CoT) have alpha 0 and a
threshold no cosine is below, so arms that share a batch share one step, and a new arm is new
tensor values, not a new graph.

The update is `steer`'s, with its arithmetic, for a persistent additive `SteeringSpec` at
``resid_pre`` or ``resid_post`` on generated positions (the same tokens, intervention counts and
steered steps as `steer` on `decode`: tested); other specs (transient, the newest position only,
other rules, the JSON gate, ``resid_mid``) are refused by name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from workbench.core.directions import LayerDirections
from workbench.core.hooks import check_layers, model_shape
from workbench.core.steering import SteeringSpec
from workbench.errors import WorkbenchError

__all__ = ["GateState", "RowSteering", "row_steering", "row_steering_hooks", "static_support"]

RowArm = tuple[SteeringSpec, LayerDirections] | None
"""One row's steering: a spec and its directions, or None (not steered)."""

_NEVER = -2.0
"""A gate threshold no cosine is below: the row is not steered at that layer."""


Point = tuple[int, str]
"""(layer, site): where one of the step's edits is made."""

_SITE_ORDER = {"resid_pre": 0, "resid_post": 1}
"""Within a layer, the block's input is edited before its output."""


@dataclass(frozen=True)
class RowSteering:
    """Per-row steering at each steered point (rows in batch order)."""

    points: tuple[Point, ...]
    """(layer, site) of every edit, in the order a forward pass reaches them."""
    directions: dict[Point, Float[Tensor, "batch d_model"]]
    """Per point, each row's unit direction (zeros where the row is not steered there)."""
    alphas: dict[Point, Float[Tensor, " batch"]]
    """Per point, each row's absolute strength (0 where not steered)."""
    taus: dict[Point, Float[Tensor, " batch"]]
    """Per point, each row's gate: steer where cos(h, v) < tau (-2: never)."""


@dataclass
class GateState:
    """Tensors the hooks read and write on every pass (updated in place: graph-safe)."""

    on: Bool[Tensor, " batch"]
    """Rows whose newest position may be steered in this pass (alive, at a generated token)."""
    counts: Int[Tensor, " batch"]
    """Interventions per row, summed over layers and passes."""
    fired: Bool[Tensor, " batch"]
    """Whether any layer steered the row in the latest pass (reset by the first steered layer)."""

    @classmethod
    def zeros(cls, n: int, device: torch.device) -> GateState:
        return cls(
            on=torch.zeros(n, dtype=torch.bool, device=device),
            counts=torch.zeros(n, dtype=torch.long, device=device),
            fired=torch.zeros(n, dtype=torch.bool, device=device),
        )


def static_support(spec: SteeringSpec) -> str | None:
    """Why `spec` cannot run as row tensors (None: it can)."""
    unsupported = {
        "persistence": (spec.persistence, "persistent"),
        "positions": (spec.positions, "generated"),
        "rule": (spec.rule, "additive"),
        "json_gate": (spec.json_gate, False),
    }
    for name, (value, wanted) in unsupported.items():
        if value != wanted:
            return f"{name}={value!r} (the static step steers only {name}={wanted!r})"
    if spec.site not in ("resid_pre", "resid_post"):
        return f"site={spec.site!r} (the static step steers resid_pre or resid_post)"
    return None


def row_steering(bridge: Any, arms: Sequence[RowArm], device: torch.device) -> RowSteering | None:
    """The per-row tensors for `arms` (one per batch row; None where nothing is steered)."""
    steered = [arm for arm in arms if arm is not None]
    if not steered:
        return None
    d_model = model_shape(bridge)[1]
    for spec, directions in steered:
        reason = static_support(spec)
        if reason is not None:
            raise WorkbenchError(f"this steering cannot run in the static step: {reason}")
        if directions.d_model != d_model:
            raise WorkbenchError(
                f"directions have width {directions.d_model} but the model's residual stream "
                f"has {d_model}: they were fit on another model"
            )
    points = sorted(
        {(layer, spec.site) for spec, _ in steered for layer in spec.layers},
        key=lambda p: (p[0], _SITE_ORDER[p[1]]),
    )
    check_layers(bridge, sorted({layer for layer, _ in points}))
    n = len(arms)
    vs = {p: torch.zeros(n, d_model) for p in points}
    alphas = {p: torch.zeros(n) for p in points}
    taus = {p: torch.full((n,), _NEVER) for p in points}
    for row, arm in enumerate(arms):
        if arm is None:
            continue
        spec, directions = arm
        spec_taus = spec.tau if isinstance(spec.tau, tuple) else (spec.tau,) * len(spec.layers)
        for layer, tau in zip(spec.layers, spec_taus, strict=True):
            point = (layer, spec.site)
            if alphas[point][row] != 0 or taus[point][row] != _NEVER:
                raise WorkbenchError(f"layer {layer} is steered twice at {spec.site} in one row")
            scale = float(directions.mean_norm[directions.index(layer)])
            vs[point][row] = directions.unit(layer).float()
            alphas[point][row] = (
                spec.alpha * scale if spec.alpha_units == "relative" else spec.alpha
            )
            taus[point][row] = float(tau)
    return RowSteering(
        points=tuple(points),
        directions={k: v.to(device) for k, v in vs.items()},
        alphas={k: v.to(device) for k, v in alphas.items()},
        taus={k: v.to(device) for k, v in taus.items()},
    )


def _gate(
    h: Float[Tensor, "batch pos d_model"],
    v: Float[Tensor, "batch d_model"],
    alpha: Float[Tensor, " batch"],
    tau: Float[Tensor, " batch"],
    on: Bool[Tensor, " batch"],
) -> tuple[Float[Tensor, "batch pos d_model"], Bool[Tensor, " batch"]]:
    """The gated update at each row's newest position; the rows it fired on. `steer`'s
    arithmetic, so that the two agree bit for bit."""
    last = h[:, -1:]
    cos = torch.nn.functional.cosine_similarity(last.float(), v[:, None, :], dim=-1)[:, 0]
    fire = (cos < tau) & on
    nudged = last + alpha.to(h.dtype)[:, None, None] * v.to(h.dtype)[:, None, :]
    new_last = torch.where(fire[:, None, None], nudged, last)
    return torch.cat([h[:, :-1], new_last], dim=1), fire


def _edit(state: GateState, steering: RowSteering, point: Point, first: bool):
    """`h -> gated h` at `point`, counting into `state`."""

    def edit(h: Tensor) -> Tensor:
        new, fire = _gate(
            h, steering.directions[point], steering.alphas[point], steering.taus[point], state.on
        )
        state.counts.add_(fire.long())
        if first:
            state.fired.copy_(fire)
        else:
            state.fired.logical_or_(fire)
        return new

    return edit


@contextlib.contextmanager
def row_steering_hooks(
    bridge: Any, steering: RowSteering | None, state: GateState
) -> Iterator[None]:
    """Torch hooks on the Hugging Face decoder layers inside `bridge` that apply `steering`
    (a forward pre-hook on the block's input for ``resid_pre``, a forward hook on its output for
    ``resid_post``); always removed on exit. Nothing is hooked when `steering` is None."""
    if steering is None:
        yield
        return
    handles = []
    try:
        for k, (layer, site) in enumerate(steering.points):
            module = bridge.blocks[layer].original_component
            edit = _edit(state, steering, (layer, site), first=k == 0)
            if site == "resid_pre":
                handles.append(module.register_forward_pre_hook(_pre_hook(edit)))
            else:
                handles.append(module.register_forward_hook(_post_hook(edit)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _pre_hook(edit):
    def hook(module: torch.nn.Module, args: tuple) -> tuple:
        return (edit(args[0]), *args[1:])

    return hook


def _post_hook(edit):
    def hook(module: torch.nn.Module, args: tuple, output: Any) -> Any:
        if isinstance(output, tuple):
            return (edit(output[0]), *output[1:])
        return edit(output)

    return hook
