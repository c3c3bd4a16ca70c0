"""`als compare RUN_DIR`: CoT, Self-Consistency, LatentSeek and ALS on the same held-out problems.

Every method decodes with the same batched, KV-cached `decode` and is accounted the same way:
seconds per problem (wall time of its batches shared over their sequences), generated tokens per
problem (sampled and verifier tokens included), forward and backward passes. CoT and ALS rows are
the run's own test rows, or with `retime` decoded again here so that every method is timed in one
process; SC@k and LatentSeek are computed here (resumable, under `compare/`). LatentSeek starts
from the CoT answer, so its cost includes that answer's. A baseline run on fewer problems
(`sc_n_problems`, `latentseek_n_problems`: the first n) is compared with CoT and ALS on its own
problems only.

Efficiency-accuracy score (EAS) of a method against CoT:
    EAS = (accuracy - accuracy_CoT) / (seconds_per_problem / seconds_per_problem_CoT - 1),
accuracy points gained per unit of extra relative compute. It is defined only for a method that
costs more than 1.02x CoT: within 2% it would divide by noise, and a method as cheap as CoT or
cheaper needs no exchange rate (reported as None; read its accuracy difference directly).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from workbench.core.artifacts import append_jsonl, read_rows, write_json
from workbench.core.evaluation import iterative_normaliser, tradeoff_fields, tradeoff_scores
from workbench.core.grading import grade
from workbench.core.problems import Problem
from workbench.core.prompts import PromptConfig, encode_problems
from workbench.core.records import GradedRow, summarize
from workbench.core.steering import steer
from workbench.errors import WorkbenchError
from workbench.experiment.rundir import RunDir
from workbench.methods.baselines import SCConfig, run_self_consistency
from workbench.methods.cot import completion_from_row, run_cot
from workbench.methods.latentseek import LatentSeekConfig, latentseek, oracle_reward, self_reward

__all__ = ["METHODS", "CompareConfig", "efficiency_accuracy_score", "run_compare"]

logger = logging.getLogger(__name__)

METHODS = ("cot", "sc", "latentseek", "als")


@dataclass(frozen=True, kw_only=True)
class CompareConfig:
    """Which methods to compare, on how many of the run's test problems."""

    methods: tuple[str, ...] = METHODS
    """Methods, from cot, sc, latentseek, als."""
    n_problems: int | None = None
    """First n problems of the run's test split (None: all)."""
    sc_k: int = 5
    """Samples per problem for Self-Consistency."""
    latentseek_reward: Literal["self", "oracle"] = "self"
    """LatentSeek's reward: 'self' (own verification) or 'oracle' (gold answer, an upper bound)."""
    latentseek_iters: int = 10
    """LatentSeek's iteration cap."""
    sc_n_problems: int | None = None
    """Self-Consistency on only the first n compared problems (None: all)."""
    latentseek_n_problems: int | None = None
    """LatentSeek on only the first n compared problems (the dearest method; None: all)."""
    retime: bool = False
    """Decode CoT and ALS again here (into compare/) instead of reusing the run's test rows, so
    that all methods are timed alike; use it when the run's rows shared the machine."""

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise WorkbenchError(f"unknown methods {bad}; choose from {', '.join(METHODS)}")
        counts = {
            "n_problems": self.n_problems,
            "sc_k": self.sc_k,
            "sc_n_problems": self.sc_n_problems,
            "latentseek_n_problems": self.latentseek_n_problems,
        }
        for name, value in counts.items():
            if value is not None and value < 1:
                raise WorkbenchError(f"{name} must be >= 1, not {value}")
        if self.latentseek_iters < 0:
            raise WorkbenchError(f"latentseek_iters must be >= 0, not {self.latentseek_iters}")


def efficiency_accuracy_score(
    acc: float, sec: float, acc_cot: float, sec_cot: float
) -> float | None:
    """Accuracy gained per unit of extra relative compute over CoT (None unless > 1.02x CoT)."""
    extra = sec / sec_cot - 1 if sec_cot > 0 else float("nan")
    return (acc - acc_cot) / extra if extra > 0.02 else None


