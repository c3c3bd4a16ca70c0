r"""The one place that decides whether a model's answer to a GSM8K or MATH problem is correct.

Extraction (:func:`extract_answer`) reads the model's FIRST complete final answer. The first rule
that finds something wins:

1. ``boxed``: the content of the FIRST closed, non-empty ``\boxed{...}`` / ``\fbox{...}``. Braces
   are matched by counting, so ``\boxed{\frac{\sqrt{3}}{2}}`` comes out whole; a box that a
   cut-off generation left unclosed (or an empty one) is skipped; a box inside a box is unwrapped.
2. ``hashes``: the rest of the line after the first ``####`` that has something after it.
3. ``answer_is``: what follows the first "answer is" / "answer:" (case-insensitive; markdown
   bold and ``$``, ``\(``, ``\[`` delimiters removed), up to the end of that sentence, that holds
   an answer (for GSM8K: one that starts with a number), so that "to find the answer: first ..."
   is passed over.
4. ``last_number``: the last number in the text. Always tried for GSM8K; for MATH only when the
   text holds no LaTeX at all (no backslash, no ``$``), because the last number of a LaTeX
   derivation is nearly always an intermediate result. A MATH text cut off mid-derivation thus
   grades as ``none``, while a cut-off GSM8K text is graded on its last number.
5. ``none``: nothing found; the verdict is incorrect.

Why the first answer and not the last: a model that has given its answer often runs on, into an
invented next question with an answer of its own ("The answer is 18. Question: ... The answer is
7."), or boxes a second, different number while rambling; what it answered to the question asked
is what it said first. The decoder agrees: `workbench.core.prompts.answer_complete` stops a sequence
at its first closed box or finished ``####`` line, so a text decoded with the stop and the same text
decoded past it are graded alike. The price: a model that boxes an intermediate result and later
boxes a corrected one is graded on the first (it was also stopped there). Only ``last_number``,
which has no answer marker to go by, reads the end of the text.

Equivalence (:func:`answers_equivalent`):

* GSM8K: both sides go through :func:`normalize_number` and are compared numerically (relative
  tolerance 1e-6). A gold given as a whole GSM8K solution is cut to the text after ``####``.
* MATH: first a cheap comparison of canonical strings (no spaces, ``\left``/``\right``, ``\!``,
  ``\,``, ``^\circ``, ``\%``, ``\$``, ``\text{...}`` wrappers, thousands commas; ``\dfrac`` ->
  ``\frac``; ``(C)`` -> ``C``), then ``math_verify.parse``/``verify`` on ``\boxed{...}``-wrapped
  strings (gold first: ``verify`` is not symmetric). Its SIGALRM timeouts work only in the main
  thread, so in other threads they are switched off (a pathological expression could then take
  long). Errors from math-verify are logged at debug level and count as "not equivalent".

Known limitations (math-verify's judgement, kept as is): a decimal approximation of a symbolic
gold is incorrect (``3.14`` vs ``\pi``); a percentage gold matches both its number and its
fraction (``10\%`` vs ``10`` or ``0.1``); a base subscript may be dropped (``4343`` matches
``4343_6``); an inequality does not match an interval gold (``x>2`` vs ``(2,\infty)``). For GSM8K
a predicted answer holding several numbers and no ``=`` (``18 + 2``) is no number: incorrect.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

from math_verify import parse, verify
from math_verify.errors import TimeoutException

from workbench.core.json_answer import read_json_answer

__all__ = [
    "AnswerFormat",
    "Family",
    "Verdict",
    "answers_equivalent",
    "boxed_answers",
    "extract_answer",
    "extract_final_answer",
    "first_boxed",
    "grade",
    "normalize_number",
]

logger = logging.getLogger(__name__)

Family = Literal["gsm8k", "math"]
AnswerFormat = Literal["boxed", "json"]
"""'boxed': free-form text graded by the rules above; 'json': the P2 prompt's JSON object."""

