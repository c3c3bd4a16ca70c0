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
    "ModelConfig": "workbench.models",
    "load_model": "workbench.models",
    "check_stack": "workbench.selfcheck",
    # data, prompts, grading
    "Problem": "workbench.data",
    "load_problems": "workbench.data",
    "split_problems": "workbench.data",
    "PromptConfig": "workbench.prompts",
    "encode_prompts": "workbench.prompts",
    "grade": "workbench.grading",
    # decoding and interventions
    "GenerationConfig": "workbench.generation",
    "Completion": "workbench.generation",
    "decode": "workbench.generation",
    "run_cot": "workbench.cot",
    "SteeringSpec": "workbench.steering",
    "steer": "workbench.steering",
    # activations, directions, probes, statistics
    "CacheConfig": "workbench.activations",
    "cache_activations": "workbench.activations",
    "LayerDirections": "workbench.directions",
    "fit_directions": "workbench.directions",
    "ProbeConfig": "workbench.probing",
    "probe_layers": "workbench.probing",
    "summarize": "workbench.records",
    "MethodSummary": "workbench.records",
    "GradedRow": "workbench.records",
    "mcnemar_exact": "workbench.evaluation",
    "wilson_interval": "workbench.evaluation",
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