def _latentseek_rows(
    bridge, problems, cot_rows, cfg, generation, prompt_cfg: PromptConfig, out: Path
) -> list[dict]:
    done = {r["id"]: r for r in read_rows(out)}
    ls_cfg = LatentSeekConfig(reward=cfg.latentseek_reward, max_iters=cfg.latentseek_iters)
    cot = {r["id"]: r for r in cot_rows}
    todo = [p for p in problems if p.id not in done]
    for problem in tqdm(todo, desc=f"latentseek-{cfg.latentseek_reward}"):
        row = cot[problem.id]
        initial = completion_from_row(row)
        prompt = encode_problems(bridge.tokenizer, [problem], prompt_cfg)[0]
        reward = (
            oracle_reward(problem)
            if ls_cfg.reward == "oracle"
            else self_reward(bridge, problem, ls_cfg)
        )
        res = latentseek(bridge, prompt, initial, reward, ls_cfg, generation=generation)
        verdict = grade(res.text, problem.answer, problem.family, prompt_cfg.answer_format)
        new = GradedRow(
            id=problem.id,
            method=f"latentseek-{ls_cfg.reward}",
            gold=problem.answer,
            predicted=verdict.predicted,
            correct=verdict.correct,
            extraction=verdict.method,
            prompt_tokens=row["prompt_tokens"],
            generated_tokens=res.generated_tokens,
            seconds=row["seconds"] + res.seconds,
            finish="stop",
            text=res.text,
            extras={
                "iterations": res.iterations,
                "forward_passes": res.forward_passes,
                "backward_passes": res.backward_passes,
                "rewards": res.rewards,
            },
        ).to_json()
        append_jsonl(out, [new])
        done[problem.id] = new
    return [done[p.id] for p in problems]


def _forward_passes(row: dict) -> int:
    return row.get("forward_passes", row["generated_tokens"] + 1)


def run_compare(
    bridge: Any,
    run: str | Path,
    cfg: CompareConfig = CompareConfig(),
    *,
    data_dir: str | None = None,
) -> list[dict[str, Any]]:
    """Compare the methods on the run's test problems; write `compare/table.json`."""
    run = RunDir.of(run).require_finished()
    if run.prompt().answer_format == "json" and "latentseek" in cfg.methods:
        raise WorkbenchError(
            f"{run.root} uses the P2 (JSON) prompt, and LatentSeek here decodes boxed answers "
            "only: leave latentseek out of --compare.methods"
        )
    problems: list[Problem] = run.problems("test", data_dir=data_dir)[: cfg.n_problems]
    base = _cot_rows(bridge, run, problems, cfg)
    rows: dict[str, list[dict]] = {}
    for method in cfg.methods:
        name, method_rows = _method_rows(bridge, run, problems, base, method, cfg)
        rows[name] = method_rows
    table = _table(rows)
    write_json(run.compare_table_path, table)
    verdicts = [
        {"method": name, "id": r["id"], "correct": r["correct"]}
        for name, method_rows in rows.items()
        for r in method_rows
    ]
    run.compare_verdicts_path.unlink(missing_ok=True)
    append_jsonl(run.compare_verdicts_path, verdicts)
    return table


def _cot_rows(bridge: Any, run: RunDir, problems: list[Problem], cfg: CompareConfig) -> list[dict]:
    """CoT on these problems: the run's own rows, or decoded again here (`retime`)."""
    if not cfg.retime:
        keep = {p.id for p in problems}
        return [r for r in run.rows("test", "cot") if r["id"] in keep]
    common = {"generation": run.generation(), "prompt": run.prompt()}
    base = run_cot(bridge, problems, out=run.compare_rows("cot"), **common)
    _check_same_answers(base, run.rows_path("test", "cot"))
    return base


