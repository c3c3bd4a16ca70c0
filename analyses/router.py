"""The direction as a router of compute: accuracy against tokens and against seconds per problem.

python analyses/router.py --samples results/gsm8k-samples-test  # -> figures/router_tokens.*,
                                                                 #    figures/router_seconds.*
Reads the table `als route` wrote into DIR/router (CoT, SC@k, the run's ALS arms, the difficulty
router and a random router at each budget, the oracle); decodes nothing. Prints the table as
markdown: accuracy [Wilson 95%], McNemar against CoT and against SC@k everywhere, tokens and
seconds per problem, the paper's trade-off score (time normalised by SC@k's seconds) and each row's
gap to SC@k's score with a 95% interval over problems.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _figure import options

from workbench.core.artifacts import read_json, save_figure
from workbench.experiment.rundir import SamplesDir
from workbench.report.contrast_plots import router_frontier
from workbench.report.html import interval


@dataclass(frozen=True, kw_only=True)
class RouterFigures:
    """Where to read and write."""

    samples: str = "results/gsm8k-samples-test"
    """The test split's sampled chains, routed by `als route`."""
    out_dir: str = "figures"
    """Folder for the figure files."""


HEADER = (
    "| method | share to SC | accuracy [95% CI] | McNemar p vs CoT (fixed/broken) "
    "| McNemar p vs SC (SC only/row only) | tokens | seconds | trade-off "
    "| gap to SC's trade-off [95% CI] |\n" + "|---" * 9 + "|"
)


def _num(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _paired(row: Mapping[str, Any], p: str, a: str, b: str) -> str:
    if row.get(p) is None:
        return "-"
    return f"{row[p]:.3g} ({row[a]}/{row[b]})"


def render(table: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: one line per row of the router's table."""
    lines = [HEADER]
    for r in table:
        gap = r.get("tradeoff_gap_vs_sc") or {}
        cells = [
            r["method"],
            _num(r.get("share_expensive"), 2),
            interval(r["accuracy"], r["ci_low"], r["ci_high"]),
            _paired(r, "mcnemar_p", "only_method", "only_base"),
            _paired(r, "mcnemar_p_vs_sc", "only_sc", "only_method_vs_sc"),
            _num(r["tokens_per_problem"], 0),
            _num(r["seconds_per_problem"], 2),
            _num(r.get("tradeoff"), 1),
            interval(gap.get("value"), gap.get("ci_low"), gap.get("ci_high"), digits=1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_bins(out: Mapping[str, Any]) -> str:
    """Markdown: the router's score quartiles (lowest = predicted hardest) with the test
    problems' pass rates and SC@k's fixes and breaks of CoT."""
    lines = [
        f"Spearman of the test scores with the test problems' sampled pass rates: "
        f"{_num(out.get('spearman_test_pass_rate'), 3)}",
        "",
        "| score quartile | problems | mean pass rate | no sample right | CoT | SC | SC fixes | "
        "SC breaks |",
        "|---" * 8 + "|",
    ]
    for b in out["by_score"]:
        cells = [
            f"{b['bin'] + 1} (score <= {b['score_max']:.3g})",
            str(b["n"]),
            f"{b['pass_rate']:.3f}",
            f"{b['share_unsolved']:.2f}",
            f"{b['cheap_accuracy']:.3f}",
            f"{b['expensive_accuracy']:.3f}",
            str(b["fixes"]),
            str(b["breaks"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    cfg = options(RouterFigures, __doc__.splitlines()[0])
    path = SamplesDir(Path(cfg.samples)).router_table_path
    if not path.exists():
        print(f"error: {path} is missing: run `als route RUN --test_samples {cfg.samples}` first")
        return 2
    out = read_json(path)
    table = out["table"]
    print(render(table))
    if "by_score" in out:
        print(render_bins(out))
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
