"""The checks that every config's `__post_init__` shares: no NaN or infinite number gets into a
run, quantiles lie in [0, 1], and "true"/"false" text becomes a bool.

Each config lives beside the code that uses it (`ModelConfig` in `models`, `GenerationConfig` in
`generation`, ...); the command line is generated from them in `workbench.cli.parser`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from workbench.errors import WorkbenchError

__all__ = ["check_finite", "check_quantiles", "parse_bool"]


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, tuple | list):
        return [v for v in value if isinstance(v, float)]
    return []


def check_finite(cfg: Any) -> None:
    """Refuse NaN or infinite numbers in any field of the dataclass `cfg` (or in its tuples)."""
    for f in dataclasses.fields(cfg):
        bad = [v for v in _floats(getattr(cfg, f.name)) if not math.isfinite(v)]
        if bad:
            raise WorkbenchError(f"{f.name} must be finite numbers, not {bad[0]}")


def check_quantiles(values: tuple[float, ...]) -> None:
    """Refuse tau quantiles outside [0, 1] (1.0 means always on)."""
    bad = [q for q in values if not 0 <= q <= 1]
    if bad:
        raise WorkbenchError(f"tau_quantiles must lie in [0, 1], not {bad[0]}")


def parse_bool(text: str) -> bool:
    """ "true"/"false" (also 1/0, yes/no, on/off) as a bool."""
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise WorkbenchError(f"expected true/false, not {text!r}")
