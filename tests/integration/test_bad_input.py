"""Every subcommand's --help works, and bad input of every kind is one line and exit code 2.

argparse errors (a value of the wrong type) and `WorkbenchError`s (a value out of range, a missing
folder) both end as one line on stderr naming the option; nothing already written is lost.
"""

from __future__ import annotations

import math

import pytest

from workbench.cli.commands import COMMANDS
from workbench.cli.main import main
from workbench.cli.parser import build_parser
from workbench.core.probing import ProbeConfig
from workbench.core.steering import SteeringSpec
from workbench.engine.config import GenerationConfig
from workbench.errors import WorkbenchError
from workbench.experiment.compare import CompareConfig
from workbench.experiment.pipeline import ALSRunConfig
from workbench.experiment.probe_run import ProbeRunConfig
from workbench.experiment.sweeps import SweepConfig
from workbench.methods.baselines import SCConfig
from workbench.methods.latentseek import LatentSeekConfig

SUBCOMMANDS = [
    "generate",
    "sample",
    "derive",
    "route",
    "run",
    "probe",
    "compare",
    "sweep",
    "stage",
    "upgrade",
    "export",
    "publish",
]


def test_subcommands_are_all_listed():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(SUBCOMMANDS) == sorted(COMMANDS)


@pytest.mark.parametrize("command", [[], *[[c] for c in SUBCOMMANDS]], ids=str)
def test_help_of_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: als")


def _one_line_exit_2(argv: list[str], capsys, message: str) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("als") and ": error: " in err and "\n" not in err, err
    assert "Traceback" not in err and message in err, err


def _ids(value) -> str:
    return " ".join(value) if isinstance(value, list) else ""


