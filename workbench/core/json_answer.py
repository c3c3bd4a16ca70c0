"""Structured (JSON) answers: the ALS paper's prompt format P2 (LatentSeek's), read and gated.

P2 asks the model for a JSON object with the keys "thought process" and "final answer". Three
things follow from it, all here:

* **where the object ends** (`json_object_span`, the stop rule `json_object_closed`): from the
  first ``{`` that opens a key (``{`` then a quote, spaces between allowed: a brace of LaTeX in
  prose is not one) to the brace that closes it, braces inside JSON strings (LaTeX:
  ``\\frac{1}{2}``) and escaped quotes skipped;
* **the answer** (`read_json_answer`): that object must parse as JSON (Python's `json`, strict,
  as the authors' `json.loads`) into an object holding both keys; its "final answer" is the
  answer, and anything after the object is ignored. An output that is not valid JSON in that
  schema has no answer. (The authors' extraction, `src/extract_judge_answer/utils.py`, parses
  the whole output stripped of backticks, spaces and newlines; when that fails it falls back to
  a regular expression after "final answer" that works on GSM8K, while MATH-500's needs ``}<``
  or ``<|`` in the text, and they decode with ``skip_special_tokens=True``. The issue that
  asked for P2 here counts an answer only when the JSON is valid, and the rate of valid outputs
  is reported beside accuracy, with `whole_output_object`'s count: the authors' strict
  reading.)
* **the JSON gate** of ALS-Gated (`json_gate_open`): the authors' `gated_generation.py`
  suppresses the nudge (alpha 0) once more than five tokens are generated, whenever the text
  from the first ``{``, closed with one ``}``, does not parse as JSON; before the first ``{``
  the gate is open. As in their code, that ``{`` is any brace, LaTeX in prose included.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "ANSWER_KEY",
    "GATE_AFTER_TOKENS",
    "P2_OUTCOMES",
    "REASONING_KEY",
    "JsonAnswer",
    "P2Outcome",
    "P2Parse",
    "invalid_escape",
    "json_gate_open",
    "json_object_closed",
    "json_object_span",
    "p2_outcome",
    "parse_p2",
    "read_json_answer",
    "whole_output_object",
]

ANSWER_KEY = "final answer"
REASONING_KEY = "thought process"
GATE_AFTER_TOKENS = 5
"""The JSON gate acts once more than this many tokens are generated (theirs: ``token_idx > 5``)."""


_OBJECT_START = re.compile(r'\{\s*"')
"""Where a P2 object can begin: a ``{`` whose next non-space character opens a key. A brace of
LaTeX in prose (``i^{-25}``, ``\\frac{2}{x}``) is not one, so an answer written as text does not
stop at its first formula and is not read from it."""


def json_object_span(text: str) -> tuple[int, int] | None:
    """(start, end) of the first ``{ ... }`` object of `text` (end exclusive): from the first
    ``{`` that opens a key (`_OBJECT_START`) to the brace that closes it, or None while it is not
    closed (or there is none). Braces inside JSON strings do not count."""
    found = _OBJECT_START.search(text)
    if found is None:
        return None
    start = found.start()
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        c = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return start, i + 1
    return None


def json_object_closed(text: str) -> bool:
    """Stop rule of P2: the first JSON object of the generated text is closed."""
    return json_object_span(text) is not None


def _has_closing_brace(tail: str) -> bool:
    return "}" in tail


json_object_closed.tail_check = _has_closing_brace  # type: ignore[attr-defined]
"""What `decode` checks on the last tokens before reading the whole text: an object closes only
on a token holding ``}``."""


@dataclass(frozen=True, kw_only=True)
class JsonAnswer:
    """What a P2 output says."""

    valid: bool
    """Its first object parses as JSON and holds both keys."""
    answer: str | None
    """The "final answer" value as text (None when not valid)."""


P2Outcome = Literal[
    "valid", "missing keys", "invalid escape", "other syntax", "not closed", "no object"
]
"""Why a P2 output counts ('valid') or does not (`p2_outcome`)."""
P2_OUTCOMES: tuple[P2Outcome, ...] = get_args(P2Outcome)


@dataclass(frozen=True)
class P2Parse:
    """One parse of a P2 output: what `read_json_answer`, `p2_outcome` and `invalid_escape` read."""

    outcome: P2Outcome
    """Why it counts or does not (`p2_outcome`)."""
    obj: dict | None = None
    """Its first object, when the outcome is 'valid'."""
    escape: str | None = None
    """For 'invalid escape', the backslash and the character where the parse failed."""


def parse_p2(text: str) -> P2Parse:
    """Parse `text`'s first JSON object once (see `P2Parse`)."""
    span = json_object_span(text)
    if span is None:
        return P2Parse("no object" if _OBJECT_START.search(text) is None else "not closed")
    try:
        obj = json.loads(text[span[0] : span[1]])
    except json.JSONDecodeError as exc:
        if exc.msg.startswith(("Invalid \\escape", "Invalid \\uXXXX escape")):
            # json points at the backslash, or for \uXXXX at the u after it
            start = exc.pos if exc.doc[exc.pos : exc.pos + 1] == "\\" else exc.pos - 1
            return P2Parse("invalid escape", escape=exc.doc[start : start + 2])
        return P2Parse("other syntax")
    if not isinstance(obj, dict) or ANSWER_KEY not in obj or REASONING_KEY not in obj:
        return P2Parse("missing keys")
    return P2Parse("valid", obj=obj)


def read_json_answer(text: str) -> JsonAnswer:
    """The "final answer" of the first JSON object in `text` (see the module docstring)."""
    obj = parse_p2(text).obj
    if obj is None:
        return JsonAnswer(valid=False, answer=None)
    value = obj[ANSWER_KEY]
    answer = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return JsonAnswer(valid=True, answer=answer.strip())


def p2_outcome(text: str) -> P2Outcome:
    """Where a P2 output stands with `read_json_answer`: 'valid' (it has an answer), or why not:
    'no object' (no ``{`` opens a key), 'not closed' (one opens and never closes: truncated at
    the cap, or the model stopped), 'invalid escape' (it closes but a string holds a backslash
    JSON does not allow: LaTeX's ``\\sqrt`` or ``\\(`` written with one backslash; ``\\frac``
    and ``\\times`` parse, as a form feed or a tab and the letters after it), 'other syntax' (any
    other parse error), 'missing keys' (it parses without both keys)."""
    return parse_p2(text).outcome


def invalid_escape(text: str) -> str | None:
    """For an 'invalid escape' output (`p2_outcome`), the escape where the parse failed: the
    backslash and the character after it (LaTeX's ``\\(`` or ``\\s`` of ``\\sqrt``); None for
    any other outcome."""
    return parse_p2(text).escape


def whole_output_object(text: str) -> bool:
    """Whether `text` is nothing but its first JSON object, once stripped of backticks, spaces
    and newlines at both ends: what the authors' MATH-500 P2 reading asks (their
    `extract_judge_answer/utils.py` parses ``text.strip('` \\n')`` whole; its fallback needs
    ``}<`` or ``<|`` in the text, which their decoding, ``skip_special_tokens=True``, does not
    write as tokens: `steered_generation.py`, `gated_generation.py`, `baselines.py`).
    A fenced object (a leading "json" tag stays) or one with text before it is not."""
    stripped = text.strip("` \n")
    return json_object_span(stripped) == (0, len(stripped)) if stripped else False


def json_gate_open(text: str, n_generated: int) -> bool:
    """Whether ALS-Gated lets the nudge act after `n_generated` tokens whose text is `text`: open
    for the first `GATE_AFTER_TOKENS` + 1 passes, and while no ``{`` was written; afterwards only
    where the text from the first ``{``, closed with ``}``, parses as JSON."""
    if n_generated <= GATE_AFTER_TOKENS:
        return True
    start = text.find("{")
    if start < 0:
        return True
    try:
        json.loads(text[start:] + "}")
    except json.JSONDecodeError:
        return False
    return True
