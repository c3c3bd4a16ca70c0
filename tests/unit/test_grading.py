r"""Tests for workbench.core.grading: a corpus of realistic model outputs with expected verdicts.

Gold answers are copied from the real data files: GSM8K from /work/shared/data/gsm8k/test.jsonl
(the text after ``#### ``; the comment gives the 0-based line) and MATH-500 from
/work/shared/data/math500/test.jsonl (field ``answer``; the comment gives the ``unique_id``).
The model outputs around them are written in the style of Qwen2.5-0.5B-Instruct.
"""

from __future__ import annotations

import threading

import pytest

from workbench.core.grading import (
    Family,
    Verdict,
    answers_equivalent,
    extract_answer,
    grade,
    normalize_number,
)


def case(
    case_id: str,
    family: Family,
    text: str,
    gold: str,
    predicted: str | None,
    correct: bool,
    method: str,
) -> pytest.ParameterSet:
    """One corpus entry: a model output, its gold answer and the expected verdict."""
    verdict = Verdict(predicted=predicted, correct=correct, method=method)
    return pytest.param(family, text, gold, verdict, id=case_id)


# GSM8K line 0 (Janet's ducks, gold 18)
JANET = (
    "Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4, so she has "
    "16 - 3 - 4 = 9 eggs left. She sells each for $2, so she makes 9 * 2 = 18 dollars.\n\n"
)

