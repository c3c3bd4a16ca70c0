"""Prompt formats, the answer-complete stop rule, and CLI options generated from configs."""

from __future__ import annotations

import argparse

import pytest

from workbench.config import add_config_args, config_from_args, field_docs
from workbench.errors import WorkbenchError
from workbench.generation import GenerationConfig
from workbench.prompts import PromptConfig, answer_complete, format_prompt


@pytest.mark.parametrize(
    ("text", "done"),
    [
        ("so the answer is \\boxed{72}", True),
        ("so the answer is \\boxed{\\frac{1}{2}", False),
        ("so the answer is \\boxed{\\frac{1}{2}}", True),
        ("#### 18\n", True),
        ("#### 18", False),
        ("We add 48 and 24 to get 72.", False),
    ],
)
def test_answer_complete(text, done):
    assert answer_complete(text) is done


def test_plain_prompt_asks_for_boxed_answer():
    class NoTemplate:
        chat_template = None

    text = format_prompt(NoTemplate(), "What is 2+2?")
    assert text.startswith("Question: What is 2+2?") and "\\boxed{}" in text


def test_chat_prompt_uses_template(tiny_bridge):
    text = format_prompt(tiny_bridge.tokenizer, "What is 2+2?", PromptConfig(system="Be brief."))
    assert text.startswith("system: Be brief.\nuser: What is 2+2?") and text.endswith("assistant: ")


def test_cli_options_from_config():
    docs = field_docs(GenerationConfig)
    assert docs["max_new_tokens"].startswith("Hard cap")
    parser = argparse.ArgumentParser()
    add_config_args(parser, GenerationConfig)
    args = parser.parse_args(["--max-new-tokens", "7", "--do-sample", "true"])
    cfg = config_from_args(GenerationConfig, args)
    assert cfg == GenerationConfig(max_new_tokens=7, do_sample=True)
    with pytest.raises(WorkbenchError, match="batch size"):
        config_from_args(GenerationConfig, parser.parse_args(["--batch-size", "0"]))
