"""MkDocs hooks (mkdocs.yml: `hooks`): the pages that are generated at build time.

- `reference/cli.md`: `als --help` and `als <command> --help` for every command of
  `workbench.cli.commands.COMMANDS`, rendered by the `als` entry point itself.
- `reference/api/*.md`: one page per layer of the library, a mkdocstrings block (`::: module`) for
  every module found on disk, and the package's exports (`workbench._EXPORTS`) on the index page.
- tutorials: a page holding ``<!-- notebook: notebooks/NAME.ipynb -->`` gets the notebook's cells
  there (markdown as is, code as Python blocks); a notebook that no page shows fails the build.
- results: ``<!-- paper-table -->`` becomes the table of `analyses/paper_table.py`, read from the
  published runs under results/ (no decoding).
- `figures/**.png` and `results/earlier-runs.md` are copied in at their repository paths, so that
  the results pages show the committed figures.

Every failure raises `PluginError`, which stops the build (and so `mkdocs build --strict`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parent.parent

LAYERS: dict[str, str] = {
    "core": "The science, no run folders: decoding, hooks and steering, activations, directions, "
    "probes, prompts, grading, statistics, records, files.",
    "sources": "Where models and problems come from: model sources (hub id, local folder, the "
    "embedded default, tiny / toy / random-weight models), datasets and their disjoint splits, "
    "the load-time self-check.",
    "methods": "Graded, resumable decoding methods: CoT (ALS is CoT under `steer`), "
    "Self-Consistency, LatentSeek.",
    "experiment": "Stages over a run folder: `RunDir`, the stages of `als run`, `als probe`, "
    "`als compare`, `als sweep`, submitit jobs, the pre-0.2 converter, `als publish`.",
    "report": "Figure builders (tidy rows in, plotly figure out), the HTML page, the report "
    "stage, the paper-shaped table.",
    "interop": "`--model als` for lm-evaluation-harness; a run's steering as a llama.cpp control "
    "vector or an lm-eval steering file.",
}
TOP_MODULES = ("workbench.stages", "workbench.errors", "workbench.cli.commands")
"""Modules of the `top` page: the stages by name, the error type, the CLI's argument classes."""

NOTEBOOK_MARK = re.compile(r"<!--\s*notebook:\s*(\S+)\s*-->")
PAPER_TABLE_MARK = "<!-- paper-table -->"
MIRRORED = ("results/earlier-runs.md", "figures/*.png", "figures/history/*.png")


def _modules(package: str) -> list[str]:
    """Public modules of `workbench.<package>` found on disk (private `_x.py` left out)."""
    folder = ROOT / "workbench" / package
    names = sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
    return [f"workbench.{package}.{name}" for name in names]


def _api_block(identifier: str) -> str:
    return f"::: {identifier}\n"


def _api_layer_page(package: str) -> str:
    lines = [f"# workbench.{package}\n", LAYERS[package] + "\n"]
    lines += [_api_block(m) for m in _modules(package)]
    return "\n".join(lines)


def _api_top_page() -> str:
    lines = [
        "# Stages, errors, CLI arguments\n",
        "Every stage by name (`stages.fit(run)`, `als stage fit RUN`), the one error type of the "
        "workbench (a user error: one line, exit code 2), and the dataclasses the `als` options "
        "are generated from ([CLI reference](../cli.md)).\n",
    ]
    lines += [_api_block(m) for m in TOP_MODULES]
    return "\n".join(lines)


def _api_index_page() -> str:
    import workbench

    lines = [
        "# API reference\n",
        "Generated from the docstrings. The package exports its public API "
        "(`from workbench import load_model, steer, ...`); each layer of the library has its "
        "own page, one section per module (the layers: [Architecture](../../architecture.md)).\n",
        "| layer | what it holds |",
        "|---|---|",
    ]
    lines += [f"| [workbench.{k}]({k}.md) | {v} |" for k, v in LAYERS.items()]
    lines += ["| [stages, errors, cli](top.md) | stages by name, `WorkbenchError`, CLI args |"]
    lines += [
        "\n## The package's exports\n",
        "`from workbench import NAME` for each of these (and `workbench.__version__`); each name "
        "links to its documentation in its module.\n",
        "| name | what it is |",
        "|---|---|",
    ]
    for name, module in workbench._EXPORTS.items():
        doc = (getattr(workbench, name).__doc__ or "").strip().split("\n\n")[0]
        summary = " ".join(doc.split()).replace("|", "\\|")
        lines.append(f"| [`{name}`][{module}.{name}] | {summary} |")
    return "\n".join(lines)