# fmt: off
GSM8K_CASES = [
    case("janet-boxed", "gsm8k", JANET + r"The answer is \(\boxed{18}\).", "18", "18", True,
         "boxed"),
    case("janet-boxed-dollar", "gsm8k", JANET + r"So she makes \(\boxed{\$18}\) every day.",
         "18", r"\$18", True, "boxed"),
    case("janet-boxed-text-unit", "gsm8k", JANET + r"**Final answer:** \boxed{18 \text{ dollars}}",
         "18", r"18 \text{ dollars}", True, "boxed"),
    case("janet-hashes", "gsm8k", JANET + "#### 18", "18", "18", True, "hashes"),
    case("janet-answer-is-dollar", "gsm8k", JANET + "The answer is $18.", "18", "$18", True,
         "answer_is"),
    case("janet-answer-is-words", "gsm8k", JANET + "The answer is: 18 dollars per day.", "18",
         "18 dollars per day", True, "answer_is"),
    case("janet-last-number", "gsm8k", JANET + "She makes 18 dollars every day.", "18", "18",
         True, "last_number"),
    case("janet-wrong-boxed", "gsm8k",
         "She has 16 - 4 = 12 eggs left, and 12 + 4 = 16.\n\nThe answer is \\(\\boxed{16}\\).",
         "18", "16", False, "boxed"),
    case("janet-decimal-zeros", "gsm8k", JANET + r"Final answer: \boxed{18.00}", "18", "18.00",
         True, "boxed"),
    case("janet-trailing-dot", "gsm8k", JANET + "#### 18.", "18", "18", True, "hashes"),
    # line 1 (robe, gold 3)
    case("robe-boxed-text", "gsm8k",
         "Blue fiber: 2 bolts. White fiber: half of that, 2 / 2 = 1 bolt. Total: 2 + 1 = 3 bolts."
         "\n\nThe answer is \\(\\boxed{3 \\text{ bolts}}\\).", "3", r"3 \text{ bolts}", True,
         "boxed"),
    # line 2 (house flipping, gold 70000)
    case("house-thousands-comma", "gsm8k",
         "Cost: 80,000 + 50,000 = 130,000. New value: 80,000 * 2.5 = 200,000. Profit: "
         "200,000 - 130,000 = 70,000.\n\nThe answer is \\(\\boxed{70,000}\\).", "70000", "70,000",
         True, "boxed"),
    case("house-latex-comma", "gsm8k", r"Josh made a profit of \(\boxed{70{,}000}\) dollars.",
         "70000", "70{,}000", True, "boxed"),
    case("house-wrong-new-value", "gsm8k",
         "The house is now worth 80,000 * 2.5 = $200,000.\n\n**Final answer:** \\boxed{200000}",
         "70000", "200000", False, "boxed"),
    # line 146 (legos, gold "2,125" with a thousands comma in the gold)
    case("legos-gold-comma", "gsm8k",
         "500 + 1500 + 125 = 2125 pieces.\n\nThe answer is \\(\\boxed{2125}\\).", "2,125", "2125",
         True, "boxed"),
    # line 611 (research cost, gold "1,450,000")
    case("research-dollar-commas", "gsm8k",
         "Total: 1,350,000 + 100,000 = 1,450,000.\n\nThe answer is \\(\\boxed{\\$1,450,000}\\).",
         "1,450,000", r"\$1,450,000", True, "boxed"),
    case("research-wrong-partial", "gsm8k",
         "The expensive months cost 45 * 30,000 = $1,350,000.\n\n#### 1,350,000", "1,450,000",
         "1,350,000", False, "hashes"),
    # line 489 (average temperature, gold -10)
    case("temperature-negative", "gsm8k",
         "(-48 + 21 + (-3)) / 3 = -30 / 3 = -10.\n\nThe answer is \\(\\boxed{-10}\\).", "-10",
         "-10", True, "boxed"),
    case("temperature-sign-lost", "gsm8k",
         "The sum is 48 + 21 + 3 = 72... so the average is 30 / 3 = 10.\n\n\\boxed{10}", "-10",
         "10", False, "boxed"),
    # line 1113 (morning temperature, gold -3)
    case("celsius-answer-is-words", "gsm8k",
         "2 - 8 = -6, then -6 + 3 = -3.\n\nThe answer is -3 degrees Celsius.", "-3",
         "-3 degrees Celsius", True, "answer_is"),
    # line 44 (candles, gold 20)
    case("candles-dollar-cents", "gsm8k",
         "Supplies cost 2 * $10.00 = $20.00 and sales are 20 * $2.00 = $40.00.\n\n"
         "The net profit is \\(\\boxed{\\$20.00}\\).", "20", r"\$20.00", True, "boxed"),
    # line 140 (semi-automatic cars, gold 20) and line 1179 (teeth, gold 50): percentages
    case("cars-boxed-percent", "gsm8k",
         "20 - 12 - 4 = 4 semi-automatic cars, and 4 / 20 * 100 = 20.\n\nThe answer is "
         "\\(\\boxed{20\\%}\\).", "20", r"20\%", True, "boxed"),
    case("teeth-answer-percent", "gsm8k",
         "He fixes 4 + 11 = 15 teeth out of 30, which is 15 / 30 = 0.5.\n\nAnswer: 50%", "50",
         "50%", True, "answer_is"),
    # line 20 (orange drink, gold 15)
    case("water-liters", "gsm8k",
         "Pineapple: 15 * 3/5 = 9 liters. Orange: 9 * 2/3 = 6 liters.\n\nThe answer is 15 liters.",
         "15", "15 liters", True, "answer_is"),
    # line 30 (Allen's age, gold 109)
    case("allen-intermediate", "gsm8k",
         "Allen's age now is 11/18 * 162 = 99.\n\nThe answer is \\(\\boxed{99}\\).", "109", "99",
         False, "boxed"),
    # line 5 (glasses, gold 64): the first box wins, even an intermediate one (the decoder stops
    # at the first closed box, so this text would have ended there)
    case("glasses-first-box-wins", "gsm8k",
         "The cheaper glasses cost \\(\\boxed{24}\\) in total. Adding the full-price ones, "
         "24 + 40 = 64.\n\nThe answer is \\(\\boxed{64}\\).", "64", "24", False, "boxed"),
    # Generations that give their answer and run on into an invented next question: graded on
    # the first final answer (line 0, gold 18).
    case("janet-runs-on-into-invented-question", "gsm8k",
         JANET + "The answer is \\(\\boxed{18}\\).\n\nQuestion: A farmer has 12 cows and "
         "buys 5 more. How many cows does he have?\nAnswer: 12 + 5 = 17. The answer is "
         "\\(\\boxed{17}\\).", "18", "18", True, "boxed"),
    case("janet-hashes-then-invented-question", "gsm8k",
         JANET + "#### 18\n\nQuestion: Tom has 3 apples and eats 1. How many are left?\n"
         "Tom has 3 - 1 = 2 apples left.\n#### 2", "18", "18", True, "hashes"),
    case("janet-answer-is-then-invented-turn", "gsm8k",
         JANET + "The answer is 18.\n\nHuman: What is 5 + 5?\nAssistant: 5 + 5 = 10. The answer "
         "is 10.", "18", "18", True, "answer_is"),
    case("janet-wrong-then-invented-right", "gsm8k",
         "She has 16 - 3 = 13 eggs, and 13 * 2 = 26.\n\nThe answer is \\(\\boxed{26}\\)."
         "\n\nQuestion: Janet sells 9 eggs at $2 each. How much does she make?\n9 * 2 = 18. "
         "The answer is \\(\\boxed{18}\\).", "18", "26", False, "boxed"),
    case("janet-answer-phrase-without-answer-first", "gsm8k",
         "To find the answer: first, " + JANET.lower() + "The answer is 18 dollars.", "18",
         "18 dollars", True, "answer_is"),
    # line 3 (sprints, gold 540)
    case("sprints-fraction-in-box", "gsm8k",
         r"He runs \(\boxed{\frac{1080}{2}}\) meters a week.", "540", r"\frac{1080}{2}", True,
         "boxed"),
    # line 10 (downloads, gold 366): cut off mid-sentence, graded on its last number
    case("downloads-cut-off", "gsm8k",
         "First month: 60. Second month: 3 * 60 = 180. Third month: 180 - 54 = 126. In total, the",
         "366", "126", False, "last_number"),
    # line 4 (chicken feed, gold 20): cut off before any number
    case("feed-cut-off-no-number", "gsm8k",
         "To solve this problem, we need to find out how much feed the flock needs per day and",
         "20", None, False, "none"),
]

