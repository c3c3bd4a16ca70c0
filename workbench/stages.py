"""The experiment as stages over a run folder: each reruns alone, from Python or the CLI.

    from workbench import stages
    from workbench.experiment.rundir import RunDir

    run = RunDir("runs/als-gsm8k")
    stages.directions(run)          # refit the directions from the cached fit activations
    stages.select(run)              # loads the run's recorded model when no bridge is given
    stages.report(run)

`als stage NAME RUN` does the same from the command line. Every stage reads its inputs from the
run folder and writes its outputs there (decoding resumes from the rows already written); the
settings are the run's own (`config.json`), so a stage cannot silently use other ones.
`run_stage` holds the folder's writer lock (`RunDir.writer`) while the stage runs, so a second
process writing the folder is refused; calling a stage function directly, hold it yourself
(``with run.writer(): stages.select(run)``).

| stage      | reads                      | writes                                          |
|------------|----------------------------|-------------------------------------------------|
| splits     | settings, the dataset      | splits/                                         |
| fit        | splits                     | fit/cot.jsonl, fit/activations/, fit/final/,    |
|            |                            | val/cot.jsonl (same batch)                      |
| labels     | fit/cot.jsonl              | fit/labels.jsonl (self-verification)            |
| directions | fit/activations/           | directions/                                     |
| select     | fit/, directions/          | fit/trajectories/, selection-plan.json, val/,   |
|            |                            | selection.json, reference-selection.json        |
| test       | selection(-plan).json, directions/ | test/ (CoT and every arm in one batch), |
|            |                            | results.json                                    |
| retime     | a finished run             | test-retimed/, retimed.json (every test arm     |
|            |                            | again, together, on the first --limit problems) |
| probe      | a finished run             | probe/                                          |
| compare    | a finished run             | compare/                                        |
| sweep      | a finished run             | sweep/                                          |
| report     | whatever of the above is there | figures/, report.html                       |
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.experiment.rundir import RunDir

__all__ = [
    "STAGES",
    "compare",
    "directions",
    "fit",
    "labels",
    "probe",
    "report",
    "retime",
    "run_stage",
    "select",
    "splits",
    "sweep",
    "test",
]


def _als_config(run: RunDir):
    from workbench.experiment.pipeline import ALSRunConfig

    return ALSRunConfig.from_json(run.settings()["als"])


def splits(run: RunDir, *, data_dir: str | None = None) -> None:
    from workbench.experiment.pipeline import make_splits

    make_splits(run, _als_config(run), data_dir=data_dir)


def fit(run: RunDir, bridge: Any = None, *, data_dir: str | None = None):
    from workbench.experiment.pipeline import fit_stage

    return fit_stage(bridge or run.load_model(), run, _als_config(run), data_dir=data_dir)


def labels(
    run: RunDir, bridge: Any = None, *, data_dir: str | None = None, limit: int | None = None
) -> dict:
    from workbench.experiment.pipeline import labels_stage

    bridge = bridge or run.load_model()
    return labels_stage(bridge, run, _als_config(run), data_dir=data_dir, limit=limit)


def retime(
    run: RunDir, bridge: Any = None, *, data_dir: str | None = None, limit: int | None = None
) -> dict:
    """Every test arm decoded again together on the first `limit` test problems (default 64):
    like-for-like seconds (`workbench.experiment.retime`)."""
    from workbench.experiment.retime import retime_stage

    bridge = bridge or run.load_model()
    n = 64 if limit is None else limit
    return retime_stage(
        bridge, run, _als_config(run), min(n, len(run.problems("test"))), data_dir=data_dir
    )


def directions(run: RunDir):
    from workbench.experiment.pipeline import directions_stage

    return directions_stage(run, _als_config(run))


def select(run: RunDir, bridge: Any = None, *, data_dir: str | None = None) -> dict:
    """Our grid on validation, then (with --als.reference) the reference arm's alphas."""
    from workbench.experiment.pipeline import reference_select_stage, select_stage

    bridge, cfg = bridge or run.load_model(), _als_config(run)
    selection = select_stage(bridge, run, cfg, data_dir=data_dir)
    if cfg.reference:
        reference_select_stage(bridge, run, cfg, data_dir=data_dir)
    return selection


def test(run: RunDir, bridge: Any = None, *, data_dir: str | None = None) -> dict:
    from workbench.experiment.pipeline import evaluate_stage

    return evaluate_stage(bridge or run.load_model(), run, _als_config(run), data_dir=data_dir)


test.__test__ = False  # a stage, not a pytest test


def probe(run: RunDir, bridge: Any = None, cfg: Any = None, *, data_dir: str | None = None):
    from workbench.experiment.probe_run import ProbeRunConfig, probe_run

    run.require_finished()
    bridge = bridge or run.load_model()
    return probe_run(bridge, run.root, cfg or ProbeRunConfig(), data_dir=data_dir)


def compare(run: RunDir, bridge: Any = None, cfg: Any = None, *, data_dir: str | None = None):
    from workbench.experiment.compare import CompareConfig, run_compare

    run.require_finished()
    bridge = bridge or run.load_model()
    return run_compare(bridge, run.root, cfg or CompareConfig(), data_dir=data_dir)


def sweep(run: RunDir, bridge: Any = None, cfg: Any = None, *, data_dir: str | None = None):
    from workbench.experiment.sweeps import SweepConfig, run_sweep

    run.require_finished()
    bridge = bridge or run.load_model()
    return run_sweep(bridge, run, cfg or SweepConfig(), data_dir=data_dir)


def report(run: RunDir) -> Path:
    """Figures (HTML + PNG) and `report.html` from what the run folder holds."""
    from workbench.report.run_report import build_run_report

    return build_run_report(run.require_finished())


STAGES = {
    "splits": splits,
    "fit": fit,
    "labels": labels,
    "directions": directions,
    "select": select,
    "test": test,
    "retime": retime,
    "probe": probe,
    "compare": compare,
    "sweep": sweep,
    "report": report,
}
"""Stage name -> function, in the order of the experiment."""


def run_stage(
    name: str,
    run: str | Path | RunDir,
    *,
    bridge: Any = None,
    data_dir: str | None = None,
    limit: int | None = None,
    **model_overrides: Any,
) -> Any:
    """Run stage `name` on `run` (see `STAGES`). A stage that decodes gets `bridge`, or the run's
    recorded model loaded with `model_overrides` (device, dtype); one that reads problems gets
    `data_dir`; one that can work on part of its input gets `limit` (labels: the first fit
    generations only): what a stage takes is read from its signature. The run folder's writer
    lock is held throughout (`RunDir.writer`): another process writing the folder is refused with
    a `WorkbenchError` before any model is loaded."""
    if name not in STAGES:
        raise WorkbenchError(f"unknown stage {name!r}; use one of {', '.join(STAGES)}")
    run = RunDir.of(run)
    if not run.settings_path.exists():
        raise WorkbenchError(f"{run.root} has no settings record (config.json): run `als run`")
    stage = STAGES[name]
    params = inspect.signature(stage).parameters
    if limit is not None and "limit" not in params:
        raise WorkbenchError(f"stage {name} takes no limit; only labels and retime do")
    with run.writer():
        kwargs: dict[str, Any] = {}
        if "bridge" in params:
            kwargs["bridge"] = bridge or run.load_model(**model_overrides)
        if "data_dir" in params:
            kwargs["data_dir"] = data_dir
        if limit is not None:
            kwargs["limit"] = limit
        return stage(run, **kwargs)
