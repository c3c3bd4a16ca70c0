"""Why P2 answers fail: each arm's outputs by `p2_outcome`, with the ones cut at the token cap.

Under the P2 prompt an answer counts only inside a valid JSON object, so a P2 accuracy mixes two
things: whether the model solved the problem and whether it wrote the format. `p2_formats` keeps
them apart per arm (valid objects, and of the rest: no object, an object never closed, an invalid
escape, another syntax error, a missing key), so that an arm that "gains" by writing the format
more often is seen as doing that.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.json_answer import (
    P2_OUTCOMES,
    P2Outcome,
    parse_p2,
    whole_output_object,
)

__all__ = ["P2Formats", "p2_formats"]


@dataclass(frozen=True)
class P2Formats:
    """One arm's P2 outputs by outcome."""

    method: str
    """Arm (or condition) name."""
    n: int
    """Rows."""
    correct: int
    """Rows graded correct (each one a valid object)."""
    outcomes: dict[P2Outcome, int]
    """Rows per outcome, every outcome listed (zeros included), in `P2_OUTCOMES` order."""
    at_cap: dict[P2Outcome, int]
    """Of those, rows that stopped at the token cap (finish 'length')."""
    whole: int
    """Valid rows whose whole output is the object (`whole_output_object`)."""
    escapes: dict[str, int]
    """The 'invalid escape' rows by the escape where the parse failed (`invalid_escape`: a
    backslash and the character after it, e.g. LaTeX's ``\\(``), most frequent first."""


def p2_formats(rows: Sequence[Mapping[str, Any]], *, method: str = "") -> P2Formats:
    """Count `rows` (graded P2 generations with their text) by `p2_outcome`, each parsed once."""
    texts = [r.get("text") or "" for r in rows]
    parses = [parse_p2(t) for t in texts]
    kinds = [p.outcome for p in parses]
    capped = Counter(k for k, r in zip(kinds, rows, strict=True) if r["finish"] == "length")
    counts = Counter(kinds)
    return P2Formats(
        method=method,
        n=len(rows),
        correct=sum(bool(r["correct"]) for r in rows),
        outcomes={k: counts[k] for k in P2_OUTCOMES},
        at_cap={k: capped[k] for k in P2_OUTCOMES},
        whole=sum(
            k == "valid" and whole_output_object(t) for k, t in zip(kinds, texts, strict=True)
        ),
        escapes=dict(Counter(p.escape for p in parses if p.escape is not None).most_common()),
    )