def _help(argv: list[str]) -> str:
    """What `als ARGV` prints (it exits 0 after printing its help)."""
    from workbench.cli.main import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    if code not in (0, None) or not buf.getvalue().strip():
        raise PluginError(f"docs: `als {' '.join(argv)}` exited {code} and printed no help")
    return buf.getvalue().rstrip()


def _cli_page() -> str:
    from workbench.cli.commands import COMMANDS

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # the width argparse wraps help to
    try:
        lines = [
            "# CLI reference\n",
            "Generated at build time from the parser (`workbench.cli.parser`, built from the "
            "dataclasses of `workbench.cli.commands`): what `als --help` and "
            "`als <command> --help` print. Every option's text is the docstring under its field "
            "([API: CLI arguments](api/top.md)).\n",
            "| command | what it does |",
            "|---|---|",
        ]
        lines += [f"| [`als {n}`](#als-{n}) | {summary} |" for n, (_, summary) in COMMANDS.items()]
        lines += ["\n## `als`\n", "```text", _help(["--help"]), "```\n"]
        for name in COMMANDS:
            lines += [f"## `als {name}` {{#als-{name}}}\n", "```text", _help([name, "--help"])]
            lines += ["```\n"]
        return "\n".join(lines)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def _notebook_markdown(path: Path) -> str:
    """The notebook's cells: markdown as is, code in Python blocks (outputs are never stored),
    with a note on where the notebook is after its first cell (its title and summary)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    note = (
        f'!!! note "The notebook"\n    This page is `{path.relative_to(ROOT).as_posix()}`, cell by '
        "cell, without outputs: run it in Jupyter to see them "
        "([running the notebooks](index.md#running-them)).\n"
    )
    out = []
    for cell in cells:
        source = "".join(cell["source"]).strip()
        if not source:
            continue
        if cell["cell_type"] == "markdown":
            out.append(source + "\n")
        elif cell["cell_type"] == "code":
            out.append(f"```python\n{source}\n```\n")
        if len(out) == 1:
            out.append(note)
    return "\n".join(out)


def _paper_table() -> str:
    from workbench.report.paper_table import load_paper_numbers, paper_table, render_markdown

    results = ROOT / "results"
    folders = sorted(p for p in results.iterdir() if (p / "results.json").is_file())
    rows = paper_table(folders, load_paper_numbers(ROOT / "analyses/data/als_paper_table1.json"))
    if not rows:
        raise PluginError("docs: no published run with a results.json under results/")
    return render_markdown(rows)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    generated = {
        "reference/cli.md": _cli_page(),
        "reference/api/index.md": _api_index_page(),
        "reference/api/top.md": _api_top_page(),
        **{f"reference/api/{layer}.md": _api_layer_page(layer) for layer in LAYERS},
    }
    for uri, content in generated.items():
        files.append(File.generated(config, uri, content=content))
    for pattern in MIRRORED:
        for path in sorted(ROOT.glob(pattern)):
            uri = path.relative_to(ROOT).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    shown = set()
    for f in files.documentation_pages():
        if f.abs_src_path and f.src_uri.startswith("tutorials/"):
            shown |= set(NOTEBOOK_MARK.findall(Path(f.abs_src_path).read_text(encoding="utf-8")))
    missing = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "notebooks").glob("*.ipynb")
        if p.relative_to(ROOT).as_posix() not in shown
    )
    if missing:
        raise PluginError(f"docs: no tutorial page shows {', '.join(missing)} (docs/tutorials/)")
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    def notebook(match: re.Match[str]) -> str:
        path = ROOT / match.group(1)
        if not path.is_file():
            raise PluginError(f"docs: {page.file.src_uri} shows {match.group(1)}, which is missing")
        return _notebook_markdown(path)

    markdown = NOTEBOOK_MARK.sub(notebook, markdown)
    if PAPER_TABLE_MARK in markdown:
        markdown = markdown.replace(PAPER_TABLE_MARK, _paper_table())
    return markdown
