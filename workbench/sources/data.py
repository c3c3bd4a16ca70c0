"""Benchmark problems (GSM8K, MATH-500 and the MATH pool), named id splits and leak checks.

Local JSONL files (see ``shared/data/README.md``) and the Hugging Face Hub give identical
:class:`Problem` records, because both go through one record builder per dataset. MATH ids
are content hashes, so a problem has the same id in MATH-500 and in the 5000-problem file.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from workbench.core.grading import Family, boxed_answers
from workbench.core.problems import Problem
from workbench.errors import WorkbenchError
from workbench.sources.registry import Registry
from workbench.sources.toy import TOY_SPLITS, toy_problems

__all__ = [
    "DATASETS",
    "EXPERIMENT_SPLITS",
    "Dataset",
    "Family",
    "Problem",
    "check_disjoint",
    "load_problems",
    "load_split",
    "register_dataset",
    "save_split",
    "split_problems",
]

logger = logging.getLogger(__name__)

Loader = Callable[[str, str, "str | Path | None", str], Sequence[Problem]]
"""(dataset, split, data_dir, source) -> the split's problems in file order."""


@dataclass(frozen=True)
class Dataset:
    """A registered dataset."""

    splits: tuple[str, ...]
    """Its splits: the first is where fit and validation problems are drawn from, the last is the
    held-out test split."""
    load: Loader
    """How to load one split (`load_problems` checks the names and applies the limit)."""


DATASETS: Registry[Dataset] = Registry("dataset")
"""Dataset name -> `Dataset`. ``gsm8k`` (train, test); ``math`` (pool: the 4,500 MATH test problems
outside MATH-500, test: MATH-500); ``toy``: single-digit sums built in code
(`workbench.sources.toy`), for smoke runs with the toy model. Add one with `register_dataset`."""

EXPERIMENT_SPLITS: dict[str, tuple[str, str]] = {}
"""Dataset -> (split that fit and validation problems are drawn from, held-out test split)."""


def register_dataset(name: str, splits: tuple[str, ...], load: Loader) -> None:
    """Make `name` loadable by `load_problems` and usable by `als run --als.dataset`."""
    DATASETS.register(name, Dataset(splits=splits, load=load))
    EXPERIMENT_SPLITS[name] = (splits[0], splits[-1])


_M500, _M5000 = "math500/test.jsonl", "math/test5000.jsonl"
_FILES = {
    ("gsm8k", "train"): ("gsm8k/train.jsonl",),
    ("gsm8k", "test"): ("gsm8k/test.jsonl",),
    ("math", "test"): (_M500,),
    ("math", "pool"): (_M500, _M5000),
}
"""Local files (relative to the data folder) that each split is built from."""
_SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)
_HUB: dict[str, tuple[str, tuple[str | None, ...], str]] = {
    "gsm8k/train.jsonl": ("openai/gsm8k", ("main",), "train"),
    "gsm8k/test.jsonl": ("openai/gsm8k", ("main",), "test"),
    _M500: ("HuggingFaceH4/MATH-500", (None,), "test"),
    _M5000: ("EleutherAI/hendrycks_math", _SUBJECTS, "test"),
}
"""Local file -> the Hub dataset, configs and split holding the same rows."""
_POOL_SIZE = 4500
_HINT = "pass --data_dir (or set ALS_DATA_DIR) to the folder holding gsm8k/, math500/ and math/"


