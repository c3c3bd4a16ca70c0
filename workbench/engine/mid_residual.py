"""Edits of the residual stream in the middle of a block that reach the stream.

In TransformerLens 4.x a block's ``hook_resid_mid`` is an alias of ``ln2.hook_in``, the input of
the norm before the MLP. Reading it gives the residual stream after attention; a hook that
changes it changes only what the norm (and so the MLP) reads, not the stream carried to
``hook_resid_post``: the Hugging Face block keeps its own reference to the residual
(``residual = hidden_states`` before the norm) and adds the MLP's output to that. A steering nudge
written there therefore never enters the residual stream (`tests/integration/test_steering.py`
shows it on the tiny Qwen2).

`edit_resid_mid` makes such an edit land where it should: the residual entering the block is read
at the input of its first norm (``ln1``), the state in the middle is that plus the attention
branch's output (the module ``hook_attn_out`` names: the attention, or the norm after it where the
architecture has one), and the edit's change is added to that output, which the block adds to the
stream. So ``hook_resid_mid`` and ``hook_resid_post`` both see the edited state. Module hooks
fire whichever forward the modules run (the bridge's or the Hugging Face module's own,
`workbench.engine.native_attention`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.engine.hooks import patched, retuple, untuple
from workbench.errors import WorkbenchError

__all__ = ["MidEdit", "edit_resid_mid"]

MidEdit = Callable[[Float[Tensor, "batch pos d_model"], Any], Float[Tensor, "batch pos d_model"]]
"""A TransformerLens-style hook function ``(state, hook) -> state`` (``hook`` is None here)."""


def _branch_output_module(block: Any, layer: int) -> torch.nn.Module:
    """The module whose output the block adds to the stream after attention."""
    aliases = getattr(block, "hook_aliases", {}) or {}
    target = aliases.get("hook_attn_out")
    if (
        "hook_resid_mid" not in aliases
        or not isinstance(target, str)
        or "ln1" not in block._modules
    ):
        raise WorkbenchError(
            f"block {layer} has no residual stream between attention and MLP that the workbench "
            "can edit (a parallel block?): steer at resid_pre or resid_post"
        )
    return block.get_submodule(target.rsplit(".", 1)[0])


@contextlib.contextmanager
def edit_resid_mid(bridge: Any, edits: Sequence[tuple[int, MidEdit]]) -> Iterator[None]:
    """While open, each ``(layer, fn)`` replaces the residual stream in the middle of block
    `layer` by ``fn(state, None)``, so that the rest of the block and every later one see it (see
    the module docstring); hooks are always removed."""
    with patched() as handle:
        for layer, fn in edits:
            block = bridge.blocks[layer]
            branch = _branch_output_module(block, layer)
            kept: dict[str, Tensor] = {}

            def read(module: Any, args: tuple, kwargs: dict, kept=kept) -> None:
                kept["resid"] = args[0] if args else kwargs["hidden_states"]

            def write(module: Any, args: tuple, kwargs: dict, output: Any, kept=kept, fn=fn):
                out = untuple(output)
                h = kept.pop("resid") + out
                new = fn(h, None)
                if new is h:
                    return None
                return retuple(output, out + (new - h))

            handle.add(block.ln1.register_forward_pre_hook(read, with_kwargs=True))
            handle.add(branch.register_forward_hook(write, with_kwargs=True))
        yield
