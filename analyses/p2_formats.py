"""Why P2 answers fail, per arm of one split: valid JSON objects and every failure (markdown).

python analyses/p2_formats.py --run results/math500-p2 --split test
python analyses/p2_formats.py --run runs/math500-p2 --split fit
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from jsonargparse import ArgumentParser, set_parsing_settings

from workbench.core.json_answer import P2_OUTCOMES
from workbench.errors import WorkbenchError
from workbench.experiment.interim import finished_together, split_tables
from workbench.report.p2_formats import P2Formats, p2_formats


@dataclass(frozen=True, kw_only=True)
class P2FormatsConfig:
    """What to read."""

    run: str = "results/math500-p2"
    """Run folder (live or published) decoded with the P2 prompt."""
    split: str = "test"
    """Split whose arms are counted: fit, val or test."""
    together: bool = True
    """Count only the problems every arm of the split has finished (a split still decoding)."""


def render(arms: list[P2Formats], *, split: str, finished: dict[str, int]) -> str:
    """The counts as a markdown table: each outcome's rows, with those cut at the cap."""
    n = arms[0].n if arms else 0
    done = ", ".join(f"{name} {k}" for name, k in finished.items())
    header = ["arm", "rows", "correct", "valid object (whole output)"] + [
        f"{k} (at cap)" for k in P2_OUTCOMES if k != "valid"
    ]
    lines = [
        f"Split {split}: {n} problems counted per arm (finished: {done}).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for a in arms:
        cells = [a.method, str(a.n), str(a.correct), f"{a.outcomes['valid']} ({a.whole})"] + [
            f"{a.outcomes[k]} ({a.at_cap[k]})" for k in P2_OUTCOMES if k != "valid"
        ]
        lines.append("| " + " | ".join(cells) + " |")
    escapes = [f"{a.method}: {_escapes(a.escapes)}" for a in arms if a.escapes]
    if escapes:
        where = "Invalid escapes, by the escape where the parse failed: "
        lines += ["", where + "; ".join(escapes) + "."]
    return "\n".join(lines) + "\n"


def _escapes(counts: dict[str, int], top: int = 3) -> str:
    """The `top` most frequent escapes with their counts, then how many others."""
    shown = [f"`{esc}` {k}" for esc, k in list(counts.items())[:top]]
    rest = sum(list(counts.values())[top:])
    return ", ".join(shown + ([f"other {rest}"] if rest else []))


def main() -> int:
    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_class_arguments(P2FormatsConfig, as_group=False)
    cfg = P2FormatsConfig(**parser.parse_args().as_dict())
    try:
        tables = split_tables(cfg.run, cfg.split)
    except (WorkbenchError, OSError) as exc:
        print(f"p2_formats: error: {exc}", file=sys.stderr)
        return 2
    if not tables:
        print(
            f"p2_formats: error: {cfg.run}/{cfg.split} holds no rows: name a run folder and one"
            " of its splits (fit, val, test)",
            file=sys.stderr,
        )
        return 2
    tables = dict(sorted(tables.items(), key=lambda kv: kv[0] != "cot"))  # CoT first
    counted = finished_together(tables) if cfg.together else tables
    arms = [p2_formats(rows, method=name) for name, rows in counted.items()]
    finished = {name: len(rows) for name, rows in tables.items()}
    print(render(arms, split=cfg.split, finished=finished), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
