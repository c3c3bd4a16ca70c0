"""The `als` subcommands' arguments: one dataclass per command, nesting the library's own configs.

A command's options are the fields of its dataclass, and a nested config's options carry its
field name as a prefix, the same name under which the run folder's settings record (`config.json`)
stores it: `als run --als.n_fit 64 --generation.batch_size 16` builds
`RunArgs(als=ALSRunConfig(n_fit=64), generation=GenerationConfig(batch_size=16))`, and
`als run --config settings.yaml` reads the same nesting from a file (`--print_config` writes one).
`workbench.cli.main` generates the parser from these classes (jsonargparse) and does nothing but
dispatch and print; `--help` shows the docstring under every field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from workbench.cli.catalog import SUMMARIES
from workbench.core.prompts import PromptConfig
from workbench.engine.config import GenerationConfig
from workbench.experiment.compare import CompareConfig
from workbench.experiment.launch import LaunchConfig
from workbench.experiment.pipeline import ALSRunConfig
from workbench.experiment.probe_run import ProbeRunConfig
from workbench.experiment.sweeps import SweepConfig
from workbench.methods.baselines import SCConfig
from workbench.sources.models import ModelConfig
from workbench.stages import STAGES

__all__ = [
    "COMMANDS",
    "CompareArgs",
    "DataArgs",
    "DeriveArgs",
    "ExportArgs",
    "GenerateArgs",
    "ProbeArgs",
    "PublishArgs",
    "RouteArgs",
    "RunArgs",
    "RunFolderArgs",
    "SampleArgs",
    "StageArgs",
    "SweepArgs",
    "UpgradeArgs",
]

StageName = Literal[tuple(STAGES)]  # type: ignore[valid-type]


@dataclass(frozen=True)
class DataArgs:
    """Which problems."""

    dataset: Literal["gsm8k", "math", "math500", "toy"] = "gsm8k"
    """gsm8k, math (the MATH pool / MATH-500), math500 or toy."""
    split: str = "test"
    """gsm8k: train, test; math: pool, test."""
    limit: int | None = None
    """The first N problems of the split (None: all)."""


@dataclass(frozen=True)
class GenerateArgs:
    """Generate chains of thought, grade them against gold answers, write JSONL as it goes and a
    summary (accuracy with Wilson 95% CI, tokens, seconds); resumable. Paper scale on a GPU:
    --model.name Qwen/Qwen2.5-7B-Instruct --model.device cuda --model.dtype bfloat16
    --generation.batch_size 64 --generation.max_new_tokens 1024."""

    out: str = "runs/generate"
    """Output folder (resumed if it exists)."""
    data_dir: str | None = None
    """Folder with the JSONL files (default: $ALS_DATA_DIR, else ../shared/data)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The model."""
    data: DataArgs = field(default_factory=DataArgs)
    """The problems."""
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    """Decoding."""
    prompt: PromptConfig = field(default_factory=PromptConfig)
    """How a question becomes a prompt."""
    stop_at_answer: bool = True
    """Stop a sequence once its answer is complete (False: decode to EOS or the cap)."""


@dataclass(frozen=True)
class RunArgs:
    """The ALS experiment: fit per-layer success directions on graded CoT (fit split), choose
    layer, alpha and tau on a disjoint validation split, and compare CoT with ALS on held-out test
    problems; writes results.json, figures and report.html under --out, resumable. Paper scale on
    a GPU: --model.name Qwen/Qwen2.5-7B-Instruct --model.device cuda --model.dtype bfloat16
    --generation.batch_size 32 --generation.max_new_tokens 1024 --als.n_fit 1000 --als.n_val 200
    --als.n_test 1319 --als.alphas 0.05,0.1,0.2 --als.tau_quantiles 0.25,0.5,1.0
    --als.n_candidate_layers 4 --als.split_order first."""

    out: str = "runs/als"
    """Run folder (resumed if it exists)."""
    data_dir: str | None = None
    """Folder with the JSONL files (default: $ALS_DATA_DIR, else ../shared/data)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The model."""
    als: ALSRunConfig = field(default_factory=ALSRunConfig)
    """Sizes, splits and the selection grid."""
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    """Decoding."""
    prompt: PromptConfig = field(default_factory=PromptConfig)
    """How a question becomes a prompt."""


@dataclass(frozen=True)
class RunFolderArgs:
    """A command on a folder written by `als run`, with the run's own model and settings."""

    run_dir: str
    """Folder written by `als run`."""
    device: str | None = None
    """Override the run's device (e.g. cuda)."""
    dtype: str | None = None
    """Override the run's dtype."""
    data_dir: str | None = None
    """Folder with the JSONL files (default: $ALS_DATA_DIR, else ../shared/data)."""

    def overrides(self) -> dict[str, str]:
        """The model settings given on the command line (device, dtype)."""
        return {k: v for k, v in (("device", self.device), ("dtype", self.dtype)) if v}