_MATH_VERIFY_TIMEOUT_S = 5
_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASHES_RE = re.compile(r"####[ \t]*([^\n]*)")
_ANSWER_IS_RE = re.compile(r"\banswer\s*(?:is\b|:)[\s:*]*", re.IGNORECASE)
_DELIMITED_RE = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_GSM_ANSWER_START_RE = re.compile(r"(?:\\?\$|\\\(|[-−.])?\s*(?:-?\d|\\[dt]?frac)")  # 18, \$18, -3
_SENTENCE_END_RE = re.compile(r"\.(?:\s|$)")
_NUMBER_RE = re.compile(r"(?<![\w.])-?(?:\d+(?:\.\d+)?|\.\d+)(?![\w])")
_GSM_NUMBER_RE = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?|-?\.\d+")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TEXT_RE = re.compile(r"\\(?:text|textbf|textrm|mbox|mathrm)\s*\{([^{}]*)\}")
_FRAC_RE = re.compile(r"(-?)\\[dt]?frac\s*(?:\{\s*(\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))")
_SLASH_RE = re.compile(r"(-?)(\d+)\s*/\s*(\d+)")
_LEADING_RE = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_CONTINUATION_RE = re.compile(r"\s*(?:[-+*/^×÷\\\d]|,\s*-?\d)|[A-Za-z_{(]")
_LATEX_NOISE = (r"\left", r"\right", r"\!", r"\,", r"\;", r"\:", r"\ ", r"\%", "%", r"\$", "$")
_GSM_NOISE = (r"\!", r"\,", r"\;", r"\ ", r"\%", "%", r"\$", "$", "{,}", "**")


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The grade of one model output."""

    predicted: str | None
    """The extracted final answer, or None when none was found."""
    correct: bool
    """Whether it is equivalent to the gold answer."""
    method: str
    """How the answer was extracted: 'boxed', 'hashes', 'answer_is', 'last_number', or 'none'."""


def boxed_answers(text: str) -> list[str]:
    """Contents of the closed, non-empty ``\\boxed{}``/``\\fbox{}`` of `text`, in order, braces
    counted (a box inside a box is read as the outer one's content)."""
    found, end = [], 0
    for match in _BOX_RE.finditer(text):
        if match.start() < end:  # inside a box already read
            continue
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                if content := text[start:i].strip():
                    found.append(content)
                end = i
                break
    return found


def first_boxed(text: str) -> str | None:
    """The first closed, non-empty box of `text` (a box wrapped in a box unwrapped), or None."""
    boxes = boxed_answers(text)
    if not boxes:
        return None
    return first_boxed(boxes[0]) if _BOX_RE.match(boxes[0]) else boxes[0]


def _clean(answer: str) -> str:
    """Strip markdown bold, math delimiters and trailing punctuation from an extracted answer."""
    answer = answer.strip().strip("*").strip()
    for opener, closer in (("$", "$"), (r"\(", r"\)"), (r"\[", r"\]")):
        if answer.startswith(opener) and answer.endswith(closer) and len(answer) > 2 * len(opener):
            answer = answer[len(opener) : -len(closer)].strip()
    return answer.rstrip(".,;: ").strip()


def _after_answer_phrase(text: str, family: Family) -> str | None:
    """The answer after the first "answer is" / "answer:" that is followed by one, or None."""
    for match in _ANSWER_IS_RE.finditer(text):
        rest = text[match.end() :].split("\n", 1)[0]
        if _BOX_RE.search(rest):  # only an unclosed or empty box can be left here: cut off
            continue
        if (delimited := _DELIMITED_RE.match(rest)) is not None:
            rest = next(group for group in delimited.groups() if group is not None)
        else:
            rest = _SENTENCE_END_RE.split(rest, maxsplit=1)[0]
        answer = _clean(rest)
        if answer and (family != "gsm8k" or _GSM_ANSWER_START_RE.match(answer)):
            return answer
    return None


def extract_answer(text: str, family: Family) -> tuple[str | None, str]:
    """Return ``(answer, method)`` for a model output; ``(None, 'none')`` when none is found."""
    if (boxed := first_boxed(text)) is not None:
        return _clean(boxed) or boxed, "boxed"
    hashes = [h for m in _HASHES_RE.finditer(text) if (h := _clean(m.group(1)))]
    if hashes:
        return hashes[0], "hashes"
    if (phrase := _after_answer_phrase(text, family)) is not None:
        return phrase, "answer_is"
    if family == "gsm8k" or ("\\" not in text and "$" not in text):
        numbers = _GSM_NUMBER_RE.findall(text)
        if numbers:
            return numbers[-1], "last_number"
    return None, "none"


def _format_decimal(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def normalize_number(s: str) -> str | None:
    r"""Canonical decimal string of a numeric answer, or None when it is not one number.

    ``'1,000'`` -> ``'1000'``, ``'\$18'`` -> ``'18'``, ``'18.00'``/``'18.'`` -> ``'18'``,
    ``'-3.50'`` -> ``'-3.5'``, ``'50%'`` -> ``'50'``, ``'18 dollars'``/``'18\text{ dollars}'``
    -> ``'18'``, ``'x = 18'`` -> ``'18'`` (the part after the last ``=``). Integer fractions are
    evaluated: ``'3/4'`` and ``'\frac{3}{4}'`` -> ``'0.75'``. ``'18 + 2'`` -> None.
    """
    s = _TEXT_RE.sub(" ", s).replace("−", "-")
    for noise in _GSM_NOISE:
        s = s.replace(noise, "")
    s = _THOUSANDS_RE.sub("", s.rsplit("=", 1)[-1]).strip()
    if (frac := _FRAC_RE.fullmatch(s) or _SLASH_RE.fullmatch(s)) is not None:
        sign, *parts = frac.groups()
        num, den = (Decimal(p) for p in parts if p is not None)
        return None if den == 0 else _format_decimal((-num if sign else num) / den)
    leading = _LEADING_RE.match(s)
    if leading is not None and not _CONTINUATION_RE.match(s, leading.end()):
        numbers = [leading.group()]  # a number, maybe followed by words: "18 dollars"
    else:
        numbers = _NUMBER_RE.findall(s)  # otherwise the string's only number, if any
    if len(numbers) != 1:
        return None
    try:
        return _format_decimal(Decimal(numbers[0]))
    except InvalidOperation:
        return None


def _canonical_latex(s: str) -> str:
    """A whitespace- and decoration-free form of a LaTeX answer, for cheap string equality."""
    while (unwrapped := _TEXT_RE.sub(r"\1", s)) != s:
        s = unwrapped
    for noise in _LATEX_NOISE:
        s = s.replace(noise, "")
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|°", "", s).replace(r"\dfrac", r"\frac")
    s = re.sub(r"\s+", "", s.replace(r"\tfrac", r"\frac")).rstrip(".")
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    if choice := re.fullmatch(r"\(([A-Ea-e])\)", s):
        s = choice.group(1)
    return s


def _math_verify_equivalent(predicted: str, gold: str) -> bool:
    in_main = threading.current_thread() is threading.main_thread()
    timeout = _MATH_VERIFY_TIMEOUT_S if in_main else None
    try:
        gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=timeout)
        pred_parsed = parse(f"\\boxed{{{predicted}}}", parsing_timeout=timeout)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))
    except (Exception, TimeoutException):
        logger.debug("math-verify failed on %r vs %r", predicted, gold, exc_info=True)
        return False


