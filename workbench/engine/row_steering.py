"""Steering as tensors, one setting per batch row: the form a static (graphable) decode step needs.

The hook path (`workbench.engine.steering.steering_hooks`) decides in Python, per pass, which rows
and positions a hook may touch (it reads the pass in flight), and holds alpha and tau as Python
numbers. A step replayed from a CUDA graph cannot branch or read Python state: its hooks must do
the same arithmetic on every replay. Here every row of the batch carries, at every steered layer,
its own unit direction, strength and gate threshold as tensors, derived from its
`ResolvedSteering`, and the same `gate` is applied to each row's newest position. Rows that a layer
does not steer (another arm's rows, plain CoT) have alpha 0 and a threshold no cosine is below, so
arms that share a batch share one step, and a new arm is new tensor values, not a new graph.

Steering that the static step takes: persistent, additive, on generated positions, at
``resid_pre`` or ``resid_post``, without a row gate (`ResolvedSteering.static_support` names what
is refused). It gives the same tokens, intervention counts and steered steps as the hook path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from workbench.engine.hooks import model_shape, patched, retuple, untuple
from workbench.engine.steering import RULES, ResolvedSteering, gate
from workbench.errors import WorkbenchError

__all__ = ["GateState", "RowArm", "RowSteering", "row_steering", "row_steering_hooks"]

RowArm = ResolvedSteering | None
"""One row's steering, or None (not steered)."""

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
    rule: str = "additive"
    """The update rule every row's steering uses."""


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


def _checked(arms: Sequence[RowArm]) -> list[ResolvedSteering]:
    """The steered arms, each one the static step takes (else a one-line error). Their width
    and layers were checked against the model when they were resolved."""
    steered = [arm for arm in arms if arm is not None]
    for arm in steered:
        reason = arm.static_support()
        if reason is not None:
            raise WorkbenchError(f"this steering cannot run in the static step: {reason}")
    return steered


def row_steering(bridge: Any, arms: Sequence[RowArm], device: torch.device) -> RowSteering | None:
    """The per-row tensors for `arms` (one per batch row; None where nothing is steered)."""
    steered = _checked(arms)
    if not steered:
        return None
    points = sorted(
        {(one.layer, arm.site) for arm in steered for one in arm.layers},
        key=lambda p: (p[0], _SITE_ORDER[p[1]]),
    )
    n, d_model = len(arms), model_shape(bridge)[1]
    vs = {p: torch.zeros(n, d_model) for p in points}
    alphas = {p: torch.zeros(n) for p in points}
    taus = {p: torch.full((n,), _NEVER) for p in points}
    for row, arm in enumerate(arms):
        for one in arm.layers if arm is not None else ():
            point = (one.layer, arm.site)
            if alphas[point][row] != 0 or taus[point][row] != _NEVER:
                raise WorkbenchError(f"layer {one.layer} is steered twice at {arm.site} in one row")
            vs[point][row] = one.unit.float()
            alphas[point][row] = one.alpha
            taus[point][row] = one.tau
    return RowSteering(
        points=tuple(points),
        directions={k: v.to(device) for k, v in vs.items()},
        alphas={k: v.to(device) for k, v in alphas.items()},
        taus={k: v.to(device) for k, v in taus.items()},
        rule=steered[0].rule,
    )


def _edit(state: GateState, steering: RowSteering, point: Point, first: bool):
    """`h -> gated h` at `point` (each row's newest position), counting into `state`."""
    v = steering.directions[point][:, None, :]
    alpha, tau = steering.alphas[point][:, None, None], steering.taus[point][:, None]
    rule = RULES[steering.rule]

    def edit(h: Tensor) -> Tensor:
        last = h[:, -1:]
        new_last, fire = gate(
            last, v, v.to(h.dtype), alpha.to(h.dtype), tau, state.on[:, None], rule
        )
        fire = fire[:, 0]
        state.counts.add_(fire.long())
        if first:
            state.fired.copy_(fire)
        else:
            state.fired.logical_or_(fire)
        return torch.cat([h[:, :-1], new_last], dim=1)

    return edit


@contextlib.contextmanager
def row_steering_hooks(
    bridge: Any, steering: RowSteering | None, state: GateState
) -> Iterator[None]:
    """Torch hooks on the Hugging Face decoder layers inside `bridge` that apply `steering`
    (a forward pre-hook on the block's input for ``resid_pre``, a forward hook on its output for
    ``resid_post``); always removed on exit. Nothing is hooked when `steering` is None."""
    with patched() as handle:
        for k, (layer, site) in enumerate(steering.points if steering is not None else ()):
            module = bridge.blocks[layer].original_component
            edit = _edit(state, steering, (layer, site), first=k == 0)
            if site == "resid_pre":
                handle.add(module.register_forward_pre_hook(_pre_hook(edit)))
            else:
                handle.add(module.register_forward_hook(_post_hook(edit)))
        yield


def _pre_hook(edit):
    def hook(module: torch.nn.Module, args: tuple) -> tuple:
        return (edit(args[0]), *args[1:])

    return hook


def _post_hook(edit):
    def hook(module: torch.nn.Module, args: tuple, output: Any) -> Any:
        return retuple(output, edit(untuple(output)))

    return hook
