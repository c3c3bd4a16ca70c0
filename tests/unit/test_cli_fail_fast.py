"""A command line that fails fast and says what it wants (issue 43, part 4): an unknown model name
fails at once, in one line, before anything is written; options are never abbreviated; a bad list
says what it takes; `als --version` answers without importing the stack; `als --help` has no
stray "(required)" line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from workbench import __version__
from workbench.cli.main import main
from workbench.cli.parser import parse
from workbench.errors import WorkbenchError
from workbench.sources import models
from workbench.sources.models import check_model_name

UNKNOWN = "nosuchmodel-als-43"
"""Neither a folder nor a registered name (nor, we trust, a hub id)."""


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse
        return int(exc.code or 0)


def _one_line_exit_2(argv: list[str], capsys) -> str:
    code = _exit_code(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("als") and ": error: " in err and "\n" not in err, err
    assert "Traceback" not in err and "Retry" not in err, err
    return err


@pytest.fixture(autouse=True)
def _fresh_hub_answers():
    models._hub_source.cache_clear()
    yield
    models._hub_source.cache_clear()


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def online(monkeypatch):
    """HF_HUB_OFFLINE unset, as for a user who has not set it (the hub itself is patched)."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def _hub(monkeypatch, answer) -> list[str]:
    """Make the hub answer each look-up with `answer` (an exception is raised); the names asked."""
    from huggingface_hub import HfApi

    asked: list[str] = []

    def model_info(self, name, **kwargs):
        asked.append(name)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(HfApi, "model_info", model_info)
    return asked


# -- an unknown model ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "generate"])
def test_unknown_model_offline_fails_at_once_and_writes_nothing(command, offline, tmp_path, capsys):
    out = tmp_path / "new" / "out"
    start = time.perf_counter()
    err = _one_line_exit_2([command, "--model.name", UNKNOWN, "--out", str(out)], capsys)
    assert time.perf_counter() - start < 5
    assert f"could not load model {UNKNOWN!r}" in err and "HF_HUB_OFFLINE" in err, err
    assert not (tmp_path / "new").exists()  # not even the folder the writer lock makes


def test_unknown_model_with_the_hub_unreachable_is_one_look_up(
    online, monkeypatch, tmp_path, capsys
):
    asked = _hub(monkeypatch, ConnectionError("Name or service not known"))
    out = tmp_path / "out"
    start = time.perf_counter()
    err = _one_line_exit_2(["run", "--model.name", UNKNOWN, "--out", str(out)], capsys)
    assert time.perf_counter() - start < 5
    assert asked == [UNKNOWN]
    assert "the hub is unreachable" in err and "Name or service not known" in err, err
    assert not out.exists()


