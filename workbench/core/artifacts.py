"""Files of a run: JSONL written as it goes (and read back to resume), JSON, figures.

A JSONL file may also be stored gzipped beside its name (``rows.jsonl.gz``, as `results/`
folders hold them): `read_jsonl` reads it when the plain file is absent, and `append_jsonl`
first unpacks it, so that a published folder resumes as a run folder.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

__all__ = [
    "append_jsonl",
    "gzipped",
    "read_json",
    "read_jsonl",
    "read_rows",
    "save_figure",
    "write_json",
    "write_jsonl_gz",
]

logger = logging.getLogger(__name__)


def gzipped(path: str | Path) -> Path:
    """The gzipped sibling of a JSONL file (``x.jsonl`` -> ``x.jsonl.gz``)."""
    path = Path(path)
    return path.with_name(path.name + ".gz")


def jsonl_exists(path: str | Path) -> bool:
    """Whether JSONL rows are at `path`, plain or gzipped (as `read_jsonl` reads them)."""
    return Path(path).exists() or gzipped(path).exists()


def write_jsonl_gz(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Rows as gzipped JSONL, byte-for-byte reproducible (no time stamp in the gzip header)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(text.encode("utf-8"))


def append_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append rows and flush them to disk: a killed run loses at most the batch in flight."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    packed = gzipped(path)
    if not path.exists() and packed.exists():  # a published folder, resumed: unpack first
        path.write_bytes(gzip.decompress(packed.read_bytes()))
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _gzipped_rows(path: Path) -> list[dict[str, Any]]:
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_jsonl(path: str | Path, *, repair: bool = True) -> list[dict[str, Any]]:
    """Rows of a JSONL file, of a gzipped one (named ``.jsonl.gz``), or of the gzipped sibling of
    an absent plain file; a truncated last line of a plain file (killed mid-write) is dropped, and
    with `repair` also from the file (`repair=False` for a reader beside a live writer, which may
    be mid-line)."""
    path = Path(path)
    if path.suffix == ".gz" and path.exists():
        return _gzipped_rows(path)
    if not path.exists():
        packed = gzipped(path)
        return _gzipped_rows(packed) if packed.exists() else []
    rows: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except UnicodeDecodeError as exc:
        gz = " (it is gzipped: name it .jsonl.gz)" if path.read_bytes()[:2] == b"\x1f\x8b" else ""
        raise WorkbenchError(f"{path} is not UTF-8 JSONL{gz}") from exc
    for n, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if n == len(lines):
                if repair:
                    logger.warning("%s: dropping a truncated last line (interrupted write)", path)
                    with path.open("w", encoding="utf-8") as f:
                        f.writelines(lines[:-1])
                break
            raise WorkbenchError(f"{path}:{n} is not valid JSON; delete the file to rerun") from exc
    return rows


_DUPLICATES_WARNED: set[tuple[str, int]] = set()


def read_rows(path: str | Path, *, repair: bool = True) -> list[dict[str, Any]]:
    """Per-problem rows of a JSONL file (graded generations, labels, effects): `read_jsonl`, one
    row per problem ``id``. A folder written by two processes at once, before run folders had one
    writer (`workbench.experiment.writer_lock`), may hold a problem twice: the first row is kept
    and a warning names the file and how many were left out. Not for tables with several rows per
    id (probe tables, compare verdicts): those are read with `read_jsonl`."""
    rows = read_jsonl(path, repair=repair)
    seen: set[Any] = set()
    kept = []
    for row in rows:
        if row["id"] not in seen:
            seen.add(row["id"])
            kept.append(row)
    if len(kept) < len(rows) and (str(path), len(rows)) not in _DUPLICATES_WARNED:
        _DUPLICATES_WARNED.add((str(path), len(rows)))  # once per file and size, not per read
        logger.warning(
            "%s: %d duplicate rows left out (a problem written twice, by two processes at once); "
            "kept the first row of each problem",
            path,
            len(rows) - len(kept),
        )
    return kept


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)


def read_json(path: str | Path) -> Any:
    """Read a JSON file, with a clear error when it is missing or broken."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise WorkbenchError(f"{path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise WorkbenchError(f"{path} is not valid JSON ({exc})") from exc


def check_settings(
    path: str | Path,
    settings: Mapping[str, Any],
    *,
    may_change: tuple[str, ...] = (),
    first_record: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Record a run folder's settings in `path` (its config.json); refuse to resume other ones.

    Settings are compared as JSON reads them back (tuples are lists). A key recorded before with
    another value raises, except keys in `may_change` (e.g. a larger --limit; ``section.key`` for
    a field of a section, e.g. ``generation.batch_size``); keys absent from the record are added.
    `first_record` holds entries written only when the record is new.
    `defaults` gives, per section, the values that a record written before a field existed
    stands for (that run used the field's default), so adding a field keeps old runs resumable.
    """
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise WorkbenchError(f"{path.parent} exists and is not a folder; choose another --out")
    new = json.loads(json.dumps(settings, default=str))
    old = read_json(path) if path.exists() else dict(first_record or {})
    filled = json.loads(json.dumps(defaults or {}, default=str))
    for key, section in filled.items():
        if isinstance(old.get(key), dict):
            old[key] = {**section, **old[key]}
    changed = [k for k, v in new.items() if k in old and _differs(k, old[k], v, may_change)]
    if changed and path.exists():
        raise WorkbenchError(
            f"{path.parent} holds a run with other settings ({', '.join(changed)}); "
            "use another output folder (--out), or delete that one to start again"
        )
    write_json(path, {**old, **new})


def _differs(key: str, old: Any, new: Any, may_change: tuple[str, ...]) -> bool:
    """Whether setting `key` changed, leaving out what `may_change` allows to."""
    if key in may_change:
        return False
    free = {m.split(".", 1)[1] for m in may_change if m.startswith(key + ".")}
    if free and isinstance(old, dict) and isinstance(new, dict):
        old = {k: v for k, v in old.items() if k not in free}
        new = {k: v for k, v in new.items() if k not in free}
    return old != new


_PNG_WARNED = False
_PNG_HUNG = False
PNG_TIMEOUT_S = 180.0
"""Seconds a PNG export may take (env ALS_PNG_TIMEOUT): kaleido's Chrome has been seen to hang
under a long decode's load, and a figure must not stall a queue of runs."""


def _write_png(fig: Any, path: Path, scale: float, timeout: float) -> None:
    """`fig.write_image` in a daemon thread; TimeoutError when it takes over `timeout` s."""
    failed: list[BaseException] = []

    def work() -> None:
        try:
            fig.write_image(path, scale=scale)
        except Exception as exc:  # reported in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=work, daemon=True, name="png-export")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"PNG export took over {timeout:g} s; PNGs are off for this process")
    if failed:
        raise failed[0]


def save_figure(
    fig: Any, path_stem: str | Path, *, png: bool = True, scale: float = 2.0
) -> list[Path]:
    """Save a plotly figure as HTML and, when a Chrome is available to kaleido, as PNG.

    Setting the environment variable ALS_PNG=0 skips PNG export (tests do, to save time). An
    export that takes over ALS_PNG_TIMEOUT seconds (`PNG_TIMEOUT_S`) is abandoned with a warning,
    and the rest of the process writes HTML only.
    """
    global _PNG_WARNED, _PNG_HUNG
    png = png and os.environ.get("ALS_PNG", "1") != "0" and not _PNG_HUNG
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    html = stem.with_suffix(".html")
    # a fixed div id (not plotly's random one): rewriting a figure gives the same bytes
    fig.write_html(html, include_plotlyjs="cdn", div_id=stem.name)
    written = [html]
    if png:
        timeout = float(os.environ.get("ALS_PNG_TIMEOUT", PNG_TIMEOUT_S))
        try:
            _write_png(fig, stem.with_suffix(".png"), scale, timeout)
            written.append(stem.with_suffix(".png"))
        except Exception as exc:  # kaleido without a Chrome, a broken or a hung Chrome
            if isinstance(exc, TimeoutError):
                _PNG_HUNG = True
                logger.warning("%s (a hung Chrome?); HTML only.", exc)
            elif not _PNG_WARNED:
                logger.warning(
                    "PNG export failed (%s); HTML only. Install a Chrome for kaleido, "
                    "e.g. `apt-get install -y chromium`.",
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
                _PNG_WARNED = True
    return written
