"""The run folder of `als run` and the commands that build on it: the one owner of its layout.

Every stage reads and writes a run folder through a `RunDir`; no other module spells a path inside
one. The layout::

    config.json                 settings record (model, generation, run settings, ...)
    splits/{fit,val,test}.json  problem ids of each split
    fit/cot.jsonl               graded rows of a method on a split: {fit,val,test}/{method}.jsonl
    generations.jsonl           (an `als generate` folder: its rows, and summary.json)
    fit/labels.jsonl            gold and self-verification labels of the fit generations
    fit/activations/            residuals of the fit generations (safetensors shards)
    fit/trajectories/           per-token residuals at the candidate layers (first n_tau_fit),
                                unless fit/activations/ kept them at every layer (small runs)
    directions/                 the fitted `LayerDirections`
    selection-plan.json         candidate layers and taus from the fit states (selection's input)
    selection.json              the validation grid and the chosen condition
    results.json                the test table and the chosen steering: the run is finished
    probe/ compare/ sweep/      what `als probe`, `als compare` and `als sweep` add
    figures/ report.html        presentation, rebuilt from the files above
    .writer.lock                while a command writes the folder: its pid, host and command
                                (`RunDir.writer`; one writer per run folder)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import __version__
from workbench.core.activations import ActivationSet
from workbench.core.artifacts import check_settings, read_json, read_rows
from workbench.core.directions import LayerDirections
from workbench.core.problems import Problem
from workbench.core.prompts import PromptConfig
from workbench.core.steering import SteeringSpec
from workbench.engine.config import GenerationConfig
from workbench.errors import WorkbenchError
from workbench.methods.baselines import SCConfig
from workbench.methods.sampling import sampled_problems
from workbench.sources.data import EXPERIMENT_SPLITS, load_problems, load_split

__all__ = ["RunDir", "SamplesDir", "provenance"]

SPLITS = ("fit", "val", "test")
PROBE_TABLES = (
    "layers",
    "early",
    "trajectory_bands",
    "steering_fired",
    "drift",
    "pca_points",
    "difficulty",
)
"""The tables `als probe` writes (`probe/<name>.jsonl`)."""
PROBE_STATES = ("fit-early", "fit-pca", "test-cot", "test-als")
"""The residual sets `als probe` caches (`probe/<name>/`)."""
EXPORTS = {"gguf": "control-vector.gguf", "lm-eval": "lm-eval-steer.pt"}
"""`als export` formats and their default files under `export/`."""


def _known(kind: str, name: str, names: tuple[str, ...] | Mapping[str, str]) -> str:
    if name not in names:
        raise WorkbenchError(f"unknown {kind} {name!r}; use one of {', '.join(names)}")
    return name


_LOCK = Path(__file__).resolve().parents[2] / "requirements.lock"


def provenance(model: Mapping[str, Any]) -> dict[str, Any]:
    """What produced a run: library version, sha256 of the lock it was installed from (None
    outside a source checkout), and the model's checksum where the workbench knows it."""
    from workbench.sources.embedded import packaged_model

    packaged = packaged_model(str(model.get("name")))
    lock = hashlib.sha256(_LOCK.read_bytes()).hexdigest() if _LOCK.is_file() else None
    return {
        "library_version": __version__,
        "lock_sha256": lock,
        "model_sha256": packaged.sha256 if packaged is not None else None,
    }


