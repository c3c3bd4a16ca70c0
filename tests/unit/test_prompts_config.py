"""Prompt formats, the answer-complete stop rule, and CLI options generated from configs."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from workbench.cli.commands import COMMANDS, RunArgs
from workbench.cli.parser import build_parser, parse
from workbench.core.prompts import PromptConfig, answer_complete, format_prompt
from workbench.engine.config import GenerationConfig
from workbench.errors import WorkbenchError


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


class _Template:
    """A tokenizer stand-in that shows the messages a chat template receives."""

    chat_template = "yes"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return messages


def test_p1_puts_the_instruction_in_the_system_message():
    from workbench.core.prompts import P1_SYSTEM

    messages = format_prompt(_Template(), "What is 2+2?", PromptConfig(format="p1"))
    assert messages == [
        {"role": "system", "content": P1_SYSTEM},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert "\\boxed{}" in P1_SYSTEM
    ours = format_prompt(_Template(), "What is 2+2?", PromptConfig())
    assert ours == [{"role": "user", "content": "What is 2+2?\n" + P1_SYSTEM}]


def test_p2_asks_for_json_and_for_gsm8k_pure_numbers():
    from workbench.core.prompts import P2_NUMERIC_NOTE, P2_SYSTEM

    cfg = PromptConfig(format="p2")
    gsm = format_prompt(_Template(), "How many apples?", cfg, family="gsm8k")
    math = format_prompt(_Template(), "Find $x$.", cfg, family="math")
    assert gsm[0] == math[0] == {"role": "system", "content": P2_SYSTEM}
    assert gsm[1]["content"].startswith("QUESTION: How many apples? \n")
    assert '"thought process" and "final answer"' in gsm[1]["content"]
    assert '{"thought process": "your thought process"' in gsm[1]["content"]
    assert gsm[1]["content"].endswith(P2_NUMERIC_NOTE) and P2_NUMERIC_NOTE not in math[1]["content"]
    assert cfg.answer_format == "json" and PromptConfig(format="p1").answer_format == "boxed"


def test_stop_rule_follows_the_prompt_format():
    from workbench.core.json_answer import json_object_closed
    from workbench.core.prompts import stop_rule

    assert stop_rule(PromptConfig(format="p2")) is json_object_closed
    assert stop_rule(PromptConfig(format="p1")) is answer_complete
    assert stop_rule(PromptConfig()) is answer_complete


def test_unknown_prompt_format_is_a_clear_error():
    with pytest.raises(WorkbenchError, match="unknown prompt format 'p3'"):
        PromptConfig(format="p3")


def test_p2_rows_are_graded_from_json(tiny_bridge, tiny_problems):
    """A P2 run grades every row from its JSON object: the random tiny model writes none, so
    every row is 'invalid_json' and wrong, where the boxed grader reads a last number."""
    from workbench.methods.cot import run_cot

    gen = GenerationConfig(max_new_tokens=8, batch_size=4)
    p2 = run_cot(tiny_bridge, tiny_problems, generation=gen, prompt=PromptConfig(format="p2"))
    assert {r["extraction"] for r in p2} == {"invalid_json"}
    assert not any(r["correct"] for r in p2)
    plain = run_cot(tiny_bridge, tiny_problems, generation=gen, prompt=PromptConfig(format="p1"))
    assert "invalid_json" not in {r["extraction"] for r in plain}


def test_cli_options_from_config():
    command, args, _ = parse(
        ["run", "--generation.max_new_tokens", "7", "--generation.do_sample", "true"]
    )
    assert command == "run" and isinstance(args, RunArgs)
    assert args.generation == GenerationConfig(max_new_tokens=7, do_sample=True)
    with pytest.raises(WorkbenchError, match="batch size"):
        parse(["run", "--generation.batch_size", "0"])


def test_list_options_take_commas_or_brackets():
    for value in ("0.05,0.1", "[0.05,0.1]", "[0.05, 0.1]"):
        assert parse(["run", "--als.alphas", value])[1].als.alphas == (0.05, 0.1)
    assert parse(["run", "--als.alphas=0.2"])[1].als.alphas == (0.2,)


def _fields(cls: type, prefix: str = "") -> list[str]:
    out = []
    for name, annotation in typing.get_type_hints(cls).items():
        nested = isinstance(annotation, type) and dataclasses.is_dataclass(annotation)
        # a nested config is one option per field; `X | None` is one option (and `--launch.help`)
        out += _fields(annotation, f"{prefix}{name}.") if nested else [f"{prefix}{name}"]
    return out


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_documents_every_field(command):
    cls = COMMANDS[command][0]
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    helps = {a.dest: a.help or "" for a in sub._actions}
    for name in _fields(cls):
        assert name in helps, f"{command}: no option for {name}"
        assert len(helps[name].split("(type:")[0].strip()) > 5, f"{command}: {name} undocumented"


def test_config_file_nesting_equals_options(tmp_path):
    (tmp_path / "run.yaml").write_text("als:\n  n_fit: 64\n  alphas: [0.05, 0.2]\nout: runs/x\n")
    from_file = parse(["run", "--config", str(tmp_path / "run.yaml")])[1]
    from_flags = parse(["run", "--als.n_fit", "64", "--als.alphas", "0.05,0.2", "--out", "runs/x"])
    assert from_file == from_flags[1]
