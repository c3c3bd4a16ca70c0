"""The direction as a router of compute: accuracy against tokens and against seconds per problem.

python analyses/router.py --samples results/gsm8k-samples-test  # -> figures/router_tokens.*,
                                                                 #    figures/router_seconds.*
Reads the table `als route` wrote into DIR/router (CoT, SC@k, the run's ALS arms, the difficulty
router and a random router at each budget, the oracle); decodes nothing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from _figure import options

from workbench.core.artifacts import read_json, save_figure
from workbench.experiment.rundir import SamplesDir
from workbench.report.contrast_plots import router_frontier


@dataclass(frozen=True, kw_only=True)
class RouterFigures:
    """Where to read and write."""

    samples: str = "results/gsm8k-samples-test"
    """The test split's sampled chains, routed by `als route`."""
    out_dir: str = "figures"
    """Folder for the figure files."""


def main() -> int:
    cfg = options(RouterFigures, __doc__.splitlines()[0])
    path = SamplesDir(Path(cfg.samples)).router_table_path
    if not path.exists():
        print(f"error: {path} is missing: run `als route RUN --test_samples {cfg.samples}` first")
        return 2
    table = read_json(path)["table"]
    written = []
    for name, cost in (
        ("router_tokens", "tokens_per_problem"),
        ("router_seconds", "seconds_per_problem"),
    ):
        written += save_figure(router_frontier(table, cost=cost), Path(cfg.out_dir) / name)
    print("wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
