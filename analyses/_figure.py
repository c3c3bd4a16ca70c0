"""Shared entry point of the analysis scripts: one named figure of a run folder, written to
`figures/<name>.html` and `.png` (idempotent: rerunning overwrites it with the same content)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentParser, set_parsing_settings

from workbench.core.artifacts import save_figure
from workbench.errors import WorkbenchError
from workbench.experiment.rundir import RunDir
from workbench.report.run_report import run_figures, unfinished_figures


@dataclass(frozen=True, kw_only=True)
class FigureConfig:
    """Where to read and write."""

    run: str = "runs/als-gsm8k"
    """Run folder written by `als run` (and `als probe` / `als sweep` / `als compare`)."""
    out_dir: str = "figures"
    """Folder for the figure files."""
    name: str = ""
    """Output file name (default: the script's name)."""


def options(cls: type, description: str) -> Any:
    """An analysis script's options: `cls` (a dataclass, its fields documented) from the
    command line."""
    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    parser = ArgumentParser(description=description)
    parser.add_class_arguments(cls, as_group=False)
    return cls(**parser.parse_args().as_dict())


def main(figure: str, out_name: str, needs: str, description: str) -> int:
    cfg = options(FigureConfig, description)
    try:
        run = RunDir.of(cfg.run)
        # a run still decoding has no results yet: its fit-split probe and validation grid may be
        figs = run_figures(run)[0] if run.results_path.exists() else unfinished_figures(run)
        if figure not in figs:
            raise WorkbenchError(f"{cfg.run} has no data for {figure!r}: run `{needs}` first")
        written = save_figure(figs[figure], Path(cfg.out_dir) / (cfg.name or out_name))
    except WorkbenchError as exc:
        print(f"error: {exc}")
        return 2
    print("wrote " + ", ".join(map(str, written)))
    return 0
