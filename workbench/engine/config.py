"""How to decode: `GenerationConfig`, read by the entry point and by both decoders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from workbench.checks import check_finite
from workbench.errors import WorkbenchError

__all__ = ["GenerationConfig"]


@dataclass(frozen=True, kw_only=True)
class GenerationConfig:
    """How to decode."""

    max_new_tokens: int = 384
    """Hard cap on generated tokens per sequence."""
    batch_size: int = 64
    """Most sequences decoded together (continuous batching: a finished row's place goes to a
    waiting prompt). Greedy output does not depend on it, so a run may resume with another; the
    cost per row falls with more rows up to 64 at least on the CPU (`benchmarks/README.md`)."""
    do_sample: bool = False
    """False: greedy. True: temperature / top-p sampling."""
    temperature: float = 0.7
    """Sampling temperature (used only when do_sample)."""
    top_p: float = 0.95
    """Nucleus mass kept when sampling (used only when do_sample)."""
    seed: int = 0
    """Sampling seed. Each sequence has its own generator (seed + its index), so a sequence's
    sample does not depend on which batch it lands in."""
    use_kv_cache: bool = True
    """Reuse keys/values of earlier positions (False recomputes everything: tests only)."""
    static_step: Literal["auto", "on", "off"] = "off"
    """Decode in static batches with a static KV cache, the step replayed from a CUDA graph on
    CUDA (`workbench.engine.static`): 'auto' on CUDA devices, 'on' on any (the CPU runs the
    step eagerly), 'off' never (continuous batching). `decode` takes continuous batching for
    jobs the static step cannot take (states recorded, an intervention around the call, steering
    that `ResolvedSteering.static_support` refuses). Greedy output is the same either way.
    The default is 'off': whether the graphed step is faster is measured by
    `scripts/gpu_check.sh` and reported in `benchmarks/README.md`."""

    def __post_init__(self) -> None:
        check_finite(self)
        if self.max_new_tokens < 1:
            raise WorkbenchError(f"max_new_tokens must be >= 1, not {self.max_new_tokens}")
        if self.batch_size < 1:
            raise WorkbenchError(f"batch size must be >= 1, not {self.batch_size}")
        if self.static_step not in ("auto", "on", "off"):
            raise WorkbenchError(f"static_step must be auto, on or off, not {self.static_step!r}")
        if self.do_sample and not (self.temperature > 0 and 0 < self.top_p <= 1):
            raise WorkbenchError("sampling needs temperature > 0 and 0 < top_p <= 1")
