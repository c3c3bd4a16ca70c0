"""Forward passes that pay for TransformerLens's hook machinery only where a hook is.

A `TransformerBridge` puts a bridge component in place of each module of the Hugging Face model
it wraps (decoder layers, norms, attention, MLPs, every projection, embedding, unembedding): the
Hugging Face parent calls the component, whose ``__call__`` aligns offloaded weights and whose
forward fires hook points around a call of the original module: per decoding step a dozen
components and some forty hook points a layer on Qwen2, all Python, which a GPU cannot hide (the
cost: `benchmarks/step_overhead.py`).

`lean_passes` puts the original module back in its Hugging Face parent, for the passes inside the
context, wherever the component in its place has no hooked hook point of its own and no module
hook: the parent then calls the Hugging Face module directly, and where that module calls a
submodule, the submodule's component is judged the same way. A component with a hook of its own
stays, so its hooks fire as before: steering or recording at one layer costs the bridge's machinery
at that layer only. A decoder layer hooked only at its residual ends (``hook_resid_pre`` and
``hook_resid_post``, the block's ``hook_in`` and ``hook_out``, where steering and recording hook)
gives way too: its Hugging Face layer runs, and a PyTorch forward (pre-)hook on it calls that hook
point on the layer's input or output, as the block's forward would have, without the block's
per-call work (kwarg filtering, stop/start-at-layer checks, attention captures). Only where
attention is native and the block is TransformerLens's plain `BlockBridge`.

TransformerLens's own capture hooks, wired on a block's first bridge pass, do not count where
nothing reads what they capture (the bridge's attention, ``hook_mlp_in``). Attention follows
`workbench.engine.native_attention` (the module's own kernel unless a hook point inside any
attention layer is hooked). The bridge's own module tree
(``bridge.blocks``, ``bridge.hook_dict``) is not touched: the decoder layers are put back in a new
list that the Hugging Face model holds while the context is open.

The choice is made when the context opens, from the hooks present then: enter it after the
interventions (as `workbench.engine.generation.decode` does). A hook added inside the context to a
component that was bypassed does not fire until the context is entered again.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

import torch

from workbench.engine.hooks import PatchHandle, has_hooks, patched, retuple, untuple
from workbench.engine.native_attention import native_attention

__all__ = ["lean_passes"]

_Swap = tuple[torch.nn.Module, str, torch.nn.Module]
"""(Hugging Face parent, child name, module to put there)."""


def _needed(hook: Any, skippable: frozenset[str]) -> bool:
    """Whether a module hook must fire: all do, except TransformerLens's own capture hooks
    (installed on a block's first bridge pass) whose purpose is absent from this pass."""
    name = getattr(hook, "__qualname__", "")
    return not ("_maybe_wire_capture_hooks" in name and hook.__name__ in skippable)


def _skippable_captures(bridge: Any, attention_native: bool) -> frozenset[str]:
    """TransformerLens's capture hooks that nothing reads in this pass: ``_capture_pre_ln1``
    feeds the bridge's own attention (unused when attention is native), ``_capture_mlp_in``
    fires ``hook_mlp_in`` (unused when no such hook point is hooked)."""
    skippable = {"_capture_pre_ln1"} if attention_native else set()
    if not any(
        getattr(b, "hook_mlp_in", None) is not None and b.hook_mlp_in._forward_hooks
        for b in bridge.blocks
    ):
        skippable.add("_capture_mlp_in")
    return frozenset(skippable)


def _own_hooks(
    component: torch.nn.Module, skippable: frozenset[str], ignore: frozenset[str] = frozenset()
) -> bool:
    """Whether `component` has a module hook that must fire, or a hooked hook point of its own
    (not one that belongs to a component inside it, which is judged by itself; nor one of its
    direct children named in `ignore`)."""
    from transformer_lens.hook_points import HookPoint
    from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

    hooks = [*component._forward_hooks.values(), *component._forward_pre_hooks.values()]
    if any(_needed(hook, skippable) for hook in hooks):
        return True
    skip = {"_original_component", *ignore}
    stack = [m for n, m in component._modules.items() if n not in skip]
    while stack:
        module = stack.pop()
        if module is None or isinstance(module, GeneralizedComponent):
            continue
        if isinstance(module, HookPoint) and has_hooks(module):
            return True
        stack.extend(module._modules.values())
    return False


def _bypassable(module: Any, attention_native: bool, skippable: frozenset[str]) -> bool:
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge
    from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

    return (
        isinstance(module, GeneralizedComponent)
        and isinstance(getattr(module, "original_component", None), torch.nn.Module)
        and getattr(module, "name", None) is not None  # containerless views wrap their parent
        and (attention_native or not isinstance(module, AttentionBridge))
        and not _own_hooks(module, skippable)
    )


_ENDS = frozenset({"hook_in", "hook_out"})
"""A block's residual ends: its input (``hook_resid_pre``) and output (``hook_resid_post``)."""


def _thin(module: Any, attention_native: bool, skippable: frozenset[str]) -> bool:
    """Whether `module` is a plain decoder block hooked at its residual ends only (see the module
    docstring), so that its Hugging Face layer can run with forward hooks in its place."""
    from transformer_lens.model_bridge.generalized_components.block import BlockBridge

    return (
        attention_native
        and type(module) is BlockBridge
        and isinstance(getattr(module, "original_component", None), torch.nn.Module)
        and getattr(module, "_stop_at_layer_idx", None) is None
        and getattr(module, "_start_at_layer_idx", None) is None
        and any(has_hooks(getattr(module, end)) for end in _ENDS)
        and not _own_hooks(module, skippable, ignore=_ENDS)
    )


def _end_hooks(block: Any, handle: PatchHandle) -> None:
    """Forward hooks on `block`'s Hugging Face layer that call its hooked residual hook points
    where `BlockBridge.forward` would: ``hook_in`` on the hidden states going in, ``hook_out`` on
    those coming out (the first element of a tuple)."""
    layer = block.original_component
    if has_hooks(block.hook_in):

        def enter(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
            if args and isinstance(args[0], torch.Tensor):
                return (block.hook_in(args[0]), *args[1:]), kwargs
            if isinstance(kwargs.get("hidden_states"), torch.Tensor):
                return args, {**kwargs, "hidden_states": block.hook_in(kwargs["hidden_states"])}
            return None

        handle.add(layer.register_forward_pre_hook(enter, with_kwargs=True))
    if has_hooks(block.hook_out):

        def leave(module: Any, args: tuple, output: Any) -> Any:
            states = untuple(output) if isinstance(output, tuple) and output else output
            if isinstance(states, torch.Tensor):
                return retuple(output, block.hook_out(states))
            return None

        handle.add(layer.register_forward_hook(leave))


_PLACES: weakref.WeakKeyDictionary[Any, list[tuple[torch.nn.Module, str, torch.nn.Module]]] = (
    weakref.WeakKeyDictionary()
)
"""Per bridge, every (Hugging Face parent, name, child) where the child is a component or a list
of them: the module tree does not change after loading, so it is walked once."""


def _places(bridge: Any) -> list[tuple[torch.nn.Module, str, torch.nn.Module]]:
    from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent

    if bridge not in _PLACES:
        places = []
        for parent in bridge.original_model.modules():
            if isinstance(parent, GeneralizedComponent | torch.nn.ModuleList):
                continue
            for name, child in parent._modules.items():
                if isinstance(child, GeneralizedComponent) or (
                    isinstance(child, torch.nn.ModuleList)
                    and any(isinstance(c, GeneralizedComponent) for c in child)
                ):
                    places.append((parent, name, child))
        _PLACES[bridge] = places
    return _PLACES[bridge]


def _swaps(bridge: Any, attention_native: bool) -> tuple[list[_Swap], int, list[Any]]:
    """Every place in the Hugging Face model where a bypassable component can give way, how
    many components give way, and the blocks among them hooked at their residual ends."""
    skip = _skippable_captures(bridge, attention_native)
    thin: list[Any] = []

    def lean(module: torch.nn.Module) -> torch.nn.Module:
        if _thin(module, attention_native, skip):
            thin.append(module)
            return module.original_component
        bypass = _bypassable(module, attention_native, skip)
        return module.original_component if bypass else module

    swaps: list[_Swap] = []
    n = 0
    for parent, name, child in _places(bridge):
        if isinstance(child, torch.nn.ModuleList):
            entries = [lean(c) for c in child]
            changed = sum(e is not c for e, c in zip(entries, child, strict=True))
            if changed:
                swaps.append((parent, name, torch.nn.ModuleList(entries)))
        else:
            entry = lean(child)
            changed = int(entry is not child)
            if changed:
                swaps.append((parent, name, entry))
        n += changed
    return swaps, n, thin


@contextlib.contextmanager
def lean_passes(bridge: Any, enabled: bool = True) -> Iterator[int]:
    """Inside the context, the Hugging Face model inside `bridge` calls its own modules wherever
    the bridge's component has no hook (see the module docstring); yields how many places were
    bypassed. Always puts the bridge's components back on exit."""
    with native_attention(bridge, enabled) as attention_native:
        swaps, n_bypassed, thin = _swaps(bridge, attention_native) if enabled else ([], 0, [])
        kept = [(parent, name, parent._modules[name]) for parent, name, _ in swaps]
        with patched() as handle:
            try:
                for block in thin:
                    _end_hooks(block, handle)
                for parent, name, module in swaps:
                    parent._modules[name] = module
                yield n_bypassed
            finally:
                for parent, name, module in kept:
                    parent._modules[name] = module
