"""How lm-eval's GSM8K extraction agrees with `workbench.core.grading` on the same generations.

lm-eval (``--model als``, no steering, the workbench's CoT prompt) generates answers to the first
`--limit` GSM8K test problems of ``tasks/gsm8k_local.yaml`` and grades them with its two filters
(``strict-match``: a ``#### N`` line; ``flexible-extract``: the last number); the workbench grades
the very same texts (`workbench.core.grading.grade`: the first closed ``\\boxed{}``, then answer
phrases). Per filter: the 2x2 table of verdicts, the agreement rate and Cohen's kappa. lm-eval's
request cache (``--cache``, default ``.cache/lm-eval/<out folder name>``) makes an interrupted run
resume, batch by batch. Rows go to ``<out>/rows.jsonl``, the
summary to ``<out>/summary.json`` and the last line.

    python benchmarks/lm_eval_agreement.py --model embedded --limit 64
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

from workbench.core.grading import grade

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--limit", type=int, default=64, help="first N GSM8K test problems")
    parser.add_argument("--max-new-tokens", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", default="results/lm-eval-agreement")
    parser.add_argument("--cache", default=None, help="lm-eval request cache (see above)")
    args = parser.parse_args()

    import lm_eval
    from lm_eval.tasks import TaskManager

    import workbench.interop.lmeval  # noqa: F401  (registers --model als)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = lm_eval.simple_evaluate(
        model="als",
        model_args={
            "model": args.model,
            "max_new_tokens": args.max_new_tokens,
            "batch_size": args.batch_size,
        },
        tasks=["gsm8k_local"],
        task_manager=TaskManager(include_path=str(ROOT / "tasks")),
        limit=args.limit,
        log_samples=True,
        use_cache=str(Path(args.cache or ROOT / ".cache" / "lm-eval" / out.name)),
    )
    by_filter: dict[str, dict[int, dict]] = {}
    for sample in results["samples"]["gsm8k_local"]:
        by_filter.setdefault(sample["filter"], {})[sample["doc_id"]] = sample
    first = next(iter(by_filter.values()))
    rows = []
    for doc_id in sorted(first):
        text = first[doc_id]["resps"][0][0]
        gold = first[doc_id]["doc"]["answer"].split("####")[-1].strip()
        verdict = grade(text, gold, "gsm8k")
        row = {
            "doc_id": doc_id,
            "gold": gold,
            "workbench_predicted": verdict.predicted,
            "workbench_correct": verdict.correct,
            "workbench_extraction": verdict.method,
            "text": text,
        }
        for name, samples in by_filter.items():
            row[f"{name}_extracted"] = samples[doc_id]["filtered_resps"][0]
            row[f"{name}_correct"] = bool(samples[doc_id]["exact_match"] == 1.0)
        rows.append(row)
    with (out / "rows.jsonl").open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    wb = [r["workbench_correct"] for r in rows]
    summary = {
        "model": args.model,
        "n": len(rows),
        "max_new_tokens": args.max_new_tokens,
        "workbench_accuracy": sum(wb) / len(rows),
        "filters": {},
    }
    for name in by_filter:
        lm = [r[f"{name}_correct"] for r in rows]
        table = {
            "both_correct": sum(a and b for a, b in zip(wb, lm, strict=True)),
            "only_workbench": sum(a and not b for a, b in zip(wb, lm, strict=True)),
            "only_lm_eval": sum(b and not a for a, b in zip(wb, lm, strict=True)),
            "both_wrong": sum(not a and not b for a, b in zip(wb, lm, strict=True)),
        }
        agree = table["both_correct"] + table["both_wrong"]
        kappa = cohen_kappa_score(wb, lm) if len(set(wb + lm)) > 1 else float("nan")
        summary["filters"][name] = {
            "lm_eval_accuracy": sum(lm) / len(rows),
            "agreement": agree / len(rows),
            "cohen_kappa": None if kappa != kappa else round(float(kappa), 3),
            **table,
        }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, s in summary["filters"].items():
        print(
            f"{name}: lm-eval accuracy {s['lm_eval_accuracy']:.3f} vs workbench "
            f"{summary['workbench_accuracy']:.3f}; agreement {s['agreement']:.3f}, kappa "
            f"{s['cohen_kappa']}; only workbench {s['only_workbench']}, only lm-eval "
            f"{s['only_lm_eval']}"
        )
    print(f"n={len(rows)}")


if __name__ == "__main__":
    main()
