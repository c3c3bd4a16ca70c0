"""A load-time check that the installed stack computes what it should (three forward passes:
about 0.6 s on the embedded model on a 2-core CPU, `benchmarks/self_check.py`).

A new release of transformers once left TransformerLens's KV cache empty: every cached decoding
step then saw its own token alone, and the embedded model wrote 'either either either ...' without
any error (issue 14). `check_stack` decodes one short prompt the way `decode` does (attention by
the HF module, `workbench.engine.native_attention`) and compares logits that must agree whatever the
weights:

* pass 1, with a fresh KV cache, a batch of two: row A is the prompt without its last token,
  left-padded by two; row B is the whole prompt, left-padded by one. Row B's next-token logits
  are the uncached reference;
* pass 2, one cached step: row A gets the prompt's last token. Its next-token logits must equal
  row B's (up to float rounding), and the cache must hold every position;
* pass 3, row B alone through the bridge's own attention (what runs when a hook sits inside
  attention): its logits must equal pass 1's, so the two attention paths compute the same model.

A cache that is not filled, or not read, changes row A's logits; so does mishandled left padding
(the rows are padded differently). The logits must also be finite.

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

from workbench.engine.kv_cache import cache_kwargs, cached_length, new_cache
from workbench.engine.native_attention import native_attention
from workbench.errors import WorkbenchError

__all__ = ["StackCheck", "StackError", "check_stack", "stack_versions"]

_PROMPT = "Tom has 3 apples and buys 4 more. How many apples"
# Largest allowed |difference| / max|logit|. Correct stacks measured about 1e-6 in float32, 0 on
# a CPU in bfloat16, and 3.0e-2 in bfloat16 on an H200 (random Qwen2.5-7B shape, 28 layers:
# results/gpu-check-2026-11-27). A wrong context is of the order of the logits: dropping the first
# token of the prompt moved them by 0.77 (random Qwen2.5-0.5B shape, bfloat16).
_TOLERANCE = {torch.float32: 1e-3, torch.float64: 1e-3}
_TOLERANCE_HALF = 0.1


class StackError(WorkbenchError):
    """The installed torch / transformers / transformer-lens compute wrong results."""


@dataclass(frozen=True, kw_only=True)
class StackCheck:
    """What `check_stack` measured."""

    error: float
    """|cached-step logits - uncached logits|.max() / |uncached logits|.max()."""
    attention_error: float
    """The same between the bridge's own attention and the HF module's (uncached)."""
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
    ids = bridge.tokenizer.encode(_PROMPT, add_special_tokens=False)[:6]
    return ids if len(ids) >= 4 else [1, 2, 3, 4]


def _fail(what: str) -> StackError:
    return StackError(
        f"the installed stack fails the load-time self-check: {what} ({stack_versions()}). "
        "Return to the tested versions with `bash scripts/setup.sh` (requirements.lock); "
        "self_check=False / --model.self_check false loads the model anyway, for debugging"
    )


def check_stack(bridge: Any) -> StackCheck:
    """Run the check on `bridge`; return what was measured, or raise `StackError`."""
    ids = _prompt_ids(bridge)
    n, device = len(ids), bridge.cfg.device
    pad = bridge.tokenizer.pad_token_id
    pad = bridge.tokenizer.eos_token_id if pad is None else pad
    rows = torch.tensor([[pad, pad, *ids[:-1]], [pad, *ids]], device=device)
    mask = torch.tensor([[0, 0] + [1] * (n - 1), [0] + [1] * n], device=device)
    step = torch.tensor([[ids[-1]], [pad]], device=device)
    cache = new_cache(bridge)
    with torch.inference_mode():
        kwargs = {"return_type": "logits", "logits_to_keep": 1}
        with native_attention(bridge):
            cached = {**kwargs, **cache_kwargs(bridge, cache)}
            first = bridge(rows, attention_mask=mask, **cached)[:, -1]
            mask = torch.cat([mask, mask.new_ones((2, 1))], dim=1)
            stepped = bridge(step, attention_mask=mask, **cached)[0, -1]
        own = bridge(rows[1:, 1:], **kwargs)[0, -1]
    reference = first[1]
    if not bool(torch.isfinite(reference).all() and torch.isfinite(stepped).all()):
        raise _fail("the logits are not finite")
    if cached_length(cache) != n + 2:
        raise _fail(f"the KV cache holds {cached_length(cache)} of {n + 2} positions")
    result = StackCheck(
        error=_relative(stepped, reference),
        attention_error=_relative(own, reference),
        tolerance=_TOLERANCE.get(reference.dtype, _TOLERANCE_HALF),
    )
    if result.error > result.tolerance:
        raise _fail(
            "a cached decoding step and an uncached pass over the same left-padded prompt give "
            f"next-token logits that differ by {result.error:.2g} of their scale (tolerance "
            f"{result.tolerance:.0e}): the KV cache or the padding is mishandled"
        )
    if result.attention_error > result.tolerance:
        raise _fail(
            "the HF module's attention and the bridge's own give next-token logits that differ "
            f"by {result.attention_error:.2g} of their scale (tolerance {result.tolerance:.0e})"
        )
    return result
