"""The paper's Table 1, reproduced from the committed runs beside the paper's own numbers.

python analyses/paper_table.py  # -> results/paper_table.md (and printed); no decoding
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from jsonargparse import ArgumentParser, set_parsing_settings

from workbench.errors import WorkbenchError
from workbench.report.paper_table import load_paper_numbers, paper_table, render_markdown


@dataclass(frozen=True, kw_only=True)
class TableConfig:
    """Where to read and write."""

    results: str = "results"
    """Folder whose sub-folders are published run folders (`als publish`)."""
    paper: str = "analyses/data/als_paper_table1.json"
    """The paper's Table 1 as data."""
    out: str = "results/paper_table.md"
    """Markdown file written."""


def main() -> int:
    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_class_arguments(TableConfig, as_group=False)
    cfg = TableConfig(**parser.parse_args().as_dict())
    try:
        folders = sorted(p for p in Path(cfg.results).iterdir() if p.is_dir())
        rows = paper_table(folders, load_paper_numbers(cfg.paper))
        if not rows:
            raise WorkbenchError(f"no finished run folder (with results.json) under {cfg.results}")
    except (WorkbenchError, OSError) as exc:
        print(f"paper_table: error: {exc}", file=sys.stderr)
        return 2
    text = render_markdown(rows)
    Path(cfg.out).write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