def test_unknown_model_on_an_existing_folder_writes_nothing_into_it(offline, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    _one_line_exit_2(["run", "--model.name", UNKNOWN, "--out", str(out)], capsys)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_sample_of_a_run_with_an_unknown_model_writes_nothing(offline, tmp_path, capsys):
    """`als sample` reads its model from the source run, inside the writer lock of --out: the
    lock's new folder goes again."""
    import json

    from workbench.core.prompts import PromptConfig
    from workbench.engine.config import GenerationConfig
    from workbench.experiment.pipeline import ALSRunConfig, record_run_settings
    from workbench.experiment.rundir import RunDir
    from workbench.sources.data import EXPERIMENT_SPLITS, load_problems, save_split

    source = RunDir(tmp_path / "run")
    cfg = ALSRunConfig(dataset="toy")
    model = models.ModelConfig(name="tiny")
    record_run_settings(source, model, cfg, GenerationConfig(), PromptConfig())
    ids = [p.id for p in load_problems("toy", EXPERIMENT_SPLITS["toy"][0])[:2]]
    save_split(source.split_path("fit"), "fit", ids)
    settings = json.loads(source.settings_path.read_text())
    settings["model"]["name"] = UNKNOWN
    source.settings_path.write_text(json.dumps(settings))
    out = tmp_path / "new" / "samples"
    err = _one_line_exit_2(["sample", str(source.root), "--out", str(out)], capsys)
    assert f"could not load model {UNKNOWN!r}" in err, err
    assert not (tmp_path / "new").exists()


def test_unknown_model_not_on_the_hub(online, monkeypatch):
    from huggingface_hub.errors import RepositoryNotFoundError

    response = types.SimpleNamespace(headers={}, status_code=404, request=None)
    _hub(monkeypatch, RepositoryNotFoundError("404", response=response))
    with pytest.raises(WorkbenchError, match="the hub has no such id"):
        check_model_name("someone/" + UNKNOWN)


def test_unknown_model_fails_in_load_model_too(offline):
    start = time.perf_counter()
    with pytest.raises(WorkbenchError, match="could not load model"):
        models.load_model(models.ModelConfig(name=UNKNOWN, device="cpu"))
    assert time.perf_counter() - start < 5


def test_model_type_of_an_unknown_model_names_the_hint(offline):
    with pytest.raises(WorkbenchError, match=r"--model_hint"):
        models.model_type(UNKNOWN)


def test_a_path_that_is_no_folder_is_refused_without_the_hub(online, monkeypatch, tmp_path):
    asked = _hub(monkeypatch, AssertionError("no look-up"))
    with pytest.raises(WorkbenchError, match="nor a local folder, and not a hub id"):
        check_model_name(str(tmp_path / "no" / "such" / "folder"))
    assert asked == []


@pytest.mark.parametrize(
    ("name", "where"),
    [("toy", "registered"), ("tiny", "registered"), ("embedded", "registered")],
)
def test_known_names_need_no_look_up(name, where, online, monkeypatch):
    asked = _hub(monkeypatch, AssertionError("no look-up"))
    assert check_model_name(name) == where and asked == []


def test_a_folder_and_a_random_shape_need_no_look_up(online, monkeypatch, tmp_path):
    asked = _hub(monkeypatch, AssertionError("no look-up"))
    assert check_model_name(str(tmp_path)) == "folder"
    assert check_model_name("random:tiny") == "random"
    with pytest.raises(WorkbenchError, match="unknown architecture"):
        check_model_name("random:nosuch")
    assert asked == []


def test_a_hub_id_the_hub_has_is_one_look_up_per_process(online, monkeypatch):
    asked = _hub(monkeypatch, object())
    assert check_model_name("org/model") == "hub"
    assert check_model_name("org/model") == "hub"
    assert asked == ["org/model"]


def _cache_with(monkeypatch, tmp_path: Path, repo: str) -> None:
    """A Hugging Face cache under `tmp_path` holding `repo`'s config.json."""
    from huggingface_hub import constants

    folder = tmp_path / "hub" / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("abc123")
    (folder / "snapshots" / "abc123").mkdir(parents=True)
    (folder / "snapshots" / "abc123" / "config.json").write_text("{}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_a_cached_hub_id_loads_from_the_cache_offline(offline, monkeypatch, tmp_path):
    _cache_with(monkeypatch, tmp_path, "org/cached")
    assert check_model_name("org/cached") == "cache"
    with pytest.raises(WorkbenchError, match="HF_HUB_OFFLINE"):
        check_model_name("org/not-cached")


def test_a_cached_hub_id_loads_from_the_cache_when_the_hub_is_unreachable(
    online, monkeypatch, tmp_path
):
    _cache_with(monkeypatch, tmp_path, "org/cached")
    asked = _hub(monkeypatch, ConnectionError("unreachable"))
    assert check_model_name("org/cached") == "cache"
    assert asked == ["org/cached"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_als_run_of_an_unknown_model_without_hf_hub_offline(tmp_path):
    """The issue's command, as a user runs it: the hub unreachable (a closed local port) and
    HF_HUB_OFFLINE not set. Was: exit 2 after 53 s and 44 lines of retry warnings, config.json
    left behind."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}", NO_PROXY="127.0.0.1,localhost")
    out = tmp_path / "out"
    code = "import sys; from workbench.cli.main import main; sys.exit(main())"
    argv = [sys.executable, "-c", code, "run", "--model.name", UNKNOWN, "--out", str(out)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    err = done.stderr.strip()
    assert done.returncode == 2, err
    assert err.count("\n") == 0 and err.startswith("als: error: could not load model"), err
    assert "the hub is unreachable" in err, err
    assert not out.exists()


# -- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        (["--als.alpha", "0.1"], "--als.alphas"),
        (["--als.alpha=0.1"], "--als.alphas"),
        (["--als.n_fi", "4"], "--als.n_fit"),
        (["--n-fit", "4"], "--als.n_fit"),
        (["--ou", "x"], "--out"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_options_are_never_abbreviated(given, meant, tmp_path, capsys):
    err = _one_line_exit_2(["run", "--model.name", "tiny", *given], capsys)
    assert f"unrecognized arguments: {given[0]}" in err and f"(did you mean {meant}?)" in err


def test_the_full_option_still_takes_one_or_several_numbers():
    assert parse(["run", "--als.alphas", "0.1"])[1].als.alphas == (0.1,)
    assert parse(["run", "--als.alphas", "0.1,0.2"])[1].als.alphas == (0.1, 0.2)


@pytest.mark.parametrize(
    ("given", "takes"),
    [
        (["--als.alphas", "0.1,x"], "--als.alphas: Expected a float. Got value: x"),
        (["--als.alphas", "x"], "Got value: x"),
        (["--als.tau_quantiles=0.5,,"], "--als.tau_quantiles"),
        (["--als.candidate_layers", "a,b"], "comma-separated integers, e.g. 12,14"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_a_bad_list_says_what_it_takes(given, takes, capsys):
    err = _one_line_exit_2(["run", "--model.name", "tiny", *given], capsys)
    assert takes in err, err
    if "candidate_layers" not in given[0]:
        assert "it takes comma-separated numbers, e.g. 0.1,0.2" in err, err


# -- help and version ---------------------------------------------------------------------------


def test_help_has_no_stray_required_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "(required)" not in out
    assert "Available subcommands:\n    generate" in out


@pytest.mark.parametrize("argv", [["--version"], ["-v", "--version"]], ids=" ".join)
def test_version(argv, capsys):
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == f"als-workbench {__version__}"


def test_version_imports_no_stack():
    code = (
        "import sys; from workbench.cli.main import main; code = main(['--version']); "
        "heavy = [m for m in ('torch', 'jsonargparse', 'workbench.cli.commands') "
        "if m in sys.modules]; print(code, heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines() == [f"als-workbench {__version__}", "0 []"], done.stderr


def test_help_lists_the_commands_without_the_stack():
    code = (
        "import sys; from workbench.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as done:\n    code = done.code\n"
        "heavy = [m for m in ('torch', 'workbench.cli.commands') if m in sys.modules]\n"
        "print(code, heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "0 []", done.stderr
    from workbench.cli.catalog import STAGE_NAMES, SUMMARIES
    from workbench.cli.commands import COMMANDS
    from workbench.stages import STAGES

    assert tuple(STAGES) == STAGE_NAMES and list(COMMANDS) == list(SUMMARIES)
    assert all(name in done.stdout for name in SUMMARIES)
