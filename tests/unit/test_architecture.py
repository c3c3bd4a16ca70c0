"""The layering the README promises, checked on the imports themselves."""

from __future__ import annotations

import subprocess
import sys

import pytest

EXPERIMENT = ["pipeline", "probe_run", "compare", "sweeps", "stages", "rundir", "selection"]
PURE = ["directions", "probing", "projection", "evaluation", "plotting"]


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
    assert "workbench.run_report" not in loaded and "workbench.plotting" not in loaded


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_transformer_lens(module):
    assert "transformer_lens" not in _imported_after([module])


def test_package_import_is_lazy():
    loaded = _imported_after([])
    assert "workbench" in loaded
    assert "torch" not in loaded and "workbench.models" not in loaded


def test_jaxtyping_shapes_are_checked_in_the_tests():
    import torch
    from jaxtyping import TypeCheckError

    from workbench.projection import drift_measures

    assert drift_measures(torch.zeros(3), 0.1)["frac_below_tau"] == 1.0
    with pytest.raises(TypeCheckError):
        drift_measures(torch.zeros(3, 2), 0.1)  # annotated Float[Tensor, " tokens"]
