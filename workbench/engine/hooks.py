"""Hook names, checked against the bridge, and the handles of the hooks the engine adds.

TransformerLens skips unknown hook names silently, so every name the workbench hooks is spelled
here (`resid_hook`) and verified first (`check_hook_names`). Torch module hooks that a context adds
together are removed together through one `PatchHandle` (`patched`), and a module's output that
may be a tuple is read and rebuilt with `untuple` / `retuple`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from workbench.errors import WorkbenchError

__all__ = [
    "FINAL_HOOK",
    "SITES",
    "PatchHandle",
    "Site",
    "bridge_hooked",
    "check_hook_names",
    "check_layers",
    "has_hooks",
    "model_shape",
    "patched",
    "resid_hook",
    "retuple",
    "stop_after",
    "untuple",
]

Site = Literal["resid_pre", "resid_mid", "resid_post", "final"]
"""Where in the residual stream: a block's input, middle or output, or 'final': the final
normalised state (``ln_final``'s output, the unembedding's input; LatentSeek's latent and the site
the ALS authors fit their vector on), one per model, filed under the last layer's number."""
SITES: tuple[str, ...] = get_args(Site)
FINAL_HOOK = "ln_final.hook_out"


def resid_hook(layer: int, site: Site = "resid_post") -> str:
    """Residual-stream hook name, e.g. ``blocks.12.hook_resid_post`` (``ln_final.hook_out`` for
    the 'final' site, whatever the layer)."""
    if site not in SITES:
        raise WorkbenchError(f"unknown hook site {site!r}; use one of {', '.join(SITES)}")
    return FINAL_HOOK if site == "final" else f"blocks.{layer}.hook_{site}"


def model_shape(bridge: Any) -> tuple[int, int]:
    """(n_layers, d_model) of a bridge."""
    return int(bridge.cfg.n_layers), int(bridge.cfg.d_model)


def check_layers(bridge: Any, layers: Iterable[int]) -> tuple[int, ...]:
    """Layers as a sorted tuple; negative layers count from the end; out of range is an error."""
    n_layers, _ = model_shape(bridge)
    resolved = sorted({layer + n_layers if layer < 0 else layer for layer in layers})
    bad = [layer for layer in resolved if not 0 <= layer < n_layers]
    if bad or not resolved:
        raise WorkbenchError(
            f"layers {bad or '(none)'} do not exist: the model has layers 0..{n_layers - 1}"
        )
    return tuple(resolved)


def check_hook_names(bridge: Any, names: Iterable[str]) -> None:
    """Raise if any name is not a hook point of the bridge (instead of a silent no-op)."""
    hook_dict = bridge.hook_dict
    missing = [n for n in names if n not in hook_dict]
    if missing:
        examples = ", ".join(sorted(k for k in hook_dict if "resid" in k)[:3])
        raise WorkbenchError(
            f"hook point(s) {', '.join(missing)} not found on this model (e.g. {examples})"
        )


class _Stopped(Exception):
    """Ends a forward pass at the hook of `stop_after`."""


def _stop(x: Any, hook: Any) -> Any:
    raise _Stopped


@contextlib.contextmanager
def stop_after(bridge: Any, name: str) -> Iterator[None]:
    """While open, a forward pass that reaches hook `name` ends there (after the hooks added
    before this one ran): nothing after it runs, e.g. later blocks or the unembedding. The call
    that ran the pass is cut short and the context closes quietly; hooks are always removed."""
    check_hook_names(bridge, [name])
    with contextlib.suppress(_Stopped), bridge.hooks(fwd_hooks=[(name, _stop)]):
        yield


def has_hooks(module: torch.nn.Module) -> bool:
    """Whether any hook (forward, backward, pre or post) is registered on `module` itself."""
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or module._backward_pre_hooks
    )


def bridge_hooked(bridge: Any) -> bool:
    """Whether any TransformerLens hook point of `bridge` has a hook."""
    return any(has_hooks(point) for point in bridge.hook_dict.values())


@dataclass
class PatchHandle:
    """Torch module hooks added together by one context, removed together by `remove`."""

    handles: list[RemovableHandle] = field(default_factory=list)
    """The hooks' handles, in the order they were added."""

    def add(self, handle: RemovableHandle) -> None:
        """Keep `handle` to be removed with the others."""
        self.handles.append(handle)

    def remove(self) -> None:
        """Remove every hook added so far (idempotent)."""
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


@contextlib.contextmanager
def patched() -> Iterator[PatchHandle]:
    """A `PatchHandle` whose hooks are removed when the context closes, exception or not."""
    handle = PatchHandle()
    try:
        yield handle
    finally:
        handle.remove()


def untuple(output: Any) -> Tensor:
    """The hidden states of a module's output: the output itself, or a tuple's first element."""
    return output[0] if isinstance(output, tuple) else output


def retuple(output: Any, states: Tensor) -> Any:
    """`output` with its hidden states replaced by `states` (the rest of a tuple kept)."""
    return (states, *output[1:]) if isinstance(output, tuple) else states
