"""MkDocs hooks (mkdocs.yml: `hooks`): the pages that are generated at build time.

- `reference/cli.md`: `als --help` and `als <command> --help` for every command of
  `workbench.cli.commands.COMMANDS`, rendered by the `als` entry point itself.
- `reference/api/*.md`: one page per layer of the library, a mkdocstrings block (`::: module`) for
  every module found on disk, and the package's exports (`workbench._EXPORTS`) on the index page.
- tutorials: a page holding ``<!-- notebook: notebooks/NAME.ipynb -->`` gets the notebook's cells
  there (markdown as is, code as Python blocks); a notebook that no page shows fails the build.
  The page's ``<!-- output: TEXT -->`` ... ``<!-- /output -->`` blocks are what a reader gets from
  the cells (numbers and figures of the committed runs under results/): each is moved under the
  one code cell whose source holds TEXT; an anchor that matches no cell, or several, fails the
  build.
- results: ``<!-- paper-table -->`` becomes the rows of `analyses/paper_table.py`, read from the
  published runs under results/ (no decoding), as two tables: ours, one per setting, and the
  paper's Table 1.
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
    "engine": "The decoding engine: one `decode` entry point (continuous batching or the static, "
    "graphable step), the KV cache, hook names and handles, the forward pass as hooks see it, "
    "the steering gate and its hooks, teacher-forced passes.",
    "core": "The science, no run folders: the steering specification, activations, directions, "
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
TOP_MODULES = ("workbench.stages", "workbench.errors", "workbench.checks", "workbench.cli.commands")
"""Modules of the `top` page: the stages by name, the error type, the CLI's argument classes."""

NOTEBOOK_MARK = re.compile(r"<!--\s*notebook:\s*(\S+)\s*-->")
ROLE = re.compile(r":(?:py:)?(?:func|class|data|meth|attr|mod|obj|exc|const):`~?([^`]+)`")
"""A Sphinx role (docs/griffe_roles.py turns those of the API pages into links)."""
SAMPLE_SUMMARY = re.compile(r"<!--\s*sample-summary:\s*(\S+)\s*-->")
OUTPUT_BLOCK = re.compile(r"<!--\s*output:\s*(.+?)\s*-->\n(.*?)<!--\s*/output\s*-->\n?", re.S)
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
        '<div class="api-exports" markdown>\n',  # extra.css: names are never broken
        "| name | what it is |",
        "|---|---|",
    ]
    for name, module in workbench._EXPORTS.items():
        doc = (getattr(workbench, name).__doc__ or "").strip().split("\n\n")[0]
        summary = ROLE.sub(r"`\1`", " ".join(doc.split())).replace("|", "\\|")
        lines.append(f"| [`{name}`][{module}.{name}] | {summary} |")
    lines.append("\n</div>")
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
    return _as_terminal_shows(buf.getvalue()).rstrip()


def _as_terminal_shows(text: str) -> str:
    """The text as a terminal draws it: a backspace erases the character before it (jsonargparse
    writes `--print_config \\b[=flags]` so that the option and its argument touch)."""
    return re.sub(r"[^\n\x08]?\x08", "", text)


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


def _sample_summary(folder: str) -> str:
    """What the samples published so far in `folder` (`als sample`, `als publish`) hold, computed
    when the site is built: the chains right, over the problems whose k chains are all there."""
    from workbench.core.artifacts import read_json, read_rows
    from workbench.methods.sampling import pass_rates

    path = ROOT / folder
    if not (path / "config.json").is_file():
        raise PluginError(f"docs: {folder} holds no config.json of `als sample`")
    k = read_json(path / "config.json")["sampling"]["k"]
    rows = read_rows(path / "samples.jsonl")
    rates = pass_rates(rows)
    done = [r for r in rates.values() if r.n == k]
    right = sum(r.correct for r in done)
    return (
        f"```text\n{len(rows)} chains published, of {len(rates)} problems; the {len(done)} "
        f"problems with all {k} chains: {right}/{k * len(done)} chains right; both outcomes on "
        f"{sum(r.mixed for r in done)} of {len(done)} problems\n```"
    )