@dataclass(frozen=True)
class RunDir:
    """A run folder: its paths, typed loaders and finished-stage checks."""

    root: Path
    """The folder (``--out`` of `als run`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of(cls, run: str | Path | RunDir) -> RunDir:
        """`run` as a `RunDir` (a path or a `RunDir`)."""
        return run if isinstance(run, RunDir) else cls(Path(run))

    # -- layout ---------------------------------------------------------------------------------
    @property
    def settings_path(self) -> Path:
        return self.root / "config.json"

    @property
    def writer_lock_path(self) -> Path:
        """The lock file of the process writing the folder (`writer`)."""
        return self.root / ".writer.lock"

    @property
    def results_path(self) -> Path:
        return self.root / "results.json"

    @property
    def selection_path(self) -> Path:
        return self.root / "selection.json"

    @property
    def selection_plan_path(self) -> Path:
        """Candidate layers, taus and fit summaries that selection and test read (the fit
        activations are not needed again once it exists)."""
        return self.root / "selection-plan.json"

    @property
    def directions_path(self) -> Path:
        return self.root / "directions"

    @property
    def generations_path(self) -> Path:
        """Graded rows of an `als generate` folder."""
        return self.root / "generations.jsonl"

    @property
    def summary_path(self) -> Path:
        """The summary of an `als generate` folder."""
        return self.root / "summary.json"

    @property
    def report_path(self) -> Path:
        return self.root / "report.html"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def split_path(self, split: str) -> Path:
        return self.root / "splits" / f"{split}.json"

    def rows_path(self, split: str, method: str) -> Path:
        """Graded rows of `method` on `split` ('fit', 'val', 'test')."""
        return self.root / split / f"{method}.jsonl"

    @property
    def labels_path(self) -> Path:
        """Gold and self-verification labels of the fit generations (the labels stage)."""
        return self.root / "fit" / "labels.jsonl"

    @property
    def fit_activations_dir(self) -> Path:
        """Residuals of the fit generations at every layer (an `ActivationSet`)."""
        return self.root / "fit" / "activations"

    @property
    def fit_final_dir(self) -> Path:
        """Final normalised states of the fit generations (the reference arm's fit site)."""
        return self.root / "fit" / "final"

    @property
    def retimed_path(self) -> Path:
        """Every test arm's seconds when decoded together on the first test problems."""
        return self.root / "retimed.json"

    @property
    def reference_selection_path(self) -> Path:
        """The reference arm's alpha grid on validation and its pick."""
        return self.root / "reference-selection.json"

    @property
    def reference_directions_path(self) -> Path:
        """The reference arm's direction, fit on the final normalised state."""
        return self.root / "directions-final"

    @property
    def fit_trajectories_dir(self) -> Path:
        """Per-token residuals of the fit generations at the candidate layers."""
        return self.root / "fit" / "trajectories"

    # -- what `als probe`, `als compare`, `als sweep` and `als export` add -------------------------
    @property
    def probe_dir(self) -> Path:
        return self.root / "probe"

    def probe_table(self, name: str) -> Path:
        """A table of `als probe` (see `PROBE_TABLES`)."""
        return self.probe_dir / f"{_known('probe table', name, PROBE_TABLES)}.jsonl"

    def probe_states(self, name: str) -> Path:
        """A residual set cached by `als probe` (see `PROBE_STATES`)."""
        return self.probe_dir / _known("probe state set", name, PROBE_STATES)

    @property
    def probe_fit_record_path(self) -> Path:
        """The settings the fit split's probe tables were made with (they are reused if equal)."""
        return self.probe_dir / "fit.json"

    @property
    def probe_summary_path(self) -> Path:
        return self.probe_dir / "summary.json"

    @property
    def compare_dir(self) -> Path:
        return self.root / "compare"

    def compare_rows(self, method: str) -> Path:
        """Graded rows of a method of `als compare` (cot, als, sc@k, latentseek-...)."""
        return self.compare_dir / f"{method}.jsonl"

    @property
    def compare_table_path(self) -> Path:
        return self.compare_dir / "table.json"

    @property
    def compare_verdicts_path(self) -> Path:
        return self.compare_dir / "verdicts.jsonl"

    @property
    def sweep_dir(self) -> Path:
        return self.root / "sweep"

    def sweep_rows(self, split: str, condition: str) -> Path:
        """Graded rows of a sweep condition (or 'cot') on a split."""
        return self.sweep_dir / split / f"{condition}.jsonl"

    def sweep_effects(self, split: str, condition: str) -> Path:
        """Next-token effects where the condition's steering fired (beside its rows)."""
        return self.sweep_dir / split / f"{condition}.effects.jsonl"

    def sweep_states(self, layer: int, site: str) -> Path:
        """Per-token fit residuals at one layer and site (a sweep's tau quantiles)."""
        return self.sweep_dir / f"fit-trajectories-{layer}-{site}"

    @property
    def sweep_grid_path(self) -> Path:
        return self.sweep_dir / "grid.json"

    @property
    def sweep_selection_path(self) -> Path:
        return self.sweep_dir / "selection.json"

    def export_path(self, fmt: str) -> Path:
        """Default file of an `als export` format (see `EXPORTS`)."""
        return self.root / "export" / EXPORTS[_known("export format", fmt, EXPORTS)]

    @property
    def jobs_dir(self) -> Path:
        """submitit's job scripts and logs (`--launch`)."""
        return self.root / "jobs"

    def unpublished(self) -> list[Path]:
        """What a published copy (`workbench.experiment.publish`) leaves out: the cached states
        (regenerated from the generations by teacher forcing when `als run` resumes on the
        folder), exports, job logs, figures and the report (regenerated from the tables)."""
        states = [self.fit_activations_dir, self.fit_final_dir, self.fit_trajectories_dir]
        states += [self.probe_states(name) for name in PROBE_STATES]
        states += sorted(self.sweep_dir.glob("fit-trajectories-*"))
        states.append(self.root / "router" / "prompt-states")  # a samples folder's router states
        return [*states, self.root / "export", self.jobs_dir, self.figures, self.report_path]

    # -- one writer -------------------------------------------------------------------------------
    def writer(self, *, command: str | None = None) -> AbstractContextManager[Path]:
        """Hold the folder's writer lock for a ``with`` block: another process that asks for it
        meanwhile is refused at once with a `WorkbenchError` naming the folder and this process
        (pid, host, `command`); the kernel releases it however this process ends, and a lock
        left by a killed process is taken over with a warning. Every `als` command that writes a
        run folder, and `workbench.stages.run_stage`, hold it for the whole command; Python code
        that writes a folder through the library directly wraps its writes::

            with RunDir("runs/als").writer():
                run_als(bridge, "runs/als", cfg)

        Re-entrant within a process; per block, not per process, so that a notebook that wrote
        a folder does not keep it from a terminal afterwards. See
        `workbench.experiment.writer_lock`."""
        from workbench.experiment.writer_lock import writer_lock

        return writer_lock(self.writer_lock_path, command=command)

    # -- the settings record ---------------------------------------------------------------------
    def record_settings(
        self,
        command: str,
        model: Mapping[str, Any],
        *,
        may_change: tuple[str, ...] = (),
        defaults: Mapping[str, Mapping[str, Any]] | None = None,
        **sections: Any,
    ) -> None:
        """Write the run's one settings record (`config.json`): the command, the model's
        `ModelConfig` fields and each settings section (run, generation, prompt, ...), with the
        provenance written once. Resuming with other settings is refused (`check_settings`);
        `defaults` (per section, the config's defaults) stand in for fields a record predates."""
        model = {k: v for k, v in model.items() if k != "self_check"}  # a debugging switch
        check_settings(
            self.settings_path,
            {"command": command, "model": model, **sections},
            may_change=may_change,
            first_record={"provenance": provenance(model)},
            defaults=defaults,
        )

    # -- typed loaders --------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return read_json(self.settings_path)

    def load_model(self, **overrides: Any) -> Any:
        """The bridge of the model the run recorded (device / dtype may be overridden)."""
        from workbench.sources.models import ModelConfig, load_model

        return load_model(ModelConfig(**{**self.settings()["model"], **overrides}))

    def results(self) -> dict[str, Any]:
        return read_json(self.results_path)

    def selection(self) -> dict[str, Any]:
        return read_json(self.selection_path)

    def generation(self) -> GenerationConfig:
        return GenerationConfig(**self.settings()["generation"])

    def prompt(self) -> PromptConfig:
        """The recorded prompt settings (runs made before they were recorded used the default)."""
        return PromptConfig(**self.settings().get("prompt", {}))

    def dataset(self) -> str:
        """The run's dataset (settings record; results of runs that predate it)."""
        als = self.settings().get("als") if self.settings_path.exists() else None
        return als["dataset"] if als else self.results()["config"]["dataset"]

    def problems(self, split: str, *, data_dir: str | Path | None = None) -> list[Problem]:
        """The problems of the run's split ('fit', 'val', 'test'), in the split file's order."""
        if split not in SPLITS:
            raise WorkbenchError(f"unknown split {split!r} of a run; use {', '.join(SPLITS)}")
        dataset = self.dataset()
        fit_source, test_source = EXPERIMENT_SPLITS[dataset]
        source = test_source if split == "test" else fit_source
        by_id = {p.id: p for p in load_problems(dataset, source, data_dir=data_dir)}
        return [by_id[i] for i in load_split(self.split_path(split))]

    def fit_states(self) -> ActivationSet:
        """The fit stage's cached states in the fit split's order, whatever order their shards
        were written in (as sequences finished, when recorded while decoding; longest first,
        when teacher-forced), so that cross-validated estimates do not depend on how they were
        cached."""
        return ActivationSet.load(self.fit_activations_dir).in_order(
            load_split(self.split_path("fit"))
        )

    def directions(self) -> LayerDirections:
        return LayerDirections.load(self.directions_path)

    def steering(self) -> SteeringSpec:
        """The steering chosen on validation data (the ALS condition of the test table)."""
        return SteeringSpec.from_json(self.results()["steering"])

    def rows(self, split: str, method: str) -> list[dict[str, Any]]:
        """Graded rows of `method` on `split`, one per problem (`read_rows`: a problem written
        twice, in a folder written before it had one writer, counts once)."""
        return read_rows(self.rows_path(split, method))

    # -- finished-stage checks ------------------------------------------------------------------
    def require_finished(self) -> RunDir:
        """Raise unless `als run` finished here (settings, selection and results written)."""
        for path in (self.settings_path, self.selection_path, self.results_path):
            if not path.exists():
                raise WorkbenchError(
                    f"{self.root} is not a finished `als run` folder ({path.name} is missing); "
                    "run `als run --out` on it first"
                )
        if "seconds_per_problem" not in self.results()["test"][0]:
            raise WorkbenchError(
                f"{self.root} was written before als-workbench 0.2 (older names in its "
                f"summaries); convert it once with `als upgrade {self.root}`"
            )
        return self

    def has_probe(self) -> bool:
        return self.probe_summary_path.exists()

    def has_sweep(self) -> bool:
        return self.sweep_grid_path.exists()

    def has_compare(self) -> bool:
        return self.compare_table_path.exists()


class SamplesDir(RunDir):
    """A folder written by `als sample`: its rows, its source run, its contrast tables."""

    @classmethod
    def of_samples(cls, folder: str | Path | RunDir) -> SamplesDir:
        """The samples folder at `folder`, refused unless `als sample` wrote it."""
        samples = cls(Path(folder.root if isinstance(folder, RunDir) else folder))
        if not samples.settings_path.exists() or samples.settings()["command"] != "sample":
            raise WorkbenchError(f"{samples.root} is not a folder written by `als sample`")
        return samples

    @property
    def router_dir(self) -> Path:
        """The router's table (`workbench.experiment.router_run`) on these samples' split."""
        return self.root / "router"

    @property
    def samples_path(self) -> Path:
        """The graded sampled chains, one row each."""
        return self.root / "samples.jsonl"

    @property
    def contrast_dir(self) -> Path:
        """The difficulty-controlled analysis (`workbench.experiment.contrast_run`)."""
        return self.root / "contrast"

    @property
    def contrast_summary_path(self) -> Path:
        return self.contrast_dir / "summary.json"

    def contrast_directions(self, kind: str) -> Path:
        """The folder of one of the three directions ('pooled', 'within', 'difficulty')."""
        return self.contrast_dir / kind

    @property
    def router_table_path(self) -> Path:
        return self.router_dir / "table.json"

    def router_states(self, split: str) -> Path:
        """The last prompt token's states of the source run's split (not published)."""
        return self.router_dir / "prompt-states" / split

    def contrast_table(self, name: str) -> Path:
        """A contrast table (gzipped JSONL: 'probes', 'cosines')."""
        return self.contrast_dir / f"{name}.jsonl.gz"

    def source(self) -> RunDir:
        """The run whose split was sampled."""
        return RunDir(Path(self.settings()["source_run"]))

    def sample_rows(self) -> list[dict[str, Any]]:
        return read_rows(self.samples_path)

    def sampled(self, *, data_dir: str | Path | None = None) -> list[Any]:
        """The sample problems (``id#j``) of the rows written so far, in decode order."""
        s = self.settings()
        problems = self.source().problems(s["split"], data_dir=data_dir)[: s["limit"]]
        have = {r["id"] for r in self.sample_rows()}
        return [p for p in sampled_problems(problems, SCConfig(**s["sampling"])) if p.id in have]
