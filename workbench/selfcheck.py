"""A load-time check, well under a second, that the installed stack computes what it should.

A new release of transformers once left TransformerLens's KV cache empty: every cached decoding
step then saw its own token alone, and the embedded model wrote 'either either either ...' without
any error (issue 14). `check_stack` runs three forward passes over a short prompt and compares
logits that must agree whatever the weights:

* **cached == uncached**: the next-token logits of a prompt decoded in two cached steps equal those
  of one uncached pass, and the cache holds every position afterwards;
* **left padding is invisible**: a left-padded row of a batch gives the logits of the same prompt
  alone (attention mask and position ids are handled);
* **finite logits**.

`load_model` calls it unless `ModelConfig.self_check` is False; the failure is a `StackError`
naming the installed versions and the way back to the tested ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from workbench.errors import WorkbenchError
from workbench.kv_cache import cache_kwargs, cached_length, new_cache

__all__ = ["StackCheck", "StackError", "check_stack", "stack_versions"]

_PROMPT = "Tom has 3 apples and buys 4 more. How many apples"
_N_PAD = 3
# Largest allowed |difference| / max|logit|. Correct stacks measured about 1e-6 in float32; a cache
# that is not filled, or mishandled padding, gives differences of the order of the logits.
_TOLERANCE = {torch.float32: 1e-3, torch.float64: 1e-3}
_TOLERANCE_HALF = 3e-2


class StackError(WorkbenchError):
    """The installed torch / transformers / transformer-lens compute wrong results."""


@dataclass(frozen=True, kw_only=True)
class StackCheck:
    """What `check_stack` measured (relative differences: |a - b|.max() / |b|.max())."""

    cache_error: float
    """Cached two-step next-token logits against one uncached pass."""
    padding_error: float
    """A left-padded batch row against the same prompt alone."""
    tolerance: float
    """Largest relative difference accepted for the model's dtype."""


def stack_versions() -> str:
    """'torch X, transformers Y, transformer-lens Z' as installed."""
    parts = []
    for name in ("torch", "transformers", "transformer-lens"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def _relative(a: Float[Tensor, " vocab"], b: Float[Tensor, " vocab"]) -> float:
    return float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-6))


def _prompt_ids(bridge: Any) -> list[int]:
    ids = bridge.tokenizer.encode(_PROMPT, add_special_tokens=False)[:12]
    return ids if len(ids) >= 4 else [1, 2, 3, 4]


def _fail(what: str) -> StackError:
    return StackError(
        f"the installed stack fails the load-time self-check: {what} ({stack_versions()}). "
        "Return to the tested versions with `bash scripts/setup.sh` (requirements.lock); "
        "self_check=False / --self-check false loads the model anyway, for debugging"
    )


def check_stack(bridge: Any) -> StackCheck:
    """Run the checks on `bridge`; return what was measured, or raise `StackError`."""
    ids = _prompt_ids(bridge)
    device = bridge.cfg.device
    pad = bridge.tokenizer.pad_token_id
    pad = bridge.tokenizer.eos_token_id if pad is None else pad
    n = len(ids)
    prompt = torch.tensor([ids], device=device)
    padded_prompt = torch.tensor([[pad] * _N_PAD + ids], device=device)
    mask = torch.tensor([[0] * _N_PAD + [1] * n], device=device)
    with torch.inference_mode():
        alone = bridge(prompt, return_type="logits")[0, -1]
        padded = bridge(padded_prompt, attention_mask=mask, return_type="logits")[0, -1]
        cache = new_cache(bridge)
        bridge(prompt[:, : n - 2], return_type="logits", **cache_kwargs(bridge, cache))
        stepped = bridge(prompt[:, n - 2 :], return_type="logits", **cache_kwargs(bridge, cache))
    if not bool(torch.isfinite(alone).all()):
        raise _fail("the logits are not finite")
    if cached_length(cache) != n:
        raise _fail(f"the KV cache holds {cached_length(cache)} of {n} positions")
    dtype = alone.dtype
    result = StackCheck(
        cache_error=_relative(stepped[0, -1], alone),
        padding_error=_relative(padded, alone),
        tolerance=_TOLERANCE.get(dtype, _TOLERANCE_HALF),
    )
    if result.cache_error > result.tolerance:
        raise _fail(
            f"cached and uncached next-token logits differ by {result.cache_error:.2g} "
            f"of their scale (tolerance {result.tolerance:.0e})"
        )
    if result.padding_error > result.tolerance:
        raise _fail(
            f"left padding changes the logits by {result.padding_error:.2g} of their scale "
            f"(tolerance {result.tolerance:.0e})"
        )
    return result