def _method_rows(
    bridge: Any,
    run: RunDir,
    problems: list[Problem],
    base: list[dict],
    method: str,
    cfg: CompareConfig,
) -> tuple[str, list[dict]]:
    """(name in the table, graded rows) of one method of the comparison."""
    generation, prompt = run.generation(), run.prompt()
    if method == "cot":
        return "cot", base
    if method == "als" and not cfg.retime:
        keep = {p.id for p in problems}
        return "als", [r for r in run.rows("test", "als") if r["id"] in keep]
    if method == "als":
        with steer(bridge, run.steering(), run.directions()):
            rows = run_cot(
                bridge,
                problems,
                generation=generation,
                prompt=prompt,
                out=run.compare_rows("als"),
                method="als",
            )
        _check_same_answers(rows, run.rows_path("test", "als"))
        return "als", rows
    if method == "sc":
        name = f"sc@{cfg.sc_k}"
        sc = SCConfig(k=cfg.sc_k)
        subset = problems[: cfg.sc_n_problems]
        out = run.compare_rows(name)
        return name, run_self_consistency(
            bridge, subset, sc, generation=generation, prompt=prompt, out=out
        )
    name = f"latentseek-{cfg.latentseek_reward}"
    subset = problems[: cfg.latentseek_n_problems]
    return name, _latentseek_rows(
        bridge, subset, base, cfg, generation, prompt, run.compare_rows(name)
    )


def _check_same_answers(rows: list[dict], saved: Path) -> None:
    """Warn where a re-decoded row's text differs from the run's row (greedy decoding should
    reproduce it; kernels or batching on another device may not)."""
    before = {r["id"]: r["text"] for r in read_rows(saved)}
    differ = [r["id"] for r in rows if r["id"] in before and before[r["id"]] != r["text"]]
    if differ:
        logger.warning(
            "%d of %d re-decoded rows differ from %s (first: %s)",
            len(differ),
            len(rows),
            saved,
            differ[0],
        )


def _table(rows: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """One entry per method; ratios and paired tests against CoT and ALS on its own problems."""
    cot = {r["id"]: r for r in rows.get("cot", [])}
    als = {r["id"]: r for r in rows.get("als", [])}
    table = []
    for name, method_rows in rows.items():
        ids = [r["id"] for r in method_rows]
        cot_same = [cot[i] for i in ids if i in cot]
        als_same = [als[i] for i in ids if i in als]
        vs_cot = cot_same if cot and name != "cot" else None
        s = summarize(method_rows, method=name, base=vs_cot)
        entry = {
            **s.to_json(),
            "forward_passes": sum(_forward_passes(r) for r in method_rows) / s.n,
            "backward_passes": sum(r.get("backward_passes", 0) for r in method_rows) / s.n,
            "cot_accuracy_same": None,
            "als_accuracy_same": None,
            "eas": None,
            "als_speedup": None,
        }
        if len(cot_same) == s.n:  # against CoT on the same problems
            ref = summarize(cot_same)
            entry["cot_accuracy_same"] = ref.accuracy
            entry["eas"] = efficiency_accuracy_score(
                s.accuracy, s.seconds_per_problem, ref.accuracy, ref.seconds_per_problem
            )
        if len(als_same) == s.n:
            ref = summarize(als_same)
            entry["als_accuracy_same"] = ref.accuracy
            entry["als_speedup"] = s.seconds_per_problem / ref.seconds_per_problem
        table.append(entry)
    return _with_tradeoff(table, rows)


def _with_tradeoff(table: list[dict], rows: dict[str, list[dict]]) -> list[dict]:
    """Each entry with the paper's trade-off score, its % change vs CoT and its time normaliser
    (`tradeoff_scores`, `tradeoff_fields`), computed on the problems every method decoded
    (`tradeoff_n` of them), so that accuracy and time are compared on the same problems; time is
    normalised by the slowest iterative method there (SC or LatentSeek: `iterative_normaliser`,
    the paper's normaliser). None where CoT is not in the table or no iterative method is."""
    common = set.intersection(*({r["id"] for r in method_rows} for method_rows in rows.values()))
    on_common = {n: [r for r in m if r["id"] in common] for n, m in rows.items()}
    summaries = {n: summarize(m, method=n) for n, m in on_common.items() if m}
    seconds = {n: s.seconds_per_problem for n, s in summaries.items()}
    usable = "cot" in summaries
    scores = tradeoff_scores(
        {n: s.accuracy for n, s in summaries.items()},
        seconds,
        normaliser=iterative_normaliser(seconds) if usable else None,
    )
    return [{**e, **tradeoff_fields(scores, e["method"]), "tradeoff_n": len(common)} for e in table]