def _field(row: Mapping[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise WorkbenchError(
            f"{where}: missing or empty required field {key!r}; restore the original data file"
        )
    return value


def _gsm8k_problem(row: Mapping[str, Any], split: str, index: int, where: str) -> Problem:
    question, solution = _field(row, "question", where), _field(row, "answer", where)
    if "####" not in solution:
        raise WorkbenchError(f"{where}: 'answer' has no '#### <answer>' line; restore the file")
    answer = solution.rsplit("####", 1)[1].strip().replace(",", "")
    meta = {"dataset": "gsm8k", "split": split, "index": index, "solution": solution}
    return Problem(
        id=f"gsm8k/{split}/{index:04d}", family="gsm8k", question=question, answer=answer, meta=meta
    )


def _math_id(problem: str) -> str:
    return "math/" + hashlib.sha1(problem.strip().encode("utf-8")).hexdigest()[:12]


def _math_problem(row: Mapping[str, Any], split: str, where: str) -> Problem:
    question, solution = _field(row, "problem", where), _field(row, "solution", where)
    answer = row.get("answer") if isinstance(row.get("answer"), str) else None
    answer = (answer or "").strip() or next(reversed(boxed_answers(solution)), None)
    if not answer:
        raise WorkbenchError(f"{where}: no 'answer' field and no \\boxed{{...}} in 'solution'")
    level = row.get("level")
    if isinstance(level, str):
        digits = level.removeprefix("Level").strip()
        level = int(digits) if digits.isdigit() else None
    meta: dict[str, Any] = {
        "dataset": "math",
        "split": split,
        "subject": row.get("subject") or row.get("type"),
        "level": level,
        "solution": solution,
    }
    if row.get("unique_id"):
        meta["unique_id"] = row["unique_id"]
    return Problem(
        id=_math_id(question), family="math", question=question, answer=answer, meta=meta
    )


def _read_jsonl(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(
            f"cannot read data file {path} ({exc.__class__.__name__}); {_HINT}"
        ) from exc
    for lineno, line in enumerate(lines, start=1):
        where = f"{path} line {lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WorkbenchError(
                f"{where}: malformed JSON ({exc.msg}); fix or re-copy the file"
            ) from exc
        if not isinstance(row, dict):
            raise WorkbenchError(f"{where}: expected a JSON object; fix or re-copy the file")
        yield row, where


def _hub_rows(rel: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Rows of the Hub dataset standing in for local file ``rel`` (all configs in turn)."""
    import datasets  # lazy: heavy import, only needed for the hub path

    name, configs, split = _HUB[rel]
    for config in configs:
        label = f"{name}" + (f" ({config})" if config else "") + f" split {split!r}"
        try:
            rows = [dict(r) for r in datasets.load_dataset(name, config, split=split)]
        except Exception as exc:
            raise WorkbenchError(
                f"could not download {label} from the Hugging Face Hub (offline?) "
                f"[{exc.__class__.__name__}: {exc}]; pass --data_dir with local JSONL files"
            ) from exc
        logger.info("downloaded %d rows of %s", len(rows), label)
        yield from ((row, f"{label} row {i}") for i, row in enumerate(rows))


def _build(dataset: str, split: str, data_dir: Path | None) -> tuple[Problem, ...]:
    """Build a split from local files (``data_dir``) or from the Hub (``None``)."""

    def rows(rel: str) -> Iterator[tuple[dict[str, Any], str]]:
        return _read_jsonl(data_dir / rel) if data_dir else _hub_rows(rel)

    if dataset == "gsm8k":
        gsm = rows(f"gsm8k/{split}.jsonl")
        return tuple(_gsm8k_problem(r, split, i, w) for i, (r, w) in enumerate(gsm))
    m500 = tuple(_math_problem(r, "test", w) for r, w in rows(_M500))
    if split == "test":
        return m500
    taken = {p.id for p in m500}
    pool = tuple(p for r, w in rows(_M5000) if (p := _math_problem(r, "pool", w)).id not in taken)
    if len(pool) != _POOL_SIZE:
        raise WorkbenchError(
            f"corrupted data: the MATH pool ({_M5000} minus {_M500}) has {len(pool)} problems, "
            f"expected {_POOL_SIZE}; re-copy both files (source: {data_dir or 'hub'})"
        )
    return pool


@functools.lru_cache(maxsize=32)
def _cached(dataset: str, split: str, data_dir: Path | None) -> tuple[Problem, ...]:
    problems = _build(dataset, split, data_dir)
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise WorkbenchError(f"corrupted data: duplicate problem ids in {dataset}/{split}")
    logger.debug("loaded %d problems of %s/%s from %s", len(ids), dataset, split, data_dir or "hub")
    return problems


def _default_data_dir() -> tuple[Path, bool]:
    """The data folder and whether the user chose it (env var) rather than a fallback."""
    if os.environ.get("ALS_DATA_DIR"):
        return Path(os.environ["ALS_DATA_DIR"]), True
    shared = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    return (shared if shared.is_dir() else Path("data")), False


def _load_files(
    dataset: str, split: str, data_dir: str | Path | None, source: str
) -> tuple[Problem, ...]:
    """The problems of a file-backed split: local JSONL, or the Hub (see `load_problems`)."""
    name = f"{dataset}/{split}"
    root, chosen = (Path(data_dir), True) if data_dir is not None else _default_data_dir()
    root = root.expanduser().resolve()
    missing = [root / rel for rel in _FILES[dataset, split] if not (root / rel).is_file()]
    if source == "hub" or (source == "auto" and missing and not chosen):
        if source == "auto":
            logger.info("no local %s under %s; trying the Hugging Face Hub", name, root)
        return _cached(dataset, split, None)
    if missing:
        raise WorkbenchError(f"data file {missing[0]} not found for {name}; {_HINT}")
    return _cached(dataset, split, root)


def load_problems(
    dataset: str,
    split: str,
    *,
    data_dir: str | Path | None = None,
    source: Literal["auto", "local", "hub"] = "auto",
    limit: int | None = None,
) -> list[Problem]:
    """Load the problems of ``dataset``/``split`` (see :data:`DATASETS`), file order.

    ``math500`` is accepted as an alias of ``math`` (split ``test`` only). ``data_dir`` defaults to
    ``$ALS_DATA_DIR``, else ``<repo>/../shared/data``, else ``./data``. ``source="auto"`` reads the
    local files and falls back to the Hub only when no data folder was chosen (argument or env).
    ``limit`` keeps the first N problems. Results are cached; the list is a fresh copy.
    """
    name, alias = f"{dataset}/{split}", dataset == "math500"
    valid = ", ".join(f"{d} ({'/'.join(s.splits)})" for d, s in DATASETS.items())
    valid += ", math500 (test)"
    dataset = "math" if alias else dataset
    if dataset not in DATASETS:
        raise WorkbenchError(f"unknown dataset {dataset!r}; valid datasets (splits): {valid}")
    if split not in (("test",) if alias else DATASETS.get(dataset).splits):
        raise WorkbenchError(f"unknown split {split!r} of {name.split('/')[0]}; valid: {valid}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise WorkbenchError(f"limit must be a positive integer, got {limit!r}")
    if source not in ("auto", "local", "hub"):
        raise WorkbenchError(f"unknown data source {source!r}; use auto, local or hub")

    problems = DATASETS.get(dataset).load(dataset, split, data_dir, source)
    if limit is not None and limit > len(problems):
        raise WorkbenchError(f"limit {limit} exceeds the {len(problems)} problems of {name}")
    return list(problems[:limit])


register_dataset("gsm8k", ("train", "test"), _load_files)
register_dataset("math", ("pool", "test"), _load_files)
register_dataset("toy", TOY_SPLITS, lambda dataset, split, data_dir, source: toy_problems(split))


def save_split(path: str | Path, name: str, ids: Sequence[str]) -> None:
    """Write a named id list as JSON ``{"name", "ids", "n"}`` (parent folders are created)."""
    ids = list(ids)
    if not all(isinstance(i, str) for i in ids) or len(set(ids)) != len(ids):
        raise WorkbenchError(f"split {name!r}: ids must be distinct strings")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"name": name, "ids": ids, "n": len(ids)}, indent=1) + "\n")
    except OSError as exc:
        raise WorkbenchError(
            f"cannot write split file {path}: {exc}; choose a writable path"
        ) from exc


def load_split(path: str | Path) -> list[str]:
    """Read the ids of a split file written by :func:`save_split`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(
            f"cannot read split file {path} ({exc.__class__.__name__}); check it"
        ) from exc
    except json.JSONDecodeError as exc:
        raise WorkbenchError(f"split file {path} is not valid JSON ({exc}); re-create it") from exc
    ids = data.get("ids") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise WorkbenchError(f"split file {path} has no list of string 'ids'; re-create it")
    if data.get("n", len(ids)) != len(ids):
        raise WorkbenchError(f"split file {path} says n={data['n']} but has {len(ids)} ids")
    return ids


def split_problems(
    problems: Iterable[Problem],
    fractions: Mapping[str, float] | Mapping[str, int],
    *,
    seed: int = 0,
) -> dict[str, list[Problem]]:
    """Shuffle (by ``seed``, independent of input order) into disjoint named parts.

    Int values are counts; float values are fractions of the total (summing to at most 1).
    """
    items = sorted(problems, key=lambda p: p.id)
    if len({p.id for p in items}) != len(items):
        raise WorkbenchError("split_problems: the problems contain duplicate ids; deduplicate")
    values = list(fractions.values())
    n = len(items)
    if not values:
        raise WorkbenchError("split_problems: give at least one named part, e.g. {'fit': 0.5}")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        if min(values) < 0 or sum(values) > n:
            raise WorkbenchError(f"split counts {dict(fractions)} must be >= 0 and sum to <= {n}")
        sizes = values
    elif all(isinstance(v, float) for v in values):
        if min(values) < 0 or sum(values) > 1 + 1e-9:
            raise WorkbenchError(f"split fractions {dict(fractions)} must be >= 0, sum <= 1")
        bounds, acc = [0], 0.0
        for v in values:
            acc += v
            bounds.append(min(n, round(acc * n)))
        sizes = [b - a for a, b in itertools.pairwise(bounds)]
    else:
        raise WorkbenchError("split sizes must be all ints (counts) or all floats (fractions)")
    random.Random(seed).shuffle(items)
    out, start = {}, 0
    for name, size in zip(fractions, sizes, strict=True):
        out[name], start = items[start : start + size], start + size
    return out


def check_disjoint(
    fit_ids: Iterable[str],
    eval_ids: Iterable[str],
    *,
    fit_name: str = "fit",
    eval_name: str = "eval",
) -> None:
    """Raise if any id is in both sets (e.g. steering fitted on evaluation problems)."""
    overlap = sorted(set(fit_ids) & set(eval_ids))
    if overlap:
        examples = ", ".join(overlap[:5]) + (", ..." if len(overlap) > 5 else "")
        raise WorkbenchError(
            f"{len(overlap)} problem id(s) are in both {fit_name} and {eval_name} "
            f"(e.g. {examples}); use disjoint sets, e.g. fit on gsm8k/train or math/pool"
        )