@dataclass(frozen=True)
class SampleArgs:
    """k sampled chains of thought per problem of a run's split (its prompt and token cap), one
    graded row each with its text, tokens, sample index and seed (samples.jsonl under --out, as
    they finish; resumable); prints per-problem pass rates and SC@k. The chains' states, the
    within-problem directions and probes, and the router read these rows."""

    run_dir: str
    """Folder written by `als run` whose split is sampled (its dataset, prompt, token cap)."""
    out: str = "runs/samples"
    """Output folder (resumed if it exists)."""
    split: Literal["fit", "val", "test"] = "fit"
    """The run's split to sample."""
    limit: int | None = None
    """The first N problems of the split (None: all)."""
    sampling: SCConfig = field(default_factory=SCConfig)
    """k, temperature, top-p and base seed."""
    batch_size: int = 64
    """Sequences decoded together (continuous batching)."""
    device: str | None = None
    """Override the run's device (e.g. cuda)."""
    dtype: str | None = None
    """Override the run's dtype."""
    data_dir: str | None = None
    """Folder with the JSONL files (default: $ALS_DATA_DIR, else ../shared/data)."""

    overrides = RunFolderArgs.overrides


@dataclass(frozen=True)
class DeriveArgs:
    """Prepare a run that steers with the within-problem or difficulty direction of a folder of
    sampled chains (`als probe RUN --samples DIR` first), on its source run's splits, settings,
    grid and CoT rows; then `als stage select OUT` and `als stage test OUT` decode its validation
    grid and test arm."""

    samples: str
    """Folder written by `als sample` and analysed by `als probe --samples`."""
    kind: Literal["within", "difficulty"] = "within"
    """Which direction steers (difficulty: toward easier)."""
    out: str = "runs/derived"
    """The new run folder."""
    n_candidates: int = 2
    """Candidate layers: the best of the direction's own probe."""
    device: str | None = None
    """Override the run's device (e.g. cuda)."""
    dtype: str | None = None
    """Override the run's dtype."""
    data_dir: str | None = None
    """Folder with the JSONL files (default: $ALS_DATA_DIR, else ../shared/data)."""

    overrides = RunFolderArgs.overrides


@dataclass(frozen=True)
class RouteArgs(RunFolderArgs):
    """The difficulty direction as a router of compute on a finished run's test split: problems
    it predicts hard (last prompt token, threshold at each budget's quantile of the validation
    scores) take SC@k (the test split's sampled chains), the rest greedy CoT; beside CoT, SC@k,
    the run's ALS arms, a random router and the oracle; writes router/table.json."""

    fit_samples: str = "runs/gsm8k-samples-fit"
    """Sampled chains of the run's fit split, analysed by `als probe --samples`."""
    test_samples: str = "runs/gsm8k-samples-test"
    """Sampled chains of the run's test split (`als sample --split test`)."""
    budgets: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75)
    """Shares of problems sent to SC@k (comma-separated, e.g. 0.1,0.5)."""
    retime: int = 0
    """First decode CoT and the sampled chains of the first N test problems one after the other
    in this process, so that the table's seconds compare (tokens times each method's measured
    seconds per token); 0: use the rates an earlier `--retime` wrote, if any."""


@dataclass(frozen=True)
class ProbeArgs(RunFolderArgs):
    """Cross-validated per-layer probing with bootstrap CIs, early prediction, trajectories of
    cos(h_t, v) for CoT and ALS, and a PCA plane, for a folder made by `als run`; adds figures and
    a section to its report.html."""

    probe: ProbeRunConfig = field(default_factory=ProbeRunConfig)
    """What to probe."""
    samples: str | None = None
    """A folder of sampled chains of this run's problems (`als sample`): probe them instead,
    telling reasoning from difficulty (pooled and within-problem AUROC, the last prompt token's
    Spearman with pass rate, the three directions' cosines), into its contrast/ folder."""

    @property
    def folder_written(self) -> str:
        """The folder this command writes (the samples', or the run's)."""
        return self.samples or self.run_dir


@dataclass(frozen=True)
class CompareArgs(RunFolderArgs):
    """Like-for-like comparison on a folder made by `als run`: accuracy with CIs, paired tests vs
    CoT, seconds, tokens and passes per problem, speed-up of ALS, and the efficiency-accuracy
    score (accuracy gained per unit of extra relative compute over CoT)."""

    compare: CompareConfig = field(default_factory=CompareConfig)
    """Methods and budgets."""
    launch: LaunchConfig | None = None
    """Run the methods as submitit jobs (one per Self-Consistency / LatentSeek), wait, merge; e.g.
    --launch.executor slurm (None: in this process)."""


