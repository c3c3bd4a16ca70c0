"""A benchmark problem: the record every dataset yields and every stage reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.core.grading import Family

__all__ = ["Problem"]


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One benchmark problem with its gold final answer."""

    id: str
    """Stable id: ``gsm8k/{split}/{line:04d}`` or ``math/`` + 12 hex of sha1(problem.strip())."""
    family: Family
    """Which answer grader applies."""
    question: str
    """The problem statement shown to the model."""
    answer: str
    """Gold final answer (GSM8K: text after ``#### `` without commas; MATH: LaTeX)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Extras: dataset, split, solution, and for MATH subject, level, unique_id (MATH-500)."""
