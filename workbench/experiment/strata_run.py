"""A run's fit probe within strata of a difficulty measured by sampled chains (`als probe
--probe.difficulty_from SAMPLES`).

The run's fit generations (one greedy chain a problem) are scored out of fold on each layer's
mean-difference direction, as `als probe` scores them (`workbench.core.probing`); the problems that
the samples folder sampled are then stratified by their pass rate there (correct chains out of k),
and `workbench.core.strata` ranks the pairs within a stratum. The samples may be another model's
(the 0.5B model's chains for the 1.5B model's run): the rows name the model that measured the
difficulty.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.core.activations import ActivationSet
from workbench.core.probing import cv_folds, oof_projection_scores
from workbench.core.strata import StrataConfig, strata_rows
from workbench.errors import WorkbenchError
from workbench.experiment.rundir import SamplesDir
from workbench.methods.sampling import pass_rates

__all__ = ["difficulty_strata"]


def difficulty_strata(
    aset: ActivationSet,
    position: str,
    samples: SamplesDir,
    *,
    n_folds: int = 5,
    cfg: StrataConfig = StrataConfig(),
) -> list[dict[str, Any]]:
    """Rows of `workbench.core.strata.strata_rows` for the fit problems that `samples` sampled,
    each with the position probed, the samples folder and the model whose pass rates stratify."""
    rates = pass_rates(samples.sample_rows())
    keep = [i for i, pid in enumerate(aset.problem_ids) if pid in rates]
    if len(keep) < 4:
        raise WorkbenchError(
            f"only {len(keep)} of the run's {len(aset)} fit problems were sampled in "
            f"{samples.root}: sample the run's fit split (`als sample RUN --split fit`)"
        )
    states = aset.at(position)[keep]
    y = aset.labels[keep]
    folds = cv_folds(y, n_folds, cfg.seed)
    scores = np.column_stack(
        [oof_projection_scores(states[:, j], y, folds) for j in range(states.shape[1])]
    )
    ids = [aset.problem_ids[i] for i in keep]
    strata = [(rates[p].correct, rates[p].n) for p in ids]
    rows = strata_rows(
        scores, y.numpy(), strata, np.array([rates[p].rate for p in ids]), aset.layers, cfg
    )
    tags = {
        "position": position,
        "difficulty_from": str(samples.root),
        "difficulty_model": samples.settings()["model"]["name"],
        "problems": len(keep),
    }
    return [{**r, **tags} for r in rows]
