"""The difficulty direction as a router of compute, on a finished run's test split.

The predictor is read before decoding: each problem's last prompt token state, projected on the
difficulty direction of the fit split's sampled chains (`als probe --samples`), at the layer
where that projection ranks the fit problems' pass rates best (Spearman; chosen on fit data).
Low scores are predicted hard. For each budget (the share of problems sent to SC@k) the threshold
is that quantile of the *validation* problems' scores (`workbench.core.routing`); on the test
split, the problems below it take their SC@k row (majority vote of the test split's sampled
chains, `als sample --split test`), the rest their greedy CoT row (the run's own). Controls: a
router with random scores at each budget (what any split of that size gives) and the oracle
(sends exactly CoT's failures, at the budget of CoT's failure rate: the most any router
gains). Costs are the chosen rows' tokens and seconds; the seconds of rows decoded at different
times do not compare, so after `router_retime` (`als route --retime N`) each row's seconds are its
tokens at its method's re-timed seconds per token (`workbench.experiment.router_retime`).

Writes ``router/table.json`` (one row per method and budget: accuracy with its Wilson interval,
McNemar against CoT, tokens and seconds per problem, the share sent to SC, the paper's trade-off
score normalised by SC@k's seconds, and, paired with SC@k everywhere, McNemar and the trade-off
score's gap with a 95% interval over problems), each problem's score, the scores' Spearman with
the test problems' sampled pass rates, and by score quartile where SC@k fixes and breaks CoT
(`by_score_bin`) into the test samples folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from workbench.core.activations import CacheConfig, cache_activations
from workbench.core.artifacts import read_json, read_jsonl, write_json
from workbench.core.directions import LayerDirections
from workbench.core.evaluation import tradeoff_gap, with_tradeoff_fields
from workbench.core.records import summarize
from workbench.core.routing import budget_threshold, by_score_bin, route_rows, routed_summary
from workbench.errors import WorkbenchError
from workbench.experiment.router_retime import (
    retimed_path,
    retimed_seconds,
    row_seconds,
    token_rates,
)
from workbench.experiment.rundir import RunDir, SamplesDir
from workbench.methods.sampling import pass_rates, voted_rows

__all__ = ["BUDGETS", "prompt_scores", "router_run"]

BUDGETS: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75)
"""Shares of problems sent to SC@k by default."""

Rates = dict[str, float] | None
"""Re-timed seconds per token by row source (`token_rates`), or None."""


def _router_layer(fit_samples: SamplesDir) -> int:
    path = fit_samples.contrast_table("probes")
    if not path.exists():
        raise WorkbenchError(
            f"{fit_samples.root} has no contrast tables: run `als probe --samples`"
        )
    rows = [r for r in read_jsonl(path) if r["metric"] == "spearman_pass_rate"]
    return max(rows, key=lambda r: r["value"])["layer"]


def prompt_scores(
    bridge: Any,
    run: RunDir,
    split: str,
    direction: LayerDirections,
    layer: int,
    out: Path,
    *,
    data_dir=None,
) -> dict[str, float]:
    """Each problem of the run's split: its last prompt token's state at `layer`, projected on
    the unit direction (a pass over the prompts only, cached in `out`)."""
    problems = run.problems(split, data_dir=data_dir)
    empty = [{"id": p.id, "tokens": [], "correct": False} for p in problems]
    aset = cache_activations(
        bridge,
        problems,
        empty,
        out,
        CacheConfig(layers=(layer,), site=direction.provenance.get("site", "resid_post")),
        prompt=run.prompt(),
        progress=False,
    )
    scores = aset.at("last_prompt")[:, 0].float() @ direction.unit(layer)
    return {pid: float(s) for pid, s in zip(aset.problem_ids, scores.tolist(), strict=True)}


def _row(
    name: str,
    rows: Sequence[dict],
    cot: Sequence[dict],
    extra: dict,
    rates: Rates,
    sc: Sequence[dict] | None = None,
) -> dict[str, Any]:
    """A summary row; with re-timed `rates`, its seconds are the rows' tokens at those rates
    (their own decodes' seconds kept as ``seconds_own_decode``); with `sc`, the rows of SC@k
    everywhere, also its comparison with SC (`_versus_sc`)."""
    s = summarize(list(rows), method=name, base=list(cot) if name != "cot" else None).to_json()
    if rates is not None:
        s["seconds_own_decode"] = s["seconds_per_problem"]
        s["seconds_per_problem"] = retimed_seconds(rows, rates)
    return {**s, **extra, **(_versus_sc(rows, sc, rates) if sc is not None else {})}


def _versus_sc(rows: Sequence[dict], sc: Sequence[dict], rates: Rates) -> dict[str, Any]:
    """Paired with SC@k everywhere on the same problems: the exact McNemar test, and the
    trade-off score's gap (this row's minus SC's, time normalised by SC's seconds as the table's
    scores are) with a 95% interval from resampling problems; the gap is None without seconds."""
    paired = summarize(list(rows), base=list(sc), base_name="sc").to_json()
    out = {
        "only_sc": paired["only_base"],
        "only_method_vs_sc": paired["only_method"],
        "mcnemar_p_vs_sc": paired["mcnemar_p"],
        "tradeoff_gap_vs_sc": None,
    }
    by_id = {r["id"]: r for r in sc}
    pairs = [(r, by_id[r["id"]]) for r in rows if r["id"] in by_id]
    t = [(row_seconds(a, rates), row_seconds(b, rates)) for a, b in pairs]
    if len(pairs) >= 2 and all(x is not None and y is not None for x, y in t):
        ta, tb = zip(*t, strict=True)
        ca = [bool(a["correct"]) for a, _ in pairs]
        cb = [bool(b["correct"]) for _, b in pairs]
        out["tradeoff_gap_vs_sc"] = tradeoff_gap(ca, ta, cb, tb, tb)
    return out


def _split_scores(
    bridge: Any,
    run: RunDir,
    direction: LayerDirections,
    layer: int,
    test_samples: SamplesDir,
    *,
    data_dir=None,
) -> tuple[dict[str, float], dict[str, float]]:
    """The prompt scores (`prompt_scores`) of the validation problems, then of the test problems,
    each split cached in the test samples folder's router states."""
    val, test = (
        prompt_scores(
            bridge,
            run,
            split,
            direction,
            layer,
            test_samples.router_states(split),
            data_dir=data_dir,
        )
        for split in ("val", "test")
    )
    return val, test


