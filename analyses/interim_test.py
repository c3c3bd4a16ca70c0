"""A test split still decoding: every arm on the problems all arms have finished (markdown).

python analyses/interim_test.py --run runs/math500-p1   # a live run, or its published copy
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from jsonargparse import ArgumentParser, set_parsing_settings

from workbench.errors import WorkbenchError
from workbench.experiment.interim import InterimTest, interim_test


@dataclass(frozen=True, kw_only=True)
class InterimConfig:
    """What to read."""

    run: str = "runs/math500-p1"
    """Run folder (live or published) whose test split is decoding."""
    base: str = "cot"
    """The arm the others are paired with."""


def render(view: InterimTest) -> str:
    """The view as a markdown table with its caveat."""
    done = ", ".join(f"{name} {n}" for name, n in view.finished.items())
    caveat = (
        " Rows finish in decoding order (longest prompts first, short chains sooner): not a random"
        " sample, so these are not estimates for the split."
        if view.n_common < view.n_split
        else " The split is complete."
    )
    p2 = any(arm.summary.json_valid is not None for arm in view.arms)  # graded from JSON
    lines = [
        f"Finished rows of {view.n_split} test problems: {done};"
        f" **{view.n_common} finished by every"
        f" arm**, compared below.{caveat}",
        "",
        "| arm | correct | accuracy % [95% CI] | fixed / broken | McNemar p | tokens | at cap"
        " | steered tokens | token-identical to base |" + (" valid JSON |" if p2 else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if p2 else ""),
    ]
    for arm in view.arms:
        s = arm.summary
        paired = "" if s.base is None else f"{s.only_method} / {s.only_base}"
        p = "" if s.mcnemar_p is None else f"{s.mcnemar_p:.2g}"
        lines.append(
            f"| {s.method} | {s.correct}/{s.n} | {100 * s.accuracy:.1f} [{100 * s.ci_low:.1f},"
            f" {100 * s.ci_high:.1f}] | {paired} | {p} | {s.tokens_per_problem:.0f} | {arm.at_cap}"
            f" | {100 * s.intervention_rate:.1f}% | {arm.identical_to_base}/{s.n} |"
            + (f" {s.json_valid or 0}/{s.n} |" if p2 else "")
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_class_arguments(InterimConfig, as_group=False)
    cfg = InterimConfig(**parser.parse_args().as_dict())
    try:
        view = interim_test(cfg.run, base=cfg.base)
    except (WorkbenchError, OSError) as exc:
        print(f"interim_test: error: {exc}", file=sys.stderr)
        return 2
    print(render(view), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
