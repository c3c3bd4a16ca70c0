"""als-workbench: Amortized Latent Steering on TransformerLens 4.

The public API, importable from the package itself::

    from workbench import load_model, LayerDirections, SteeringSpec, steer, decode, encode_prompts

Names are imported on first use (PEP 562), so ``import workbench`` stays cheap and the experiment
never pulls in plotting libraries it does not use. An unknown name raises AttributeError.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("als-workbench")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

_EXPORTS: dict[str, str] = {
    # models and the stack
    "ModelConfig": "workbench.sources.models",
    "load_model": "workbench.sources.models",
    "check_stack": "workbench.sources.selfcheck",
    # data, prompts, grading
    "Problem": "workbench.sources.data",
    "load_problems": "workbench.sources.data",
    "split_problems": "workbench.sources.data",
    "PromptConfig": "workbench.core.prompts",
    "encode_prompts": "workbench.core.prompts",
    "encode_problems": "workbench.core.prompts",
    "grade": "workbench.core.grading",
    # decoding and interventions
    "GenerationConfig": "workbench.engine.config",
    "Completion": "workbench.engine.sequences",
    "decode": "workbench.engine.generation",
    "decode_static": "workbench.engine.static",
    "run_cot": "workbench.methods.cot",
    "run_arms": "workbench.methods.cot",
    "SteeringSpec": "workbench.core.steering",
    "steer": "workbench.core.steering",
    # activations, directions, probes, statistics
    "CacheConfig": "workbench.core.activations",
    "cache_activations": "workbench.core.activations",
    "LayerDirections": "workbench.core.directions",
    "fit_directions": "workbench.core.directions",
    "ProbeConfig": "workbench.core.probing",
    "probe_layers": "workbench.core.probing",
    "summarize": "workbench.core.records",
    "MethodSummary": "workbench.core.records",
    "GradedRow": "workbench.core.records",
    "mcnemar_exact": "workbench.core.evaluation",
    "wilson_interval": "workbench.core.evaluation",
    "tradeoff_scores": "workbench.core.evaluation",
    # run folders
    "RunDir": "workbench.experiment.rundir",
    "WorkbenchError": "workbench.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
