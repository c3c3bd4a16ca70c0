"""A run folder as data: the small, reproducible copy that `results/` folders hold.

`publish_run` copies what a reader needs to regenerate every table and figure of a run without
decoding: the settings record (with the lock's and the model's sha256), the splits, every graded
generation, probe, sweep and compare table (JSONL gzipped, byte-for-byte reproducible), the
directions (safetensors) and the summaries (JSON). It leaves out what `RunDir.unpublished` names:
cached activations (teacher forcing regenerates them from the generations: `als run --out` on a
copy of the folder resumes there), exports, job logs, figures and the report. `MANIFEST.json`
lists each file with its size and sha256.

A run still decoding may be published (its finished rows so far; a line being written is left
out, and the run's files are never touched). The copy is itself a run folder: `read_jsonl` reads
the gzipped tables, so the report stage and the `analyses/` scripts take it as `--run`, and
`als run --out` on it resumes (unpacking a table before appending to it).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.artifacts import read_jsonl, write_json, write_jsonl_gz
from workbench.errors import WorkbenchError
from workbench.experiment.rundir import RunDir

__all__ = ["MANIFEST", "Published", "publish_run"]

logger = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
_COPIED = (".json", ".safetensors", ".gz")


@dataclass(frozen=True)
class Published:
    """What `publish_run` wrote."""

    root: Path
    """The published folder."""
    files: dict[str, dict[str, Any]]
    """Relative path -> {"bytes", "sha256"}, as in `MANIFEST.json`."""

    @property
    def total_bytes(self) -> int:
        return sum(f["bytes"] for f in self.files.values())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sources(run: RunDir) -> list[Path]:
    """The run's files that are published, in a stable order (a plain table wins over a gzipped
    copy of itself left by an earlier publication)."""
    skip = run.unpublished()
    found = []
    for path in sorted(run.root.rglob("*")):
        if not path.is_file() or path.name == MANIFEST:
            continue
        if any(path == s or s in path.parents for s in skip):
            continue
        if path.name.endswith(".jsonl.gz") and path.with_suffix("").exists():
            continue
        if path.suffix == ".jsonl" or path.suffix in _COPIED:
            found.append(path)
    return found


def publish_run(run: str | Path | RunDir, out: str | Path) -> Published:
    """Copy the publishable part of `run` into `out` (created; files there are overwritten,
    none deleted) and write its manifest."""
    run, out = RunDir.of(run), Path(out)
    if not run.settings_path.exists():
        raise WorkbenchError(f"{run.root} is not a run folder (no {run.settings_path.name})")
    if out.resolve() == run.root.resolve() or run.root.resolve() in out.resolve().parents:
        raise WorkbenchError(f"publish into a folder outside the run, not {out}")
    files: dict[str, dict[str, Any]] = {}
    for path in _sources(run):
        rel = path.relative_to(run.root)
        if path.suffix == ".jsonl":
            rel = rel.with_name(rel.name + ".gz")
            write_jsonl_gz(out / rel, read_jsonl(path, repair=False))  # the run may be live
        else:
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / rel)
        files[rel.as_posix()] = {"bytes": (out / rel).stat().st_size, "sha256": _sha256(out / rel)}
    write_json(out / MANIFEST, {"source": run.root.name, "files": files})
    published = Published(out, files)
    logger.info("published %d files, %.1f MB, to %s", len(files), published.total_bytes / 1e6, out)
    return published