@dataclass(frozen=True)
class SweepArgs(RunFolderArgs):
    """Decode every condition of the layer x alpha x tau x site x rule grid (and the controls:
    random direction of the same norm, shuffled-label direction, negated direction) on the run's
    validation split; resumable per condition; --sweep.shard i/n runs every n-th condition for
    parallel jobs whose rows merge."""

    sweep: SweepConfig = field(default_factory=SweepConfig)
    """The grid."""
    select: bool = False
    """Then pick the best validation condition and evaluate only it and its controls on test."""
    launch: LaunchConfig | None = None
    """Run the shards as submitit jobs, wait, merge; e.g. --launch.executor local --launch.jobs 4
    (None: in this process)."""


@dataclass(frozen=True)
class StageArgs:
    """Run one stage of the experiment on a run folder with the run's own settings (config.json);
    it reads its inputs from the folder and resumes what is there."""

    name: StageName
    """The stage (in the experiment's order)."""
    run_dir: str
    """Folder written by `als run`."""
    device: str | None = None
    """Override the run's device (e.g. cuda)."""
    dtype: str | None = None
    """Override the run's dtype."""
    data_dir: str | None = None
    """Folder with the JSONL files (default: $ALS_DATA_DIR, else ../shared/data)."""
    limit: int | None = None
    """labels: self-verify the first N fit generations (their agreement with the gold labels on
    part of a large fit split; label_source 'self' needs them all); retime: the first N test
    problems (default 64)."""

    overrides = RunFolderArgs.overrides


@dataclass(frozen=True)
class UpgradeArgs:
    """Rename the summary fields of a run folder written before 0.2 to the current names
    (tokens_per_problem, seconds_per_problem, only_base / only_method, mcnemar_p with base); the
    graded rows are unchanged; running it twice changes nothing."""

    run_dir: str
    """Folder written by `als run` or `als generate`."""


@dataclass(frozen=True)
class ExportArgs:
    """Write the run's selected steering (alpha times the unit success-minus-failure direction, per
    steered layer) as a static vector. gguf: a llama.cpp control vector
    (general.architecture=controlvector, one F32 direction.N per layer, N the block whose output it
    is added to: our layer N at resid_post). lm-eval: the steer_path .pt of lm-eval's built-in
    'steered' model (hookpoint layers.N). THE GATE IS LOST: both add the vector at every position,
    prompt included, whatever cos(h, v) is; for conditional ALS in lm-eval use
    `python -m workbench.interop.lmeval --model als`."""

    run_dir: str
    """Folder written by `als run`."""
    format: Literal["gguf", "lm-eval"] = "gguf"
    """gguf (llama.cpp control vector) or lm-eval (steered-model .pt)."""
    out: str | None = None
    """File (default: RUN/export/control-vector.gguf or lm-eval-steer.pt)."""
    scale: float = 1.0
    """Multiplies the run's alpha."""
    layers: tuple[int, ...] | None = None
    """Layers to export (default: the run's)."""
    model_hint: str | None = None
    """Architecture name (default: the model's model_type)."""


@dataclass(frozen=True)
class PublishArgs:
    """Copy a run folder's results as data into a small folder for the repository (results/):
    settings, splits, graded generations and tables (JSONL gzipped, reproducible byte for byte),
    directions (safetensors), summaries, and MANIFEST.json with each file's sha256. Cached
    activations, exports, job logs, figures and the report stay out; the copy is itself a run
    folder (figures and report regenerate from it; `als run --out` on it resumes, caching the
    activations again by teacher forcing)."""

    run_dir: str
    """Folder written by `als run` (finished or not)."""
    out: str | None = None
    """Folder to write (default: results/<the run folder's name>); existing files are
    overwritten, none deleted."""


_CLASSES: dict[str, type] = {
    "generate": GenerateArgs,
    "sample": SampleArgs,
    "derive": DeriveArgs,
    "route": RouteArgs,
    "run": RunArgs,
    "probe": ProbeArgs,
    "compare": CompareArgs,
    "sweep": SweepArgs,
    "stage": StageArgs,
    "upgrade": UpgradeArgs,
    "export": ExportArgs,
    "publish": PublishArgs,
}
COMMANDS: dict[str, tuple[type, str]] = {n: (_CLASSES[n], help) for n, help in SUMMARIES.items()}
"""Subcommand -> (its arguments, its one-line help)."""
