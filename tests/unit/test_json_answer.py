"""P2 (structured JSON) answers on planted outputs: grading, the stop rule, the JSON gate."""

from __future__ import annotations

import pytest

from workbench.core.grading import grade
from workbench.core.json_answer import (
    invalid_escape,
    json_gate_open,
    json_object_closed,
    json_object_span,
    p2_outcome,
    read_json_answer,
    whole_output_object,
)

VALID = '{"thought process": "3 apples and 4 more is 7.", "final answer": "7"}'
BAD = "invalid_json"


def _p2(answer: str, reasoning: str = '"x"') -> str:
    """A P2 object with `answer` (JSON text) as its final answer."""
    return '{"thought process": ' + reasoning + ', "final answer": ' + answer + "}"


@pytest.mark.parametrize(
    ("text", "gold", "family", "correct", "method", "predicted"),
    [
        (VALID, "7", "gsm8k", True, "json", "7"),
        (VALID, "8", "gsm8k", False, "json", "7"),
        # a number, not a string, is still the answer
        (_p2("1200"), "1200", "gsm8k", True, "json", "1200"),
        # units despite the prompt: the field's number is read, as the authors' extraction does
        (
            '{"thought process": "x", "final answer": "18 dollars"}',
            "18",
            "gsm8k",
            True,
            "json",
            "18",
        ),
        (
            '{"thought process": "x", "final answer": "$1,200"}',
            "1200",
            "gsm8k",
            True,
            "json",
            "1,200",
        ),
        # text after the object (and a fence before it) is ignored
        ("```json\n" + VALID + "\n```\nSo the answer is 9.", "7", "gsm8k", True, "json", "7"),
        # truncated at the cap: no closed object, no answer
        ('{"thought process": "3 apples and 4 more is', "7", "gsm8k", False, "invalid_json", None),
        # closed but not valid JSON (a raw newline in a string, an unquoted key)
        (
            '{"thought process": "a\nb", "final answer": "7"}',
            "7",
            "gsm8k",
            False,
            "invalid_json",
            None,
        ),
        ('{thought process: "a", "final answer": "7"}', "7", "gsm8k", False, "invalid_json", None),
        # valid JSON without P2's schema
        ('{"answer": "7"}', "7", "gsm8k", False, "invalid_json", None),
        ('{"thought process": "x"}', "7", "gsm8k", False, "invalid_json", None),
        # no JSON at all, even with a correct box: P2 requires the object
        ("The answer is \\boxed{7}.", "7", "gsm8k", False, "invalid_json", None),
        # prose with LaTeX braces before the object: the object is the first brace opening a key
        (
            "We need \\(i^{-25}\\) first.\n" + _p2('"7"'),
            "7",
            "math",
            True,
            "json",
            "7",
        ),
        ("To evaluate \\(i^5 + i^{-25}\\), note that", "i", "math", False, "invalid_json", None),
        # MATH: LaTeX inside the strings, escaped as JSON requires
        (
            '{"thought process": "so \\\\frac{1}{2}", "final answer": "\\\\frac{1}{2}"}',
            "\\frac{1}{2}",
            "math",
            True,
            "json",
            "\\frac{1}{2}",
        ),
        (
            '{"thought process": "x", "final answer": "$\\\\boxed{3}$"}',
            "3",
            "math",
            True,
            "json",
            "3",
        ),
    ],
)
def test_p2_grading_reads_the_final_answer_of_a_valid_object(
    text, gold, family, correct, method, predicted
):
    verdict = grade(text, gold, family, "json")
    assert (verdict.correct, verdict.method, verdict.predicted) == (correct, method, predicted)


def test_braces_inside_strings_do_not_close_the_object():
    text = '{"thought process": "use \\\\frac{a}{b} and \\"}\\"", "final answer": "2"} tail'
    span = json_object_span(text)
    assert span is not None and text[span[0] : span[1]].endswith('"2"}')
    assert read_json_answer(text).answer == "2"
    assert not json_object_closed('{"thought process": "use \\\\frac{a}{b}')
    assert not json_object_closed("no object yet")
    assert json_object_closed(VALID)


def test_latex_braces_in_prose_neither_stop_a_p2_sequence_nor_open_its_object():
    prose = "To evaluate \\(i^5 + i^{-25}\\) and \\(\\frac{2}{x}\\), we"
    assert not json_object_closed(prose)  # decoding goes on past the formulas
    assert json_object_span(prose + " answer " + VALID) == (
        len(prose) + 8,
        len(prose) + 8 + len(VALID),
    )
    assert json_object_closed('{ \n  "thought process": "x", "final answer": "7"}')


def test_the_stop_rule_ends_a_p2_sequence_when_its_object_closes():
    assert json_object_closed.tail_check('...more is 7.", "final answer": "7"}')
    assert not json_object_closed.tail_check("...more is 7.")
    prefixes = [VALID[:n] for n in range(len(VALID) + 1)]
    assert [json_object_closed(p) for p in prefixes].index(True) == len(VALID)