def answers_equivalent(predicted: str, gold: str, family: Family) -> bool:
    """Whether an extracted answer is equivalent to the gold answer (rules in the module doc)."""
    if family == "gsm8k":
        pred_num = normalize_number(predicted)
        gold_num = normalize_number(gold.rsplit("####", 1)[-1])
        if pred_num is None or gold_num is None:
            return False
        return math.isclose(float(pred_num), float(gold_num), rel_tol=1e-6, abs_tol=1e-9)
    if family == "math":
        if _canonical_latex(predicted) == _canonical_latex(gold):
            return True
        return _math_verify_equivalent(predicted, gold)
    raise ValueError(f"unknown answer family {family!r}: expected 'gsm8k' or 'math'")


def grade(text: str, gold: str, family: Family, answer_format: AnswerFormat = "boxed") -> Verdict:
    """Extract the final answer from a model output and compare it with the gold answer.

    `answer_format` 'json' (the P2 prompt): the answer is the "final answer" of the output's
    first JSON object, which must be valid JSON holding both of P2's keys
    (`workbench.core.json_answer`); method 'json', or 'invalid_json' (incorrect) when it is not.
    The field itself is read as an answer is (GSM8K: its number, so "18 dollars" is 18; MATH: its
    box if it has one, else the field without ``$`` delimiters)."""
    predicted, method = extract_final_answer(text, family, answer_format)
    correct = predicted is not None and answers_equivalent(predicted, gold, family)
    return Verdict(predicted=predicted, correct=correct, method=method)


def extract_final_answer(
    text: str, family: Family, answer_format: AnswerFormat = "boxed"
) -> tuple[str | None, str]:
    """``(answer, method)`` of an output in either answer format (see `grade`)."""
    if answer_format != "json":
        return extract_answer(text, family)
    parsed = read_json_answer(text)
    if not parsed.valid or not parsed.answer:
        return None, "invalid_json"
    field = parsed.answer
    if family == "gsm8k":
        predicted, _ = extract_answer(field, family)
    else:
        predicted = _clean(first_boxed(field) or field)
    return predicted or None, "json"
