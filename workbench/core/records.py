"""The two records every stage shares: one graded generation, and the summary of a method.

`GradedRow` is the schema of the JSONL rows that CoT, ALS, Self-Consistency and LatentSeek write
(one per problem); `MethodSummary` is what `summarize` makes of a method's rows, with the paired
test against a base method on the same problems. `als run`, `als sweep`, `als compare` and the
CLI all summarise through `summarize`, so a number has one name everywhere
(``tokens_per_problem``, ``seconds_per_problem``, ...).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.core.evaluation import mcnemar_exact, paired_counts, wilson_interval
from workbench.core.json_answer import whole_output_object
from workbench.core.selection import intervention_rate

__all__ = ["GradedRow", "MethodSummary", "summarize"]


@dataclass(frozen=True, kw_only=True)
class GradedRow:
    """One graded generation of one problem by one method."""

    id: str
    """Problem id."""
    method: str
    """Method (or condition) name."""
    gold: str
    """Gold final answer."""
    predicted: str | None
    """Extracted final answer (None: none found)."""
    correct: bool
    """Verdict of `workbench.core.grading.grade`."""
    extraction: str
    """How the answer was extracted ('boxed', 'hashes', 'answer_is', 'last_number', 'none'; for
    the P2 prompt 'json' or 'invalid_json')."""
    prompt_tokens: int
    """Prompt length in tokens."""
    generated_tokens: int
    """Tokens generated, every sample, regeneration and verifier token included."""
    seconds: float
    """Wall time charged to this problem (its batches' time shared over their sequences)."""
    finish: str
    """'eos', 'stop' (answer complete) or 'length' (token cap)."""
    interventions: int = 0
    """Steering interventions counted (all layers and positions)."""
    steered_steps: list[int] = field(default_factory=list)
    """Generated-token indices at which steering fired."""
    text: str = ""
    """The generated text."""
    tokens: list[int] = field(default_factory=list)
    """The generated token ids (without EOS)."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Method-specific fields (Self-Consistency's samples, LatentSeek's iterations, passes and
    rewards), written at the top level of the JSON row."""

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        extras = row.pop("extras")
        row["seconds"] = round(self.seconds, 4)
        return {**row, **extras}

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> GradedRow:
        names = {f for f in cls.__dataclass_fields__ if f != "extras"}
        known = {k: v for k, v in row.items() if k in names}
        return cls(**known, extras={k: v for k, v in row.items() if k not in names})


@dataclass(frozen=True, kw_only=True)
class MethodSummary:
    """A method's rows summarised: accuracy with its CI, costs, and a paired test vs a base."""

    method: str
    """Method (or condition) name."""
    n: int
    """Problems."""
    correct: int
    """Problems answered correctly."""
    accuracy: float
    """correct / n (nan when n = 0)."""
    ci_low: float
    """Wilson 95% interval, lower end."""
    ci_high: float
    """Wilson 95% interval, upper end."""
    tokens_per_problem: float
    """Mean generated tokens."""
    seconds_per_problem: float
    """Mean seconds charged."""
    intervention_rate: float
    """Interventions per generated token and steered layer."""
    no_answer: int
    """Rows with no extracted answer."""
    finish: dict[str, int]
    """Rows by finish reason."""
    json_valid: int | None = None
    """Rows whose output was a valid P2 JSON object (None: not graded as JSON)."""
    json_whole: int | None = None
    """Of those, rows whose whole output is the object (`whole_output_object`: the authors'
    strict MATH-500 P2 reading; here the stop rule already drops what follows the object)."""
    correct_whole: int | None = None
    """Correct rows among `json_whole`'s."""
    base: str | None = None
    """The method compared against on the same problems (None: no comparison)."""
    only_base: int | None = None
    """Problems right under the base only (broken by this method)."""
    only_method: int | None = None
    """Problems right under this method only (fixed by it)."""
    mcnemar_p: float | None = None
    """Two-sided exact McNemar p-value of the paired comparison."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _mean(rows: Sequence[Mapping[str, Any]], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows) if rows else math.nan


def _json_counts(rows: Sequence[Mapping[str, Any]]) -> tuple[int | None, int | None, int | None]:
    """(valid P2 rows, those whose whole output is the object, the correct ones among those),
    where the rows were graded as JSON (else three Nones)."""
    kinds = [r.get("extraction") for r in rows]
    if not any(k in ("json", "invalid_json") for k in kinds):
        return None, None, None
    valid = [r for r in rows if r.get("extraction") == "json"]
    whole = [r for r in valid if whole_output_object(r.get("text") or "")]
    return len(valid), len(whole), sum(bool(r["correct"]) for r in whole)


def summarize(
    rows: Sequence[Mapping[str, Any]],
    *,
    method: str = "",
    base: Sequence[Mapping[str, Any]] | None = None,
    base_name: str = "cot",
    n_layers: int = 1,
) -> MethodSummary:
    """Summarise graded rows (JSON rows or `GradedRow.to_json()`); with `base`, the rows of
    another method, add the paired exact McNemar test on the problems both have."""
    n = len(rows)
    k = sum(bool(r["correct"]) for r in rows)
    lo, hi = wilson_interval(k, n)
    json_valid, json_whole, correct_whole = _json_counts(rows)
    paired: dict[str, Any] = {}
    if base is not None:
        pc = paired_counts(
            {r["id"]: r["correct"] for r in base}, {r["id"]: r["correct"] for r in rows}
        )
        paired = {
            "base": base_name,
            "only_base": pc["only_base"],
            "only_method": pc["only_other"],
            "mcnemar_p": mcnemar_exact(pc["only_base"], pc["only_other"]),
        }
    return MethodSummary(
        method=method or (rows[0]["method"] if rows else ""),
        n=n,
        correct=k,
        accuracy=k / n if n else math.nan,
        ci_low=lo,
        ci_high=hi,
        tokens_per_problem=_mean(rows, "generated_tokens"),
        seconds_per_problem=_mean(rows, "seconds"),
        intervention_rate=intervention_rate(rows, n_layers),
        no_answer=sum(r["predicted"] is None for r in rows),
        finish=dict(Counter(r["finish"] for r in rows)),
        json_valid=json_valid,
        json_whole=json_whole,
        correct_whole=correct_whole,
        **paired,
    )