def _output_blocks(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """The page without its ``<!-- output: ANCHOR -->`` blocks, and the blocks (anchor, body)."""
    blocks = [(m.group(1), m.group(2).strip()) for m in OUTPUT_BLOCK.finditer(markdown)]
    return OUTPUT_BLOCK.sub("", markdown), blocks


def _output_html(body: str) -> str:
    return f'<div class="nb-output" markdown>\n\n{body}\n\n</div>\n'


def _notebook_markdown(path: Path, outputs: list[tuple[str, str]] = ()) -> str:
    """The notebook's cells: markdown as is, code in Python blocks (the notebooks store no
    outputs), each code cell followed by the page's output blocks anchored to it; a note on where
    the notebook is and where its outputs come from after the first cell (title and summary)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    name = path.relative_to(ROOT).as_posix()
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    for anchor, _ in outputs:
        hits = sum(anchor in source for source in code)
        if hits != 1:
            raise PluginError(
                f"docs: the output block '{anchor}' matches {hits} code cells of {name}, not one"
            )
    note = (
        f'!!! note "The notebook and its outputs"\n    This page is `{name}`, cell by cell. The '
        "notebook stores no outputs: under its cells, marked *output*, is what the same steps gave "
        "on the real runs each one names (read from the data committed under `results/`, without "
        "decoding, or from the record of an earlier run), at those runs' sizes rather than the "
        "notebook's smaller defaults ([running the notebooks](index.md#running-them)).\n"
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
            out += [_output_html(body) for anchor, body in outputs if anchor in source]
        if len(out) == 1:
            out.append(note)
    return "\n".join(out)


def _cells(line: str) -> list[str]:
    """The cells of one Markdown table row (escaped pipes kept inside their cell)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _split_paper_table(markdown: str) -> str:
    """The paper table as the site shows it: `render_markdown`'s one wide table (ours and the
    paper's columns side by side, every setting's rows together) split into one table of ours per
    setting (dataset and prompt), then one of the paper's numbers beside the arm of ours that
    stands for each, then the notes. A column that holds one value on every row of a setting
    (its n, how it was timed) is said once above that setting's table, and a column that is
    empty there is left out. A table without dataset and prompt columns is returned as is."""
    lines = markdown.strip().splitlines()
    table = [line for line in lines if line.startswith("|")]
    notes = [line for line in lines if not line.startswith("|")]
    if len(table) < 3:
        return markdown
    head, rows = _cells(table[0]), [_cells(line) for line in table[2:]]
    if not {"dataset", "prompt", "method"} <= set(head):
        return markdown
    col = {name: i for i, name in enumerate(head)}
    theirs = [i for i, name in enumerate(head) if "(theirs)" in name]
    kept = ("method", "accuracy % [95% CI]")
    ours = [
        i for i, name in enumerate(head) if i not in theirs and name not in ("dataset", "prompt")
    ]
    out = ["### Ours\n"]
    for setting in dict.fromkeys((r[col["dataset"]], r[col["prompt"]]) for r in rows):
        group = [r for r in rows if (r[col["dataset"]], r[col["prompt"]]) == setting]
        shown, said = [], []
        for i in ours:
            values = {r[i] for r in group}
            if head[i] not in kept and values == {""}:
                continue  # empty in this setting
            if head[i] not in kept and len(values) == 1 and len(group) > 1:
                said.append(f"{head[i]}: {values.pop()}")
            else:
                shown.append(i)
        title = f"**{setting[0]}, prompt: {setting[1]}**"
        out.append(title + (f" ({'; '.join(said)})" if said else "") + "\n")
        out += [_row([head[i] for i in shown]), "|" + "---|" * len(shown)]
        out += [_row([r[i] for i in shown]) for r in group]
        out.append("")
    if theirs:
        out += [
            "### Theirs\n",
            "The paper's numbers beside the arm of ours that stands for each.\n",
        ]
        cols = ["dataset", "prompt", "our arm", *(head[i] for i in theirs)]
        out += [_row(cols), "|" + "---|" * len(cols)]
        last = None
        for r in rows:
            if not any(r[i] for i in theirs):
                continue
            setting = (r[col["dataset"]], r[col["prompt"]])
            first = list(setting) if setting != last else ["", ""]
            out.append(_row([*first, r[col["method"]], *(r[i] for i in theirs)]))
            last = setting
        out.append("")
    return "\n".join(out + notes).rstrip() + "\n"


def _paper_table() -> str:
    from workbench.report.paper_table import load_paper_numbers, paper_table, render_markdown

    results = ROOT / "results"
    folders = sorted(p for p in results.iterdir() if p.is_dir())  # runs, and routed samples
    rows = paper_table(folders, load_paper_numbers(ROOT / "analyses/data/als_paper_table1.json"))
    if not rows:
        raise PluginError("docs: no published run with a results.json under results/")
    return _split_paper_table(render_markdown(rows))


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
    markdown = SAMPLE_SUMMARY.sub(lambda m: _sample_summary(m.group(1)), markdown)
    markdown, outputs = _output_blocks(markdown)
    if outputs and not NOTEBOOK_MARK.search(markdown):
        raise PluginError(f"docs: {page.file.src_uri} has output blocks but shows no notebook")

    def notebook(match: re.Match[str]) -> str:
        path = ROOT / match.group(1)
        if not path.is_file():
            raise PluginError(f"docs: {page.file.src_uri} shows {match.group(1)}, which is missing")
        return _notebook_markdown(path, outputs)

    markdown = NOTEBOOK_MARK.sub(notebook, markdown)
    if PAPER_TABLE_MARK in markdown:
        markdown = markdown.replace(PAPER_TABLE_MARK, _paper_table())
    return markdown