BAD_RUN = [
    (["--als.alphas", "nan"], "--als.alphas: Expected a float. Got value: nan"),
    (["--als.alphas", "0.1,inf"], "--als.alphas: Expected a float. Got value: inf"),
    (["--als.tau_quantiles=-inf"], "Got value: -inf"),
    (["--als.tau_quantiles", "1.5"], "--als.tau_quantiles must lie in [0, 1]"),
    (["--als.alphas", "abc"], "Got value: abc"),
    (["--als.n_fit", "0"], "--als.n_fit"),
    (["--als.n_fit", "2.5"], "--als.n_fit: Expected a int. Got value: 2.5"),
    (["--als.n_candidate_layers", "0"], "--als.n_candidate_layers"),
    (["--als.candidate_layers", "-1"], "--als.candidate_layers"),
    (["--als.dataset", "nope"], "nope"),
    (["--als.site", "nope"], "nope"),
    (["--generation.batch_size", "0"], "batch size"),
    (["--generation.max_new_tokens", "-3"], "--generation.max_new_tokens must be >= 1"),
    (["--generation.temperature", "nan"], "--generation.temperature: Expected a float"),
    (["--model.self_check", "maybe"], "--model.self_check: Expected a bool"),
    (["--model.n_devices", "0"], "--model.n_devices must be >= 1"),
    (["--model.attention", "flash"], "Expected one of ['sdpa', 'eager']"),
    (["--n-fit", "4"], "unrecognized arguments: --n-fit"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_RUN, ids=_ids)
def test_run_refuses_bad_options(argv, message, tmp_path, capsys):
    _one_line_exit_2(
        ["run", "--model.name", "tiny", "--out", str(tmp_path / "r"), *argv], capsys, message
    )


ON_RUN_DIR = [
    (["probe", "{missing}"], "not a finished `als run` folder"),
    (["probe", "{missing}", "--probe.n_folds", "1"], "--probe.n_folds >= 2"),
    (["probe", "{missing}", "--probe.early_ks", "0"], "--probe.early_ks"),
    (["compare", "{missing}", "--compare.sc_k", "0"], "--compare.sc_k must be >= 1"),
    (["compare", "{missing}", "--compare.methods", "cot,magic"], "magic"),
    (["compare", "{missing}", "--compare.latentseek_iters", "-1"], "--compare.latentseek_iters"),
    (["compare", "{missing}", "--compare.n_problems", "0"], "--compare.n_problems"),
    (["sweep", "{missing}", "--sweep.alphas", "nan"], "Got value: nan"),
    (["sweep", "{missing}", "--sweep.tau_quantiles", "2"], "--sweep.tau_quantiles must lie in"),
    (["sweep", "{missing}", "--sweep.shard", "3/2"], "--sweep.shard must be i/n"),
    (["sweep", "{missing}", "--sweep.rules", "magic"], "--sweep.rules ['magic'] are unknown"),
    (["sweep", "{missing}", "--sweep.split", "test"], "validation data"),
    (["sweep", "{missing}", "--sweep.n_test", "0"], "--sweep.n_test"),
    (["stage", "fit", "{missing}"], "has no settings record"),
    (["stage", "report", "{missing}"], "has no settings record"),
    (["stage", "magic", "{missing}"], "Expected one of"),
    (["sweep", "{missing}", "--launch.executor", "pbs"], "Expected one of ['local', 'slurm']"),
    (
        ["sweep", "{missing}", "--launch.executor", "local", "--launch.jobs", "0"],
        "jobs must be >= 1",
    ),
    (
        ["compare", "{missing}", "--launch.executor", "slurm", "--compare.retime", "true"],
        "without --launch",
    ),
    (["export", "{missing}"], "not a finished `als run` folder"),
    (["export", "{missing}", "--format", "xml"], "Expected one of ['gguf', 'lm-eval']"),
    (["export", "{missing}", "--layers", "a"], "--layers: Expected a int"),
    (["export", "{missing}", "--scale", "nan"], "--scale: Expected a float"),
]


@pytest.mark.parametrize(("argv", "message"), ON_RUN_DIR, ids=_ids)
def test_run_folder_commands_refuse_bad_options(argv, message, tmp_path, capsys):
    argv = [a.replace("{missing}", str(tmp_path / "no-run")) for a in argv]
    _one_line_exit_2(argv, capsys, message)


def test_out_that_is_a_file_is_refused_and_kept(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    argv = ["generate", "--model.name", "tiny", "--data.limit", "1", "--out", str(target)]
    _one_line_exit_2(argv, capsys, "is not a folder")
    assert target.read_text() == "keep me"


def test_bad_option_on_an_existing_run_loses_nothing(tiny_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["generate", "--model.name", str(tiny_dir), "--data.limit", "2"]
    argv += ["--generation.max_new_tokens", "3"]
    assert main([*argv, "--out", str(out), "--model.device", "cpu"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    _one_line_exit_2([*argv, "--out", str(out), "--generation.top_p", "nan"], capsys, "top_p")
    _one_line_exit_2(
        [*argv, "--out", str(out), "--generation.batch_size", "0"], capsys, "batch size"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SteeringSpec(layers=(1,), alpha=NAN), "alpha must be finite"),
        (lambda: SteeringSpec(layers=(1,), tau=INF), "tau must be finite"),
        (lambda: SteeringSpec(layers=(1, 2), tau=(0.1, NAN)), "tau must be finite"),
        (lambda: SteeringSpec(layers=(-1,)), "layers must be >= 0"),
        (lambda: GenerationConfig(temperature=NAN, do_sample=True), "temperature"),
        (lambda: GenerationConfig(top_p=INF), "top_p"),
        (lambda: ALSRunConfig(alphas=(NAN,)), "alphas must be finite"),
        (lambda: ALSRunConfig(tau_quantiles=(1.1,)), "tau_quantiles must lie in [0, 1]"),
        (lambda: SweepConfig(alphas=(0.1, -INF)), "alphas must be finite"),
        (lambda: SweepConfig(tau_quantiles=(NAN,)), "tau_quantiles must be finite"),
        (lambda: SCConfig(temperature=NAN), "temperature must be finite"),
        (lambda: SCConfig(top_p=0.0), "top_p"),
        (lambda: LatentSeekConfig(lr=NAN), "lr must be finite"),
        (lambda: LatentSeekConfig(threshold=INF), "threshold must be finite"),
        (lambda: ProbeConfig(logistic_c=NAN), "logistic_c must be finite"),
        (lambda: ProbeRunConfig(n_folds=1), "n_folds"),
        (lambda: CompareConfig(sc_k=0), "sc_k must be >= 1"),
    ],
)
def test_python_entry_points_refuse_bad_values(make, message):
    with pytest.raises(WorkbenchError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make()