MATH_CASES = [
    # test/algebra/2584.json
    case("frac-dfrac", "math",
         "f(-2) = 2, f(-1) = 5/3, f(0) = 1, so the sum is\n\\[\n2 + \\frac{5}{3} + 1 = "
         "\\frac{14}{3}\n\\]\nThe answer is \\(\\boxed{\\dfrac{14}{3}}\\).", r"\frac{14}{3}",
         r"\dfrac{14}{3}", True, "boxed"),
    case("frac-wrong", "math", r"**Final answer:** \boxed{\frac{14}{5}}", r"\frac{14}{3}",
         r"\frac{14}{5}", False, "boxed"),
    case("frac-answer-is-dollars", "math", r"The final answer is $\frac{14}{3}$.",
         r"\frac{14}{3}", r"\frac{14}{3}", True, "answer_is"),
    # ... and running on into an invented next problem with its own boxed answer
    case("frac-runs-on-into-invented-problem", "math",
         "So the sum is \\(\\boxed{\\frac{14}{3}}\\).\n\nProblem: Compute "
         "\\(\\dbinom{8}{4}\\).\nSolution: \\(\\dbinom{8}{4} = \\frac{8!}{4!4!} = "
         "\\boxed{70}\\).", r"\frac{14}{3}", r"\frac{14}{3}", True, "boxed"),
    case("frac-answer-is-then-invented-problem", "math",
         "The final answer is $\\frac{14}{3}$.\n\nProblem: What is $2+2$?\nThe final answer is "
         "$4$.", r"\frac{14}{3}", r"\frac{14}{3}", True, "answer_is"),
    # test/precalculus/807.json
    case("polar-pair-no-left-right", "math",
         "r = \\sqrt{0^2 + 3^2} = 3 and \\theta = \\frac{\\pi}{2}.\n\nThe answer is "
         "\\(\\boxed{(3, \\frac{\\pi}{2})}\\).", r"\left( 3, \frac{\pi}{2} \right)",
         r"(3, \frac{\pi}{2})", True, "boxed"),
    case("polar-pair-slash", "math", r"\boxed{(3, \pi/2)}", r"\left( 3, \frac{\pi}{2} \right)",
         r"(3, \pi/2)", True, "boxed"),
    case("polar-pair-wrong-angle", "math", r"\boxed{(3, \pi)}",
         r"\left( 3, \frac{\pi}{2} \right)", r"(3, \pi)", False, "boxed"),
    # test/precalculus/927.json
    case("degrees-plain", "math", r"The angle between the lines is \(\boxed{90}\).",
         r"90^\circ", "90", True, "boxed"),
    case("degrees-braced", "math", r"\boxed{90^{\circ}}", r"90^\circ", r"90^{\circ}", True,
         "boxed"),
    # test/geometry/183.json
    case("degrees-wrong", "math", r"So \(\alpha = 180^\circ - 145^\circ = \boxed{35^\circ}\).",
         r"145^\circ", r"35^\circ", False, "boxed"),
    # test/algebra/2036.json
    case("sqrt-equal-form", "math",
         "d = \\sqrt{(-4-2)^2 + (3+6)^2} = \\sqrt{36 + 81} = \\sqrt{117}.\n\nThe answer is "
         "\\(\\boxed{\\sqrt{117}}\\).", r"3\sqrt{13}", r"\sqrt{117}", True, "boxed"),
    case("sqrt-wrong", "math", r"\boxed{3\sqrt{12}}", r"3\sqrt{13}", r"3\sqrt{12}", False,
         "boxed"),
    # test/prealgebra/1302.json
    case("sqrt-unbraced-gold", "math", r"\(\sqrt{242} = \sqrt{121 \cdot 2} = \boxed{11\sqrt{2}}\)",
         r"11\sqrt2", r"11\sqrt{2}", True, "boxed"),
    # test/algebra/1519.json
    case("sqrt-rationalized", "math", r"\[\frac{3}{\sqrt{27}} = \boxed{\frac{1}{\sqrt{3}}}\]",
         r"\frac{\sqrt{3}}{3}", r"\frac{1}{\sqrt{3}}", True, "boxed"),
    # test/algebra/2253.json
    case("nested-braces", "math",
         "\\(6 \\& 3 = \\frac{\\sqrt{18+6}}{\\sqrt{18-6}}\\) ... \n\n**Final answer:** "
         "\\boxed{\\frac{3\\sqrt{3}}{4}}", r"\frac{3\sqrt{3}}{4}", r"\frac{3\sqrt{3}}{4}", True,
         "boxed"),
    # test/precalculus/1199.json
    case("pi-exact", "math", r"The period is \(2\pi\), so \(b = 1\) and \(\boxed{\pi}\).",
         r"\pi", r"\pi", True, "boxed"),
    case("pi-decimal-not-exact", "math", r"\boxed{3.14}", r"\pi", "3.14", False, "boxed"),
    # test/precalculus/1056.json
    case("pi-multiple", "math", r"The volume is \(\boxed{288\pi}\).", r"288 \pi", r"288\pi",
         True, "boxed"),
    # test/precalculus/1105.json
    case("neg-pi-over-6", "math", r"\(\arcsin(-1/2) = \boxed{-\frac{\pi}{6}}\)",
         r"-\frac{\pi}{6}", r"-\frac{\pi}{6}", True, "boxed"),
    case("neg-pi-sign-lost", "math", r"\boxed{\frac{\pi}{6}}", r"-\frac{\pi}{6}",
         r"\frac{\pi}{6}", False, "boxed"),
    # test/intermediate_algebra/134.json
    case("negative-int", "math", "Pairing terms gives 50 pairs of -1.\n\nThe answer is "
         "\\(\\boxed{-50}\\).", "-50", "-50", True, "boxed"),
    case("negative-sign-lost", "math", r"The answer is \(\boxed{50}\).", "-50", "50", False,
         "boxed"),
    # test/precalculus/695.json
    case("interval-spacing", "math", r"The range is \(\boxed{(-\infty,0]}\).", r"(-\infty, 0]",
         r"(-\infty,0]", True, "boxed"),
    case("interval-open-vs-closed", "math", r"The range is \(\boxed{(-\infty, 0)}\).",
         r"(-\infty, 0]", r"(-\infty, 0)", False, "boxed"),
    # test/intermediate_algebra/558.json
    case("interval-half-open-wrong", "math", r"\boxed{(3,4)}", "(3,4]", "(3,4)", False, "boxed"),
    # test/algebra/2486.json
    case("interval-left-right-fracs", "math", r"\boxed{\left(\frac35, \frac83\right]}",
         r"\left(\frac{3}{5},\frac{8}{3}\right]", r"\left(\frac35, \frac83\right]", True,
         "boxed"),
    # test/algebra/2043.json
    case("interval-union", "math", r"The domain is \(\boxed{(-\infty,2)\cup(3,\infty)}\).",
         r"(-\infty, 2) \cup (3, \infty)", r"(-\infty,2)\cup(3,\infty)", True, "boxed"),
    # test/algebra/101.json
    case("interval-gold-with-x-in", "math", r"\boxed{[-2, 7]}", r"x \in [-2,7]", "[-2, 7]", True,
         "boxed"),
    # test/precalculus/819.json
    case("choice-letter", "math", r"The shape is a plane. \boxed{C}", r"\text{(C)}", "C", True,
         "boxed"),
    case("choice-parenthesised", "math", r"The answer is \(\boxed{(C)}\).", r"\text{(C)}", "(C)",
         True, "boxed"),
    case("choice-wrong", "math", r"\boxed{\text{(D)}}", r"\text{(C)}", r"\text{(D)}", False,
         "boxed"),
    # test/algebra/1349.json
    case("text-name", "math", r"Evelyn covers the most distance per unit time. \boxed{Evelyn}",
         r"\text{Evelyn}", "Evelyn", True, "boxed"),
    # test/intermediate_algebra/956.json
    case("ordered-triple", "math", r"So \((p,q,r) = \boxed{(6, 31, -1)}\).", "(6,31,-1)",
         "(6, 31, -1)", True, "boxed"),
    case("ordered-triple-swapped", "math", r"\boxed{(6,-1,31)}", "(6,31,-1)", "(6,-1,31)", False,
         "boxed"),
    # test/intermediate_algebra/1388.json
    case("solution-list-reordered", "math", r"The solutions are \(\boxed{-2, 1}\).", "1,-2",
         "-2, 1", True, "boxed"),
    case("solution-list-incomplete", "math", r"\boxed{1}", "1,-2", "1", False, "boxed"),
    # test/precalculus/768.json
    case("plus-minus-expanded", "math", r"\boxed{3 - 2\sqrt{2}, 3 + 2\sqrt{2}}",
         r"3 \pm 2 \sqrt{2}", r"3 - 2\sqrt{2}, 3 + 2\sqrt{2}", True, "boxed"),
    case("plus-minus-one-root", "math", r"\boxed{3 + 2\sqrt{2}}", r"3 \pm 2 \sqrt{2}",
         r"3 + 2\sqrt{2}", False, "boxed"),
    # test/algebra/2193.json
    case("equation-gold", "math", r"Checking both roots, only \(x = 5\) works: \(\boxed{5}\).",
         "x=5", "5", True, "boxed"),
    # test/precalculus/990.json
    case("complex", "math", r"\(w = \boxed{6-5i}\)", "6 - 5i", "6-5i", True, "boxed"),
    # test/prealgebra/1558.json
    case("decimal-vs-fraction", "math", r"The distance is \(\boxed{\frac{5}{4}}\) miles.", "1.25",
         r"\frac{5}{4}", True, "boxed"),
    # test/prealgebra/1655.json
    case("dfrac-gold-decimal-pred", "math", r"\boxed{0.34}", r"\dfrac{17}{50}", "0.34", True,
         "boxed"),
    # test/prealgebra/1003.json
    case("gold-with-text-unit", "math", r"\boxed{\frac{270}{7}}", r"\frac{270}7\text{ degrees}",
         r"\frac{270}{7}", True, "boxed"),
    # test/number_theory/598.json
    case("leading-dot-decimal", "math", r"\boxed{0.0000672}", ".0000672", "0.0000672", True,
         "boxed"),
    # test/counting_and_probability/508.json
    case("thousands-thin-space-gold", "math", r"\(7! \cdot 2 = \boxed{10080}\)", r"10,\!080",
         "10080", True, "boxed"),
    # test/algebra/2626.json
    case("money-gold", "math", r"The bond is worth \(\boxed{32348}\) dollars.", r"\$32,\!348",
         "32348", True, "boxed"),
    # test/algebra/2780.json
    case("money-cents-wrong", "math", r"\boxed{\$18.09}", r"\$18.90", r"\$18.09", False, "boxed"),
    # test/geometry/473.json
    case("gold-with-mbox-unit", "math", r"\(6 \cdot 12^2 = \boxed{864}\) square inches.",
         r"864 \mbox{ inches}^2", "864", True, "boxed"),
    # test/prealgebra/1044.json
    case("pred-with-text-unit", "math", r"\boxed{5.4 \text{ cents}}", r"5.4 \text{ cents}",
         r"5.4 \text{ cents}", True, "boxed"),
    # test/geometry/826.json
    case("mixed-number-gold", "math", r"\boxed{\frac{9}{5}}", r"1\frac{4}{5}", r"\frac{9}{5}",
         True, "boxed"),
    # test/algebra/2470.json
    case("mixed-number-decimal", "math", r"\(50 \cdot 2.75 = \boxed{137.5}\)",
         r"137 \frac{1}{2}", "137.5", True, "boxed"),
    # test/intermediate_algebra/1217.json
    case("polynomial", "math", r"\boxed{x^5-x^4+x^3-x^2+x-1}", r"x^5 - x^4 + x^3 - x^2 + x - 1",
         "x^5-x^4+x^3-x^2+x-1", True, "boxed"),
    case("polynomial-wrong-signs", "math", r"\boxed{x^5+x^4+x^3+x^2+x+1}",
         r"x^5 - x^4 + x^3 - x^2 + x - 1", "x^5+x^4+x^3+x^2+x+1", False, "boxed"),
    # test/intermediate_algebra/1994.json
    case("symbolic-reordered", "math", r"\boxed{-q + p}", "p - q", "-q + p", True, "boxed"),
    # test/precalculus/1300.json
    case("vector", "math",
         r"\boxed{\begin{pmatrix} -\frac{1}{3} \\ \frac{2}{3} \\ \frac{5}{3} \end{pmatrix}}",
         r"\begin{pmatrix} -1/3 \\ 2/3 \\ 5/3 \end{pmatrix}",
         r"\begin{pmatrix} -\frac{1}{3} \\ \frac{2}{3} \\ \frac{5}{3} \end{pmatrix}", True,
         "boxed"),
    # test/precalculus/323.json
    case("line-equation", "math", r"The image is the line \(\boxed{y=2x+3}\).", "y = 2x + 3",
         "y=2x+3", True, "boxed"),
    # test/intermediate_algebra/2015.json
    case("set-of-roots", "math", r"\boxed{-2, 1+\sqrt{5}, 1-\sqrt{5}}", r"\{1\pm\sqrt{5},-2\}",
         r"-2, 1+\sqrt{5}, 1-\sqrt{5}", True, "boxed"),
    # test/intermediate_algebra/428.json: cut off inside the box, no earlier answer
    case("cut-off-in-box", "math",
         "Let a = x - 3 and b = x - 7. Then a^3 + b^3 = (a + b)^3, so 3ab(a + b) = 0. "
         "The roots are \\(\\boxed{3, 5,", "3, 5, 7", None, False, "none"),
    # test/algebra/2584.json: cut off mid-derivation
    case("cut-off-mid-derivation", "math",
         "We compute each value: \\(f(-2) = \\frac{3(-2)-2}{-2-2} = \\frac{-8}{-4} = 2\\), and "
         "\\(f(-1) = \\frac{3(-1)-2}{", r"\frac{14}{3}", None, False, "none"),
    # test/intermediate_algebra/1388.json: "answer is" whose box was cut off
    case("cut-off-after-answer-is", "math",
         "Setting y = 0 gives f(x) = f(x) - 1 + f(0)... The answer is \\(\\boxed{1, ",
         "1,-2", None, False, "none"),
]
# fmt: on

