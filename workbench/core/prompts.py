"""Chain-of-thought prompts, and the answer format they ask for.

Three formats (`PromptConfig.format`): the workbench's own and the ALS paper's P1 ask for the final
answer in ``\\boxed{}`` (Qwen's own math instruction), which is the first thing
`workbench.core.grading` extracts; P2 asks for a JSON object (`workbench.core.json_answer`).
`stop_rule` tells the decoder when that answer has been written, so that a sequence can stop there
instead of running on to the token cap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from workbench.core.grading import AnswerFormat, first_boxed
from workbench.core.json_answer import json_object_closed
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.core.problems import Problem

__all__ = [
    "PromptConfig",
    "PromptFormat",
    "answer_complete",
    "encode_problems",
    "encode_prompts",
    "format_prompt",
    "stop_rule",
]

DEFAULT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


PromptFormat = Literal["workbench", "p1", "p2"]

P1_SYSTEM = DEFAULT_INSTRUCTION
"""The ALS paper's free-form prompt P1 (LatentSeek's): this as the system message, the bare
question as the user message (negbuna/ALS `src/prompts/solver_prompts.py`, prompt index 0)."""
P2_SYSTEM = "You are a precise math question solver. Solve this math problem. "
"""The system message of the structured prompt P2 (prompt index 1 there)."""
P2_USER = (
    "QUESTION: {question} \n"
    "Let's think step by step. "
    "Please provide your thought process and your final answer separately and response in json "
    'format containing the keys "thought process" and "final answer". '
    'For example your response should be {{"thought process": "your thought process", '
    '"final answer": "your final answer"}}. '
)
"""P2's user message (their text, typos kept: it is what the model reads)."""
P2_NUMERIC_NOTE = (
    "Note that the final answer should be pure numbers, not the calculation formulas, and "
    "without any units or explanation!!! "
)
"""Appended to P2's user message for GSM8K (numeric answers), not for MATH."""


@dataclass(frozen=True, kw_only=True)
class PromptConfig:
    """How a question becomes a prompt."""

    format: PromptFormat = "workbench"
    """'workbench': the question with `instruction` appended, as the user message, under the chat
    template's default system prompt (or `system`); 'p1': the ALS paper's free-form prompt (its
    instruction as the system message, the bare question as the user message); 'p2': its
    structured prompt (a "precise math question solver" system message; a user message asking
    for JSON with the keys "thought process" and "final answer", for GSM8K as pure numbers
    without units). P2 outputs are graded from their JSON object, which must be valid
    (`workbench.core.json_answer`), and a sequence stops when that object closes."""
    instruction: str = DEFAULT_INSTRUCTION
    """Appended to the question ('workbench' format); must ask for the format that the grader
    extracts."""
    chat_template: bool | None = None
    """Use the tokenizer's chat template: None = when it has one."""
    system: str | None = None
    """Optional system message ('workbench' format, chat template only); None keeps the
    template's default."""

    def __post_init__(self) -> None:
        if self.format not in ("workbench", "p1", "p2"):
            raise WorkbenchError(f"unknown prompt format {self.format!r}; use workbench, p1 or p2")

    @property
    def answer_format(self) -> AnswerFormat:
        """How outputs under this prompt are graded: 'json' for P2, else 'boxed'."""
        return "json" if self.format == "p2" else "boxed"


def _messages(question: str, cfg: PromptConfig, family: str) -> list[dict[str, str]]:
    """The chat messages of one question."""
    if cfg.format == "p1":
        return [{"role": "system", "content": P1_SYSTEM}, {"role": "user", "content": question}]
    if cfg.format == "p2":
        user = P2_USER.format(question=question) + (P2_NUMERIC_NOTE if family == "gsm8k" else "")
        return [{"role": "system", "content": P2_SYSTEM}, {"role": "user", "content": user}]
    content = f"{question.strip()}\n{cfg.instruction}".strip()
    system = [] if cfg.system is None else [{"role": "system", "content": cfg.system}]
    return [*system, {"role": "user", "content": content}]


def _uses_chat(tokenizer: Any, cfg: PromptConfig) -> bool:
    if cfg.chat_template is not None:
        return cfg.chat_template
    return bool(getattr(tokenizer, "chat_template", None))


def format_prompt(
    tokenizer: Any, question: str, cfg: PromptConfig = PromptConfig(), family: str = "gsm8k"
) -> str:
    """The prompt text for one question (`family`: the problem's answer family, which P2's
    wording depends on). Without a chat template the messages are written as plain text."""
    messages = _messages(question, cfg, family)
    if _uses_chat(tokenizer, cfg):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if cfg.format == "workbench":
        return f"Question: {messages[-1]['content']}\nAnswer:"
    return "\n".join(m["content"].strip() for m in messages) + "\nAnswer:"


def encode_prompts(
    tokenizer: Any,
    questions: Sequence[str],
    cfg: PromptConfig = PromptConfig(),
    family: str | Sequence[str] = "gsm8k",
) -> list[list[int]]:
    """Token ids of each prompt (`family`: one for all questions, or one each). Chat-template
    text already holds its special tokens."""
    families = [family] * len(questions) if isinstance(family, str) else list(family)
    add_special = not _uses_chat(tokenizer, cfg)
    return [
        tokenizer(format_prompt(tokenizer, q, cfg, f), add_special_tokens=add_special)["input_ids"]
        for q, f in zip(questions, families, strict=True)
    ]


def encode_problems(
    tokenizer: Any, problems: Sequence[Problem], cfg: PromptConfig = PromptConfig()
) -> list[list[int]]:
    """Token ids of each problem's prompt."""
    return encode_prompts(
        tokenizer, [p.question for p in problems], cfg, [p.family for p in problems]
    )


def stop_rule(cfg: PromptConfig) -> Callable[[str], bool]:
    """When a sequence's answer is complete under this prompt: its JSON object closed (P2), or
    its first box closed / ``####`` line finished (`answer_complete`)."""
    return json_object_closed if cfg.answer_format == "json" else answer_complete


def answer_complete(text: str) -> bool:
    """True once the text holds a closed ``\\boxed{...}`` or a finished ``#### answer`` line."""
    if first_boxed(text) is not None:
        return True
    hashes = text.rfind("####")
    return hashes >= 0 and "\n" in text[hashes:] and any(c.isdigit() for c in text[hashes:])
