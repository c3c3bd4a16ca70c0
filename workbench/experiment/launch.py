"""Sweeps and comparisons as jobs through submitit: SLURM on a cluster, subprocesses here.

`launch_sweep` submits one job per sweep shard (``shard = i/n``), `launch_compare` one job per
method; each job loads the run's model and runs the same function a single ``als sweep`` /
``als compare`` process runs, writing rows into the run folder as it goes (so a job that dies
keeps what it finished, and rerunning resumes). The launcher waits, reports every failed job with
its log and the command that reruns it alone, and merges the rows found on disk into the table a
single process writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from workbench.errors import WorkbenchError
from workbench.experiment.rundir import RunDir

__all__ = ["LaunchConfig", "ShardFailure", "launch_compare", "launch_sweep"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LaunchConfig:
    """Where and how jobs run."""

    executor: Literal["local", "slurm"] = "local"
    """'slurm' (sbatch on a cluster) or 'local' (subprocesses of this machine; tests, laptops)."""
    jobs: int = 2
    """Sweep shards to split the grid into (compare: one job per method, whatever this is)."""
    folder: str | None = None
    """submitit's folder for job scripts and logs (default: <run>/jobs)."""
    timeout_min: int = 240
    """Wall-clock limit per job, minutes."""
    slurm_partition: str | None = None
    """SLURM partition (None: the cluster's default)."""
    gpus_per_node: int = 0
    """GPUs per job (SLURM)."""
    cpus_per_task: int = 4
    """CPU cores per job (SLURM)."""
    mem_gb: int = 32
    """Memory per job, GiB (SLURM)."""

    def __post_init__(self) -> None:
        if self.executor not in ("local", "slurm"):
            raise WorkbenchError(f"executor must be local or slurm, not {self.executor!r}")
        for name in ("jobs", "timeout_min", "cpus_per_task", "mem_gb"):
            if getattr(self, name) < 1:
                raise WorkbenchError(f"{name} must be >= 1, not {getattr(self, name)}")


@dataclass(frozen=True)
class ShardFailure:
    """A job that did not finish: what it was, why, where its log is, how to rerun it alone."""

    name: str
    error: str
    log: str
    rerun: str


def _executor(cfg: LaunchConfig, run: RunDir):
    import submitit

    folder = Path(cfg.folder) if cfg.folder else run.jobs_dir
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=cfg.executor)
    params: dict[str, Any] = {"timeout_min": cfg.timeout_min}
    if cfg.executor == "slurm":
        params.update(
            slurm_partition=cfg.slurm_partition,
            gpus_per_node=cfg.gpus_per_node,
            cpus_per_task=cfg.cpus_per_task,
            mem_gb=cfg.mem_gb,
        )
        params = {k: v for k, v in params.items() if v is not None}
    executor.update_parameters(**params)
    return executor


def _wait(jobs: list[tuple[str, Any, str]]) -> list[ShardFailure]:
    failures = []
    for name, job, rerun in jobs:
        try:
            job.result()
        except Exception as exc:  # a job's failure is reported, the others still count
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            errors = [line for line in lines if "Error" in line or "Exception" in line]
            failures.append(
                ShardFailure(
                    name=name,
                    error=(errors or lines or [type(exc).__name__])[-1],
                    log=str(job.paths.stderr),
                    rerun=rerun,
                )
            )
            logger.error("job %s failed (log: %s); rerun alone: %s", name, job.paths.stderr, rerun)
    return failures


def _overrides_flags(overrides: dict[str, Any]) -> str:
    return "".join(f" --{k} {v}" for k, v in overrides.items() if v)


def _job(
    stage: Callable[..., Any],
    run: str,
    cfg: Any,
    overrides: dict[str, Any],
    data_dir: str | None,
) -> int:
    """What a job runs: `stage(bridge, run, cfg, data_dir=...)` on the run's model (`stage` is
    one of `run_sweep`, `prepare_sweep`, `run_compare`, all of that signature)."""
    folder = RunDir(Path(run))
    stage(folder.load_model(**overrides), folder, cfg, data_dir=data_dir)
    return 0


def _submit(
    cfg: LaunchConfig,
    run: RunDir,
    stage: Callable[..., Any],
    shards: list[tuple[str, Any, str]],
    overrides: dict[str, Any],
    data_dir: str | None,
) -> list[ShardFailure]:
    executor = _executor(cfg, run)
    jobs = [
        (name, executor.submit(_job, stage, str(run.root), shard_cfg, overrides, data_dir), rerun)
        for name, shard_cfg, rerun in shards
    ]
    logger.info("submitted %d %s jobs: %s", len(jobs), cfg.executor, [j.job_id for _, j, _ in jobs])
    return _wait(jobs)


def launch_sweep(
    run: str | Path,
    cfg: Any,
    launch: LaunchConfig,
    *,
    overrides: dict[str, Any] | None = None,
    data_dir: str | None = None,
) -> tuple[list[dict[str, Any]], list[ShardFailure]]:
    """Run the sweep `cfg` as `launch.jobs` shard jobs; (merged table, failed shards)."""
    from workbench.experiment.sweeps import prepare_sweep, run_sweep, sweep_table

    folder = RunDir.of(run).require_finished()
    overrides = overrides or {}
    n = launch.jobs
    shards = [
        (
            f"sweep {i}/{n}",
            replace(cfg, shard=f"{i}/{n}"),
            f"als sweep {folder.root} --sweep.shard {i}/{n} (with this sweep's other options)"
            + _overrides_flags(overrides),
        )
        for i in range(n)
    ]
    # what all shards share (CoT rows, grid, fit-token states) first, in one job: shards writing
    # the same files at once would duplicate rows
    prepare = (
        "sweep setup",
        cfg,
        f"als sweep {folder.root} --sweep.shard 0/{n} (with this sweep's other options)"
        + _overrides_flags(overrides),
    )
    failures = _submit(launch, folder, prepare_sweep, [prepare], overrides, data_dir)
    if failures:
        return [], failures
    failures = _submit(launch, folder, run_sweep, shards, overrides, data_dir)
    return sweep_table(folder, cfg.split), failures


def launch_compare(
    run: str | Path,
    cfg: Any,
    launch: LaunchConfig,
    *,
    overrides: dict[str, Any] | None = None,
    data_dir: str | None = None,
) -> list[ShardFailure]:
    """Run each decoding method of the comparison `cfg` (sc, latentseek) as its own job; return
    the failed jobs. Then `run_compare` in one process finds every method's rows on disk and
    writes the table (cot and als reuse the run's rows)."""
    from workbench.experiment.compare import run_compare

    if cfg.retime:
        raise WorkbenchError(
            "--compare.retime decodes CoT once for every method: run it in one process, "
            "without --launch.executor"
        )
    folder = RunDir.of(run).require_finished()
    overrides = overrides or {}
    shards = [
        (
            f"compare {m}",
            replace(cfg, methods=(m,)),
            f"als compare {folder.root} --compare.methods {m} "
            "(with this comparison's other options)" + _overrides_flags(overrides),
        )
        for m in cfg.methods
        if m in ("sc", "latentseek")
    ]
    return _submit(launch, folder, run_compare, shards, overrides, data_dir) if shards else []