CORPUS = GSM8K_CASES + MATH_CASES


def test_corpus_is_large_and_balanced() -> None:
    verdicts = [param.values[3] for param in CORPUS]
    assert len(CORPUS) >= 60
    assert len(GSM8K_CASES) >= 20 and len(MATH_CASES) >= 40
    assert sum(v.correct for v in verdicts) >= 20
    assert sum(not v.correct for v in verdicts) >= 20


@pytest.mark.parametrize(("family", "text", "gold", "expected"), CORPUS)
def test_grade_corpus(family: Family, text: str, gold: str, expected: Verdict) -> None:
    assert grade(text, gold, family) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(r"\boxed{1} then \boxed{2}", ("1", "boxed"), id="first-box-wins"),
        pytest.param(r"\boxed{\boxed{5}}", ("5", "boxed"), id="box-in-box"),
        pytest.param("#### \n#### 9\n#### 8", ("9", "hashes"), id="first-non-empty-hashes"),
        pytest.param(
            "The answer is 8. Next question: the answer is 9.",
            ("8", "answer_is"),
            id="first-answer-is-wins",
        ),
        pytest.param(r"\boxed{\frac{\sqrt{3}}{2}}.", (r"\frac{\sqrt{3}}{2}", "boxed"), id="nested"),
        pytest.param(r"\fbox{7}", ("7", "boxed"), id="fbox"),
        pytest.param(r"\boxed{4} and then \boxed{5", ("4", "boxed"), id="unclosed-box-skipped"),
        pytest.param(r"\boxed{} so \boxed{ }", (None, "none"), id="empty-boxes"),
        pytest.param("#### 9\nThe answer is 8. \\boxed{7}", ("7", "boxed"), id="box-over-hashes"),
        pytest.param("The answer is 8.\n#### 9", ("9", "hashes"), id="hashes-over-answer-is"),
        pytest.param(
            "The answer is 8 apples. I have 9 more.",
            ("8 apples", "answer_is"),
            id="answer-is-over-last-number",
        ),
        pytest.param("**Final Answer:** **12**", ("12", "answer_is"), id="markdown-bold"),
        pytest.param("Final answer:\n\n42", ("42", "answer_is"), id="answer-on-next-line"),
        pytest.param(
            r"The final answer is \(\frac{1}{2}\), as shown.",
            (r"\frac{1}{2}", "answer_is"),
            id="answer-is-delimited",
        ),
        pytest.param("3 + 4 = 7, so she", ("7", "last_number"), id="last-number"),
        pytest.param("It costs $1,250 in all", ("1,250", "last_number"), id="last-number-comma"),
        pytest.param("No numbers at all", (None, "none"), id="nothing"),
    ],
)
def test_extract_answer_gsm8k(text: str, expected: tuple[str | None, str]) -> None:
    assert extract_answer(text, "gsm8k") == expected


