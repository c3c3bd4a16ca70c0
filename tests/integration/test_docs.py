"""The documentation site builds with `mkdocs build --strict` (mkdocs.yml, docs/), offline.

The build renders the CLI reference from the parser and the API reference from the docstrings
(docs/hooks.py), so a command, a module or a docstring that breaks them fails here, as does a
broken link, a missing page, anchor or cross-reference, or a notebook without its tutorial page.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _build(config: Path, site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_docs_build_strict(tmp_path):
    site = tmp_path / "site"
    done = _build(ROOT / "mkdocs.yml", site, ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    cli = (site / "reference/cli/index.html").read_text(encoding="utf-8")
    from workbench.cli.commands import COMMANDS

    for name in COMMANDS:  # every command's own --help, rendered from the parser
        assert f"usage: als {name}" in cli, name
    api = (site / "reference/api/core/index.html").read_text(encoding="utf-8")
    assert 'id="workbench.core.steering.SteeringSpec"' in api
    assert "Where and how hard to steer." in api  # the class's docstring
    for page in ("tutorials/quickstart", "results", "benchmarks", "method", "how-to/gpu"):
        assert (site / page / "index.html").is_file(), page
    results = (site / "results/index.html").read_text(encoding="utf-8")
    assert "accuracy % [95% CI]" in results  # the table generated from results/
    assert 'id="ours"' in results and 'id="theirs"' in results  # split: ours, then the paper's
    assert (site / "figures/layer_curve.png").is_file()
    assert "\b" not in cli and "--print_config[=flags]" in cli  # as a terminal shows it
    for page in (site / "reference/api").rglob("index.html"):  # no raw Sphinx roles
        assert not re.search(r":(func|class|data|meth|attr):<code>", page.read_text("utf-8")), page
    index = (site / "reference/api/index.html").read_text(encoding="utf-8")
    assert 'class="api-exports"' in index  # extra.css keeps its names whole
    for page in sorted((ROOT / "docs/tutorials").glob("*.md")):
        if page.stem == "index":
            continue
        html = (site / "tutorials" / page.stem / "index.html").read_text(encoding="utf-8")
        assert 'class="nb-output"' in html, page.name  # every tutorial shows what its cells give


def test_broken_links_and_references_fail_the_build(tmp_path):
    """The site's own validation settings, on a page with a broken link and a missing reference."""
    settings = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[a page](missing.md)\n", encoding="utf-8")
    (docs / "api.md").write_text("# API\n\nSee [steer][workbench.no_such_thing].\n", "utf-8")
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "site_name": "t",
                "docs_dir": str(docs),
                "strict": True,
                "validation": settings["validation"],
                "plugins": ["autorefs"],
            }
        ),
        encoding="utf-8",
    )
    done = _build(config, tmp_path / "site", tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "missing.md" in out and "workbench.no_such_thing" in out, out


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_outputs_go_under_the_cell_they_name_and_a_lost_anchor_fails(tmp_path):
    from mkdocs.exceptions import PluginError

    hooks = _hooks()
    cells = [
        {"cell_type": "markdown", "source": ["# Title"]},
        {"cell_type": "code", "source": ["x = 1"]},
        {"cell_type": "code", "source": ["print(x)"]},
    ]
    notebook = tmp_path / "n.ipynb"
    notebook.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    hooks.ROOT = tmp_path
    page, outputs = hooks._output_blocks(
        "<!-- output: print(x) -->\n```text\n1\n```\n<!-- /output -->\n"
    )
    assert page == "" and outputs == [("print(x)", "```text\n1\n```")]
    text = hooks._notebook_markdown(notebook, outputs)
    assert text.index("print(x)") < text.index('class="nb-output"') < text.index("\n1\n")
    with pytest.raises(PluginError, match="matches 0 code cells"):
        hooks._notebook_markdown(notebook, [("no such line", "1")])


def test_the_paper_table_is_split_into_ours_per_setting_and_theirs():
    wide = "\n".join(
        [
            "| dataset | prompt | method | n | accuracy % [95% CI] | timed | valid JSON "
            "| Q (theirs) |",
            "|---|---|---|---|---|---|---|---|",
            "| GSM8K | P1 | CoT | 400 | 27.8 [23.6, 32.3] | together | | 91.0 / 85.5 |",
            "| GSM8K | P1 | ALS | 400 | 26.0 [21.9, 30.5] | together | | |",
            "| MATH-500 | P2 | CoT | 500 | 3.2 [2.0, 5.1] | together | 109/500 | 3.5 / 41.7 |",
            "| MATH-500 | P2 | ALS | 500 | 3.0 [1.8, 4.9] | apart | 118/500 | |",
            "",
            "A note.",
        ]
    )
    out = _hooks()._split_paper_table(wide)
    assert "**GSM8K, prompt: P1** (n: 400; timed: together)" in out  # said once, not per row
    assert "| method | accuracy % [95% CI] |\n" in out  # the empty JSON column left out
    assert "| method | accuracy % [95% CI] | timed | valid JSON |" in out  # differing: kept
    theirs = out[out.index("### Theirs") :]
    assert "| GSM8K | P1 | CoT | 91.0 / 85.5 |" in theirs and "| ALS |" not in theirs
    assert out.rstrip().endswith("A note.")