def _has_rows(run: RunDir, split: str, arm: str) -> bool:
    """Whether the run holds the rows of `arm` on `split`, plain or gzipped."""
    path = run.rows_path(split, arm)
    return path.exists() or path.with_suffix(".jsonl.gz").exists()


def _fixed_rows(
    run: RunDir, cot: Sequence[dict], sc: Sequence[dict], k: int, rates: Rates
) -> list[dict[str, Any]]:
    """The unrouted rows: CoT, SC@k (everything sent to SC), then each steered arm the run
    decoded on test (ALS arms and the random-direction control); every row but CoT's compared
    with CoT."""
    table = [
        _row("cot", cot, cot, {}, rates, sc),
        _row(f"sc@{k}", sc, cot, {"share_expensive": 1.0}, rates),
    ]
    for arm in ("als", "als-reference", "als-reference-always", "als-gated", "random-control"):
        if _has_rows(run, "test", arm):
            table.append(_row(arm, run.rows("test", arm), cot, {}, rates, sc))
    return table


def _oracle_row(cot: Sequence[dict], sc: Sequence[dict], rates: Rates) -> dict[str, Any]:
    """The oracle router's row: exactly CoT's failures sent to SC."""
    oracle = route_rows({r["id"]: float(r["correct"]) for r in cot}, 0.5, cot, sc)
    return _row("router-oracle", oracle.rows, cot, _extra(oracle, None, 0.5), rates, sc)


def _budget_rows(
    val: dict[str, float],
    test: dict[str, float],
    problem_ids: Sequence[str],
    cot: Sequence[dict],
    sc: Sequence[dict],
    budgets: Sequence[float],
    seed: int,
    rates: Rates,
) -> list[dict[str, Any]]:
    """At each budget, the router's row, then the random router's row (uniform scores drawn from
    `seed`: the validation scores first, then one per test problem in `problem_ids` order); each
    sends to SC the test problems scored below the budget's quantile of the validation scores."""
    rng = np.random.default_rng(seed)
    blind_val, blind_test = rng.random(len(val)), {pid: float(rng.random()) for pid in problem_ids}
    rows = []
    for b in budgets:
        for name, val_scores, scores in (
            ("router", list(val.values()), test),
            ("router-random", blind_val, blind_test),
        ):
            thr = budget_threshold(val_scores, b)
            routed = route_rows(scores, thr, cot, sc, method=f"{name}@{b:g}")
            extra = _extra(routed, b, thr)
            rows.append(_row(f"{name}@{b:g}", routed.rows, cot, extra, rates, sc))
    return rows