def test_extract_answer_math_last_number_only_without_latex() -> None:
    assert extract_answer("So there are 42 ways in total", "math") == ("42", "last_number")
    assert extract_answer(r"So \(x = 3\) and then 4 more", "math") == (None, "none")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1,000", "1000"),
        ("$18", "18"),
        (r"\$18", "18"),
        ("18.00", "18"),
        ("18.", "18"),
        ("-3.50", "-3.5"),
        ("50%", "50"),
        (r"50\%", "50"),
        ("3/4", "0.75"),
        (r"\frac{3}{4}", "0.75"),
        (r"-\dfrac12", "-0.5"),
        ("18 dollars", "18"),
        (r"18\text{ dollars}", "18"),
        (r"1{,}000", "1000"),
        (r"1\,000", "1000"),
        ("x = 18", "18"),
        (r"2 \times 9 = 18", "18"),
        ("**18**", "18"),
        ("18, since 9 * 2 = 18", "18"),
        ("−5", "-5"),
        (".5", "0.5"),
        ("18 + 2", None),
        ("2x", None),
        ("abc", None),
        ("", None),
        ("1/0", None),
    ],
    ids=repr,
)
def test_normalize_number(raw: str, expected: str | None) -> None:
    assert normalize_number(raw) == expected


def test_answers_equivalent_gsm8k_accepts_whole_solution_as_gold() -> None:
    assert answers_equivalent("18", "9 * 2 = <<9*2=18>>18\n#### 18", "gsm8k")


def test_answers_equivalent_rejects_unknown_family() -> None:
    with pytest.raises(ValueError, match="unknown answer family"):
        answers_equivalent("1", "1", "aime")  # type: ignore[arg-type]


def test_grade_math_in_non_main_thread() -> None:
    results: list[Verdict] = []

    def work() -> None:
        results.append(grade(r"\boxed{\sqrt{117}}", r"3\sqrt{13}", "math"))
        results.append(grade(r"\boxed{(-\infty, 0)}", r"(-\infty, 0]", "math"))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    assert results == [
        Verdict(predicted=r"\sqrt{117}", correct=True, method="boxed"),
        Verdict(predicted=r"(-\infty, 0)", correct=False, method="boxed"),
    ]
