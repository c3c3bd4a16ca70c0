"""Chain-of-thought prompts, and the answer format they ask for.

The prompt asks for the final answer in ``\\boxed{}`` (Qwen's own math instruction), which is the
first thing `workbench.core.grading` extracts; `answer_complete` tells the decoder when that answer
has been written, so that a sequence can stop there instead of running on to the token cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.core.grading import first_boxed

__all__ = ["PromptConfig", "answer_complete", "encode_prompts", "format_prompt"]

DEFAULT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True, kw_only=True)
class PromptConfig:
    """How a question becomes a prompt."""

    instruction: str = DEFAULT_INSTRUCTION
    """Appended to the question; must ask for the format that the grader extracts."""
    chat_template: bool | None = None
    """Use the tokenizer's chat template: None = when it has one."""
    system: str | None = None
    """Optional system message (chat template only); None keeps the template's default."""


def format_prompt(tokenizer: Any, question: str, cfg: PromptConfig = PromptConfig()) -> str:
    """The prompt text for one question."""
    content = f"{question.strip()}\n{cfg.instruction}".strip()
    use_chat = cfg.chat_template
    if use_chat is None:
        use_chat = bool(getattr(tokenizer, "chat_template", None))
    if not use_chat:
        return f"Question: {content}\nAnswer:"
    messages = [{"role": "user", "content": content}]
    if cfg.system is not None:
        messages.insert(0, {"role": "system", "content": cfg.system})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_prompts(
    tokenizer: Any, questions: Sequence[str], cfg: PromptConfig = PromptConfig()
) -> list[list[int]]:
    """Token ids of each prompt. Chat-template text already holds its special tokens."""
    use_chat = cfg.chat_template
    if use_chat is None:
        use_chat = bool(getattr(tokenizer, "chat_template", None))
    return [
        tokenizer(format_prompt(tokenizer, q, cfg), add_special_tokens=not use_chat)["input_ids"]
        for q in questions
    ]


def answer_complete(text: str) -> bool:
    """True once the text holds a closed ``\\boxed{...}`` or a finished ``#### answer`` line."""
    if first_boxed(text) is not None:
        return True
    hashes = text.rfind("####")
    return hashes >= 0 and "\n" in text[hashes:] and any(c.isdigit() for c in text[hashes:])