def router_run(
    bridge: Any,
    run: str | Path | RunDir,
    fit_samples: str | Path | SamplesDir,
    test_samples: str | Path | SamplesDir,
    budgets: Sequence[float] = BUDGETS,
    *,
    data_dir=None,
    seed: int = 0,
) -> dict[str, Any]:
    """Route the run's test problems at each budget; write and return the table."""
    run = RunDir.of(run).require_finished()
    fit_samples = SamplesDir.of_samples(fit_samples)
    test_samples = SamplesDir.of_samples(test_samples)
    layer = _router_layer(fit_samples)
    direction = LayerDirections.load(fit_samples.contrast_directions("difficulty"))
    val, test = _split_scores(bridge, run, direction, layer, test_samples, data_dir=data_dir)
    problems = run.problems("test", data_dir=data_dir)
    cot = run.rows("test", "cot")
    samples = test_samples.sample_rows()
    sc = voted_rows(problems, samples, answer_format=run.prompt().answer_format)
    k = test_samples.settings()["sampling"]["k"]
    rates = token_rates(test_samples, run)
    table = [*_fixed_rows(run, cot, sc, k, rates), _oracle_row(cot, sc, rates)]
    table += _budget_rows(val, test, [p.id for p in problems], cot, sc, budgets, seed, rates)
    table = _with_tradeoff(table)
    out = {
        "layer": layer,
        "direction": str(fit_samples.contrast_directions("difficulty")),
        "budgets": list(budgets),
        "val_scores": len(val),
        "timing": _timing(test_samples, rates),
        "table": table,
        **_where_sc_helps(test, samples, cot, sc),
        "scores": {"val": val, "test": test},
    }
    write_json(test_samples.router_table_path, out)
    return out


def _where_sc_helps(
    test: dict[str, float], samples: Sequence[dict], cot: Sequence[dict], sc: Sequence[dict]
) -> dict[str, Any]:
    """The test scores against the test problems' sampled pass rates (Spearman: the predictor
    out of sample), and `by_score_bin`: by score quartile, where SC@k fixes and breaks CoT."""
    rates = pass_rates(samples)
    ids = [r["id"] for r in cot]
    sc_ok = {r["id"]: bool(r["correct"]) for r in sc}
    x, r = [test[i] for i in ids], [rates[i].rate for i in ids]
    rho = float(spearmanr(x, r).statistic) if np.ptp(r) > 0 else None
    return {
        "spearman_test_pass_rate": rho,
        "by_score": by_score_bin(
            x, r, [bool(row["correct"]) for row in cot], [sc_ok[i] for i in ids]
        ),
    }


def _with_tradeoff(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with the paper's trade-off score, time normalised by SC@k's (the slowest
    iterative method here, as the paper's Eq. 1 scales its settings); rows without seconds
    (an ALS arm with no re-timed rate) stay out of the score."""
    timed = {r["method"] for r in table if r["seconds_per_problem"] is not None}
    return with_tradeoff_fields(table, timed=timed)


def _timing(test_samples: SamplesDir, rates: Rates) -> str:
    if rates is None:
        return (
            "each row's own decode (CoT: the run's test batch; SC: the sampled chains' batch); "
            "not re-timed together: run `als route --retime N` for seconds that compare"
        )
    n = read_json(retimed_path(test_samples))["n"]
    return (
        "generated tokens times each method's seconds per token, measured by decoding CoT and "
        f"then the sampled chains of the first {n} test problems one after the other in one "
        "process (ALS arms: CoT's rate times their ratio to CoT in the run's retimed.json)"
    )


def _extra(routed: Any, budget: float | None, threshold: float) -> dict[str, Any]:
    s = routed_summary(routed)
    return {"budget": budget, "threshold": threshold, "share_expensive": s["share_expensive"]}
