"""The documentation site builds with `mkdocs build --strict` (mkdocs.yml, docs/), offline.

The build renders the CLI reference from the parser and the API reference from the docstrings
(docs/hooks.py), so a command, a module or a docstring that breaks them fails here, as does a
broken link, a missing page, anchor or cross-reference, or a notebook without its tutorial page.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    assert (site / "figures/layer_curve.png").is_file()


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