@pytest.mark.parametrize(
    ("text", "n", "open_"),
    [
        ('{"thought process": "Step', 5, True),  # the first passes are never gated
        ('{"thought process": "Step', 6, False),  # mid-string: + "}" does not parse
        ('{"thought process": "Step 1"', 12, True),  # a closed value: parses with "}"
        ('{"thought process": "Step 1", "final answer": 7', 20, True),
        ('{"thought process": "Step 1",', 12, False),
        ("Let me think about it first", 12, True),  # no "{" yet: open
        ('Sure! {"thought process"', 12, False),
        # their gate reads from any first brace, LaTeX in prose included (closed here)
        ("To evaluate \\(i^{-25}\\) we", 12, False),
    ],
)
def test_json_gate_is_open_exactly_where_the_partial_object_parses(text, n, open_):
    assert json_gate_open(text, n) is open_


@pytest.mark.parametrize(
    ("text", "whole"),
    [
        (VALID, True),
        ("\n  " + VALID + "\n", True),  # spaces and newlines at the ends are stripped
        ("```" + VALID + "```", True),  # bare backticks too, as the authors strip them
        ("```json\n" + VALID + "\n```", False),  # the "json" tag stays: not one object
        ("Here is the answer: " + VALID, False),  # text before the object
        (VALID + " I hope it helps.", False),  # text after it
        (VALID[:-1], False),  # truncated
        ("", False),
    ],
)
def test_whole_output_object_is_the_authors_strict_reading(text, whole):
    assert whole_output_object(text) is whole


def test_summary_counts_whole_output_json_and_its_correct_rows():
    from workbench.core.records import summarize

    def row(text, correct, i):
        verdict = grade(text, "7", "math", "json")
        assert verdict.correct is correct
        return {
            "id": f"p{i}",
            "method": "cot",
            "gold": "7",
            "predicted": verdict.predicted,
            "correct": verdict.correct,
            "extraction": verdict.method,
            "text": text,
            "generated_tokens": 10,
            "seconds": 1.0,
            "finish": "stop",
            "interventions": 0,
        }

    rows = [
        row(VALID, True, 0),  # valid, whole, right
        row("```json\n" + VALID, True, 1),  # valid (first object), not whole, right
        row(_p2('"8"'), False, 2),  # valid, whole, wrong
        row("no json at all", False, 3),  # invalid
    ]
    s = summarize(rows)
    assert (s.json_valid, s.json_whole, s.correct_whole, s.correct) == (3, 2, 1, 2)
    boxed = [dict(r, extraction="boxed") for r in rows]
    assert summarize(boxed).json_whole is None and summarize(boxed).correct_whole is None


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        (VALID, "valid"),
        ("Let me think. " + VALID + " and more prose", "valid"),
        ("The answer is \\boxed{7}.", "no object"),  # LaTeX braces open no object
        ("", "no object"),
        ('{"thought process": "3 apples and 4 more is', "not closed"),  # cut at the cap
        ('{"thought process": "\\(x^2\\)", "final answer": "4"}', "invalid escape"),
        ('{"thought process": "\\sqrt{2}", "final answer": "4"}', "invalid escape"),
        ('{"thought process": "a\nb", "final answer": "7"}', "other syntax"),  # raw newline
        ('{"thought process": "x" "final answer": "7"}', "other syntax"),  # no comma
        ('{"answer": "7"}', "missing keys"),
        ('{"thought process": "x"}', "missing keys"),
    ],
)
def test_p2_outcome_names_why_an_output_has_no_answer(text, outcome):
    assert p2_outcome(text) == outcome
    assert (outcome == "valid") == read_json_answer(text).valid


def test_single_backslash_frac_and_times_parse_as_json_escapes():
    # \f (form feed) and \t (tab) are JSON escapes: LaTeX written with one backslash parses
    # there, mangled, and only \s, \(, \[ ... are invalid escapes
    text = '{"thought process": "\\frac{1}{2} \\times 3", "final answer": "1.5"}'
    assert p2_outcome(text) == "valid"
    assert read_json_answer(text).answer == "1.5"


@pytest.mark.parametrize(
    ("text", "escape"),
    [
        ('{"thought process": "\\(x^2\\)", "final answer": "4"}', "\\("),
        ('Prose \\(x\\) first. {"thought process": "so \\sqrt{2}", "final answer": "4"}', "\\s"),
        ('{"thought process": "\\underline{3}", "final answer": "3"}', "\\u"),  # not \\uXXXX
        (VALID, None),
        ('{"thought process": "a\nb", "final answer": "7"}', None),  # other syntax
        ("no object", None),
    ],
)
def test_invalid_escape_names_the_escape_where_the_object_stops_parsing(text, escape):
    assert invalid_escape(text) == escape
    assert (escape is not None) == (p2_outcome(text) == "invalid escape")
