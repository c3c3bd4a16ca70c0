"""Unit tests for workbench.sources.data on the real local files (fast, no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.core.grading import boxed_answers
from workbench.errors import WorkbenchError
from workbench.sources import data
from workbench.sources.data import (
    DATASETS,
    Problem,
    check_disjoint,
    load_problems,
    load_split,
    save_split,
    split_problems,
)

EXPECTED = {("gsm8k", "train"): 7473, ("gsm8k", "test"): 1319, ("math", "test"): 500,
            ("math", "pool"): 4500}  # fmt: skip


@pytest.fixture(scope="module")
def data_dir() -> Path:
    root, _ = data._default_data_dir()
    if not (root / "gsm8k" / "test.jsonl").is_file():
        pytest.skip(f"local benchmark data not found under {root}")
    return root


def _problems(n: int) -> list[Problem]:
    return [Problem(id=f"x/{i:03d}", family="gsm8k", question="q", answer=str(i)) for i in range(n)]


@pytest.mark.parametrize(("dataset", "split"), sorted(EXPECTED))
def test_counts_and_unique_ids(data_dir: Path, dataset: str, split: str) -> None:
    problems = load_problems(dataset, split, data_dir=data_dir, source="local")
    assert len(problems) == EXPECTED[dataset, split]
    assert len({p.id for p in problems}) == len(problems)
    assert all(p.family == dataset and p.meta["split"] == split for p in problems)
    assert split in DATASETS.get(dataset).splits


def test_gsm8k_ids_and_numeric_answers(data_dir: Path) -> None:
    for split in ("train", "test"):
        problems = load_problems("gsm8k", split, data_dir=data_dir)
        assert problems[0].id == f"gsm8k/{split}/0000"
        assert problems[-1].id == f"gsm8k/{split}/{len(problems) - 1:04d}"
        for p in problems:
            assert "," not in p.answer
            float(p.answer)  # every gold answer is a number
    assert load_problems("gsm8k", "test", data_dir=data_dir)[0].answer == "18"


def test_math_pool_disjoint_from_math500(data_dir: Path) -> None:
    test = load_problems("math", "test", data_dir=data_dir)
    pool = load_problems("math", "pool", data_dir=data_dir)
    check_disjoint([p.id for p in pool], [p.id for p in test], fit_name="pool", eval_name="test")
    assert all(p.answer.strip() for p in test + pool)
    assert all(p.id.startswith("math/") and len(p.id) == 17 for p in test + pool)
    assert all(p.meta["unique_id"].startswith("test/") for p in test)
    assert all(p.meta["level"] in range(1, 6) and p.meta["subject"] for p in test + pool)
    assert [p.id for p in load_problems("math500", "test", data_dir=data_dir)] == [
        p.id for p in test
    ]


def test_boxed_answer_matches_math500_answer(data_dir: Path) -> None:
    for p in load_problems("math", "test", data_dir=data_dir):
        assert boxed_answers(p.meta["solution"])[-1] == p.answer
    assert boxed_answers(r"so \boxed{1} or $\boxed{\frac{1}{\sqrt{2}}}$.") == [
        "1",
        r"\frac{1}{\sqrt{2}}",
    ]
    assert boxed_answers("no box") == []


def test_limit_and_cache(data_dir: Path) -> None:
    first = load_problems("gsm8k", "test", data_dir=data_dir, limit=5)
    assert [p.id for p in first] == [f"gsm8k/test/{i:04d}" for i in range(5)]
    again = load_problems("gsm8k", "test", data_dir=data_dir, limit=5)
    assert again == first and again is not first
    with pytest.raises(WorkbenchError, match="limit 2000 exceeds the 1319 problems of gsm8k/test"):
        load_problems("gsm8k", "test", data_dir=data_dir, limit=2000)
    for bad in (0, -1):
        with pytest.raises(WorkbenchError, match="positive integer"):
            load_problems("gsm8k", "test", data_dir=data_dir, limit=bad)


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(WorkbenchError, match=r"unknown dataset 'aime'.*gsm8k.*math"):
        load_problems("aime", "test")
    with pytest.raises(WorkbenchError, match=r"unknown split 'dev' of gsm8k.*train"):
        load_problems("gsm8k", "dev")
    with pytest.raises(WorkbenchError, match="unknown split 'pool' of math500"):
        load_problems("math500", "pool")


def test_missing_data_dir(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(WorkbenchError, match=r"nowhere.*--data_dir.*ALS_DATA_DIR"):
        load_problems("gsm8k", "test", data_dir=missing)
    with pytest.raises(WorkbenchError, match="math500"):
        load_problems("math", "test", data_dir=missing, source="local")


def test_malformed_jsonl_line(tmp_path: Path) -> None:
    (tmp_path / "gsm8k").mkdir()
    good = json.dumps({"question": "1+1?", "answer": "2\n#### 2"})
    (tmp_path / "gsm8k" / "test.jsonl").write_text(f"{good}\n{good}\n{{not json\n")
    with pytest.raises(WorkbenchError, match=r"test\.jsonl line 3: malformed JSON"):
        load_problems("gsm8k", "test", data_dir=tmp_path)


def test_missing_field_and_corrupted_pool(tmp_path: Path) -> None:
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "train.jsonl").write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(WorkbenchError, match=r"train\.jsonl line 1: .*'answer'"):
        load_problems("gsm8k", "train", data_dir=tmp_path)
    (tmp_path / "math500").mkdir()
    (tmp_path / "math").mkdir()
    row = {"problem": "p", "solution": r"\boxed{3}", "level": "Level 2", "type": "Algebra"}
    (tmp_path / "math500" / "test.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "math" / "test5000.jsonl").write_text(json.dumps({**row, "problem": "q"}) + "\n")
    assert load_problems("math", "test", data_dir=tmp_path)[0].answer == "3"
    with pytest.raises(WorkbenchError, match=r"corrupted data.*has 1 problems, expected 4500"):
        load_problems("math", "pool", data_dir=tmp_path)


def test_hub_failure_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    data._cached.cache_clear()
    for dataset, split in (("gsm8k", "test"), ("math", "pool")):
        with pytest.raises(WorkbenchError, match=r"could not download.*offline.*--data_dir"):
            load_problems(dataset, split, source="hub")


def test_auto_falls_back_to_hub_only_without_chosen_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import datasets

    calls: list[tuple[object, ...]] = []

    def offline(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setattr(data, "_default_data_dir", lambda: (tmp_path / "absent", False))
    with pytest.raises(WorkbenchError, match="could not download openai/gsm8k"):
        load_problems("gsm8k", "train")
    assert calls == [("openai/gsm8k", "main")]
    monkeypatch.undo()
    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setenv("ALS_DATA_DIR", str(tmp_path / "absent"))
    with pytest.raises(WorkbenchError, match=r"absent.*not found.*ALS_DATA_DIR"):
        load_problems("gsm8k", "train")
    assert len(calls) == 1
    with pytest.raises(WorkbenchError, match="unknown data source"):
        load_problems("gsm8k", "train", source="web")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dataset", "split", "files"),
    [("gsm8k", "test", ["gsm8k/test.jsonl"]), ("math", "test", ["math500/test.jsonl"])],
)
def test_hub_rows_build_same_records(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, dataset: str, split: str, files: list[str]
) -> None:
    import datasets

    local = load_problems(dataset, split, data_dir=data_dir)
    rows = [json.loads(line) for line in (data_dir / files[0]).open()]
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: rows)
    data._cached.cache_clear()
    try:
        assert load_problems(dataset, split, source="hub") == local
    finally:
        data._cached.cache_clear()


def test_split_problems() -> None:
    problems = _problems(100)
    parts = split_problems(problems, {"fit": 0.6, "val": 0.2, "eval": 0.2}, seed=1)
    assert [len(v) for v in parts.values()] == [60, 20, 20]
    ids = [p.id for part in parts.values() for p in part]
    assert len(set(ids)) == 100
    assert (
        split_problems(list(reversed(problems)), {"fit": 0.6, "val": 0.2, "eval": 0.2}, seed=1)
        == parts
    )
    assert split_problems(problems, {"fit": 0.6, "val": 0.2, "eval": 0.2}, seed=2) != parts
    counts = split_problems(problems, {"a": 10, "b": 5})
    assert [len(v) for v in counts.values()] == [10, 5]
    assert not {p.id for p in counts["a"]} & {p.id for p in counts["b"]}
    for bad in ({"a": 0.7, "b": 0.5}, {"a": 90, "b": 20}, {"a": 1, "b": 0.5}, {}):
        with pytest.raises(WorkbenchError):
            split_problems(problems, bad)
    with pytest.raises(WorkbenchError, match="duplicate"):
        split_problems(problems + problems[:1], {"a": 0.5})


def test_check_disjoint() -> None:
    check_disjoint(["a", "b"], ["c"])
    with pytest.raises(WorkbenchError, match=r"2 problem id\(s\) are in both fit and eval.*b, c"):
        check_disjoint(["a", "b", "c"], ["b", "c", "d"])


def test_save_load_split_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "splits" / "fit.json"
    save_split(path, "fit", ["gsm8k/train/0001", "gsm8k/train/0000"])
    assert load_split(path) == ["gsm8k/train/0001", "gsm8k/train/0000"]
    assert json.loads(path.read_text()) == {
        "name": "fit",
        "ids": ["gsm8k/train/0001", "gsm8k/train/0000"],
        "n": 2,
    }
    with pytest.raises(WorkbenchError, match="distinct"):
        save_split(path, "fit", ["a", "a"])
    with pytest.raises(WorkbenchError, match="cannot read split file"):
        load_split(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(WorkbenchError, match="not valid JSON"):
        load_split(tmp_path / "bad.json")


def test_hub_pool_matches_local_pool(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    import datasets

    def read(rel: str) -> list[dict[str, object]]:
        return [json.loads(line) for line in (data_dir / rel).open()]

    m500, full = read("math500/test.jsonl"), read("math/test5000.jsonl")

    def fake(name: str, config: str | None = None, *, split: str) -> list[dict[str, object]]:
        if name == "HuggingFaceH4/MATH-500":
            return m500
        assert (name, split) == ("EleutherAI/hendrycks_math", "test")
        # hendrycks_math rows have no idx; its configs are the subjects in snake_case
        snake = {
            r["type"]: str(r["type"]).lower().replace(" & ", "_and_").replace(" ", "_")
            for r in full
        }
        return [
            {k: v for k, v in r.items() if k != "idx"} for r in full if snake[r["type"]] == config
        ]

    local = load_problems("math", "pool", data_dir=data_dir)
    monkeypatch.setattr(datasets, "load_dataset", fake)
    data._cached.cache_clear()
    try:
        hub = load_problems("math", "pool", source="hub")
    finally:
        data._cached.cache_clear()
    assert sorted(hub, key=lambda p: p.id) == sorted(local, key=lambda p: p.id)
