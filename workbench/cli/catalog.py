"""The `als` subcommands by name with their one-line help: what `als --help` lists, importable
without the library (the command dataclasses, `workbench.cli.commands`, import torch)."""

from __future__ import annotations

__all__ = ["STAGE_NAMES", "SUMMARIES"]

STAGE_NAMES: tuple[str, ...] = (
    "splits",
    "fit",
    "labels",
    "directions",
    "select",
    "test",
    "retime",
    "probe",
    "compare",
    "sweep",
    "report",
)
"""`workbench.stages.STAGES`' names, in order (a test keeps the two equal)."""

SUMMARIES: dict[str, str] = {
    "generate": "graded chain-of-thought generation (resumable)",
    "sample": "k sampled, graded chains per problem of a run's split (resumable)",
    "derive": "a run steering with a sampled-chains direction (within, difficulty)",
    "route": "the difficulty direction as a router between CoT and SC@k",
    "run": "the ALS experiment: fit directions, select on validation, test vs CoT",
    "probe": "which layers carry the direction; drift trajectories (on a run folder)",
    "compare": "CoT, Self-Consistency, LatentSeek and ALS on a run's test problems",
    "sweep": "layer x alpha x tau x site x rule grid with controls, on validation",
    "stage": "rerun one stage of a run folder (" + ", ".join(STAGE_NAMES) + ")",
    "upgrade": "convert a run folder written before als-workbench 0.2",
    "export": "a run's steering for llama.cpp (GGUF) or lm-eval's steered model",
    "publish": "copy a run's results as small, reproducible data (results/)",
}
"""Subcommand -> its one-line help, in the order `als --help` lists them."""
