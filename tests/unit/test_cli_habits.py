"""The `als` command line meets the habits of other command lines: `--model NAME`, dashes in option
names, usage lines that read `als generate ...`, `als --version`; bad input stays one line and
exits with code 2."""

from __future__ import annotations

import json

import pytest

from workbench import __version__
from workbench.cli.commands import COMMANDS
from workbench.cli.main import main
from workbench.cli.parser import parse


def _args(argv: list[str]):
    command, args, _ = parse(argv)
    return command, args


def _one_line_exit_2(argv: list[str], capsys) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("als") and ": error: " in err and "\n" not in err, err
    assert "[options]" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("command", ["generate", "run"])
@pytest.mark.parametrize("form", [["--model", "embedded"], ["--model=embedded"]], ids=str)
def test_model_name_is_model_dot_name(command, form):
    _, args = _args([command, *form, "--model.device", "cpu"])
    assert args.model.name == "embedded" and args.model.device == "cpu"
    assert args == _args([command, "--model.name", "embedded", "--model.device", "cpu"])[1]


def test_model_takes_a_local_folder_as_its_name(tmp_path):
    _, args = _args(["generate", "--model", str(tmp_path)])
    assert args.model.name == str(tmp_path)


def test_model_yaml_file_is_still_the_model_options(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text("name: toy\ndevice: cpu\n")
    _, args = _args(["run", "--model", str(path)])
    assert (args.model.name, args.model.device) == ("toy", "cpu")
    _, args = _args(["run", "--model", json.dumps({"name": "tiny"})])
    assert args.model.name == "tiny"


def test_a_config_group_given_a_value_names_the_fix(capsys):
    err = _one_line_exit_2(["run", "--als", "64"], capsys)
    assert "--als takes a YAML file" in err and "--als.<option> VALUE" in err


def test_model_on_a_run_folder_command_is_refused(tmp_path, capsys):
    err = _one_line_exit_2(["probe", str(tmp_path), "--model", "toy"], capsys)
    assert "unrecognized arguments: --model toy" in err


DASHED = [
    (["generate", "--data-dir", "d"], ["generate", "--data_dir", "d"]),
    (["generate", "--data-dir=d"], ["generate", "--data_dir=d"]),
    (["generate", "--stop-at-answer", "false"], ["generate", "--stop_at_answer", "false"]),
    (
        ["generate", "--generation.max-new-tokens", "3", "--generation.batch-size=2"],
        ["generate", "--generation.max_new_tokens", "3", "--generation.batch_size=2"],
    ),
    (["run", "--als.n-fit", "4"], ["run", "--als.n_fit", "4"]),
    (["run", "--als.tau-quantiles", "0.25,0.5"], ["run", "--als.tau_quantiles", "0.25,0.5"]),
    (["export", "r", "--model-hint", "qwen2"], ["export", "r", "--model_hint", "qwen2"]),
    (["stage", "fit", "r", "--data-dir", "d"], ["stage", "fit", "r", "--data_dir", "d"]),
]


@pytest.mark.parametrize(("dashed", "underscored"), DASHED, ids=lambda v: " ".join(v))
def test_options_take_dashes_or_underscores(dashed, underscored):
    assert _args(dashed) == _args(underscored)


def test_values_keep_their_dashes():
    _, args = _args(["export", "r", "--format", "lm-eval", "--out", "a-b.pt"])
    assert (args.format, args.out) == ("lm-eval", "a-b.pt")
    _, args = _args(["generate", "--prompt.system=--be-brief"])
    assert args.prompt.system == "--be-brief"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--n-fit", "4"], "unrecognized arguments: --n-fit"),
        (["run", "--als.n-fit", "0"], "--als.n_fit"),
        (["run", "--als.n-fit", "2.5"], "--als.n_fit: Expected a int"),
        (["generate", "--data-dirr", "d"], "unrecognized arguments: --data-dirr"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_bad_options_stay_one_line_exit_2(argv, message, tmp_path, capsys):
    err = _one_line_exit_2([*argv, "--out", str(tmp_path / "r")], capsys)
    assert message in err, err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_usage_lines_read_als_command(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: als {command} ") and "[options]" not in out


def test_errors_name_the_command_without_options_placeholder(tmp_path, capsys):
    err = _one_line_exit_2(["generate", "--out", str(tmp_path), "--data.limit", "x"], capsys)
    assert err.startswith("als generate: error: ") and "(see als generate --help)" in err


def test_version(capsys):
    assert main(["--version"]) == 0  # answered before the parser (tests/unit/test_cli_fail_fast.py)
    assert capsys.readouterr().out.strip() == f"als-workbench {__version__}"


def test_generate_runs_with_the_habits(tiny_dir, tmp_path, capsys):
    out = tmp_path / "gen"
    argv = ["generate", "--model", str(tiny_dir), "--model.device", "cpu", "--out", str(out)]
    argv += ["--data.dataset", "toy", "--data.limit", "1", "--generation.max-new-tokens", "2"]
    assert main(argv) == 0, capsys.readouterr().err
    settings = json.loads((out / "config.json").read_text())
    assert settings["model"]["name"] == str(tiny_dir)
    assert (out / "generations.jsonl").read_text().count("\n") == 1
