"""The layering the README promises, checked on the imports themselves."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

EXPERIMENT = [
    f"experiment.{m}" for m in ("pipeline", "probe_run", "compare", "sweeps", "rundir")
] + ["core.selection"]
PURE = ["core.directions", "core.probing", "core.projection", "core.evaluation", "report.plotting"]
LAYERS = [
    "engine",
    "core",
    "sources",
    "methods",
    "experiment",
    "report",
    "interop",
    "stages",
    "cli",
]
"""The packages (and the `stages` module, every stage by name) from the bottom up: a module
imports only from its own layer or the ones below (and `workbench.errors` and `workbench.checks`,
below them all)."""
PACKAGE = Path(__file__).parents[2] / "workbench"


def _imported_after(modules: list[str]) -> set[str]:
    code = (
        "import sys\nimport workbench\n"
        + "".join(f"import workbench.{m}\n" for m in modules)
        + "print('\\n'.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_experiment_stages_import_no_plotting_library():
    loaded = _imported_after(EXPERIMENT)
    assert not {m for m in loaded if m.split(".")[0] in ("plotly", "kaleido")}
    assert "workbench.report.run_report" not in loaded and "workbench.report.plotting" not in loaded


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_transformer_lens(module):
    assert "transformer_lens" not in _imported_after([module])


def test_package_import_is_lazy():
    loaded = _imported_after([])
    assert "workbench" in loaded
    assert "torch" not in loaded and "workbench.sources.models" not in loaded


def test_jaxtyping_shapes_are_checked_in_the_tests():
    import torch
    from jaxtyping import TypeCheckError

    from workbench.core.projection import drift_measures

    assert drift_measures(torch.zeros(3), 0.1)["frac_below_tau"] == 1.0
    with pytest.raises(TypeCheckError):
        drift_measures(torch.zeros(3, 2), 0.1)  # annotated Float[Tensor, " tokens"]


def _workbench_imports(path: Path) -> set[str]:
    """The workbench modules a file imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.startswith("workbench.")}


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_import_only_downwards(layer):
    allowed = {"workbench.errors", "workbench.checks"} | {
        f"workbench.{x}" for x in LAYERS[: LAYERS.index(layer) + 1]
    }
    paths = (
        (PACKAGE / layer).glob("*.py") if (PACKAGE / layer).is_dir() else [PACKAGE / f"{layer}.py"]
    )
    for path in paths:
        bad = {m for m in _workbench_imports(path) if not any(m.startswith(a) for a in allowed)}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)} from a layer above"
