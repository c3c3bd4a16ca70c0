"""lm-evaluation-harness through the workbench (``--model als``) on the toy model and task.

The generations lm-eval receives must be the workbench's own (the same prompts, decoding and
steering as `run_cot`, i.e. `als generate`); lm-eval then grades them with its GSM8K filters. The
two graders extract different things (lm-eval's flexible filter: the last number in the text;
``strict-match``: a ``#### N`` line; the workbench: the first closed ``\\boxed{}``), so their
verdicts may differ exactly where their extracted answers differ, and nowhere else.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workbench.cli.main import main
from workbench.core.grading import normalize_number
from workbench.core.steering import steer
from workbench.experiment.rundir import RunDir
from workbench.methods.cot import run_cot
from workbench.sources.toy import toy_problems

lm_eval = pytest.importorskip("lm_eval")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> RunDir:
    out = tmp_path_factory.mktemp("toyrun")
    args = ["run", "--model.name", "toy", "--als.dataset", "toy", "--als.n_fit", "40"]
    args += ["--als.n_val", "10", "--als.n_test", "20", "--generation.max_new_tokens", "16"]
    args += ["--out", str(out)]
    assert main(args) == 0
    return RunDir(out)


def _evaluate(model_args: dict) -> dict:
    from lm_eval.tasks import TaskManager

    import workbench.interop.lmeval  # noqa: F401  (registers --model als)

    return lm_eval.simple_evaluate(
        model="als",
        model_args=model_args,
        tasks=["als_toy"],
        task_manager=TaskManager(include_path=str(ROOT / "tasks")),
        log_samples=True,
    )


def _by_filter(results: dict) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = {}
    for sample in results["samples"]["als_toy"]:
        out.setdefault(sample["filter"], {})[sample["doc_id"]] = sample
    return out


def _same_number(a: str, b: str) -> bool:
    x, y = normalize_number(a), normalize_number(b)
    return x is not None and x == y


@pytest.mark.parametrize("steered", [True, False])
def test_lm_eval_scores_the_workbench_generations(toy_run, steered):
    results = _evaluate({"run": str(toy_run.root), "steer": steered})
    samples = _by_filter(results)
    problems = toy_problems("test")
    bridge = toy_run.load_model()
    intervention = steer(bridge, toy_run.steering(), toy_run.directions()) if steered else None
    rows = run_cot(
        bridge,
        problems,
        generation=toy_run.generation(),
        prompt=toy_run.prompt(),
        intervention=intervention,
        progress=False,
    )
    flexible = samples["flexible-extract"]
    assert len(flexible) == len(problems)
    for doc_id, row in enumerate(rows):
        assert flexible[doc_id]["resps"][0][0] == row["text"]  # the workbench's generation
    agree = 0
    for name, by_doc in samples.items():
        for doc_id, row in enumerate(rows):
            extracted = by_doc[doc_id]["filtered_resps"][0]
            lm_correct = by_doc[doc_id]["exact_match"] == 1.0
            if _same_number(extracted, row["predicted"] or ""):
                assert lm_correct == row["correct"], (name, doc_id, extracted, row)
                agree += 1
            elif lm_correct != row["correct"]:
                assert not _same_number(extracted, row["predicted"] or "")
    assert agree > 0  # the toy model writes some answers both graders read alike
    workbench_acc = sum(r["correct"] for r in rows) / len(rows)
    lm_acc = results["results"]["als_toy"]["exact_match,flexible-extract"]
    same_reading = [
        d
        for d, r in enumerate(rows)
        if _same_number(flexible[d]["filtered_resps"][0], r["predicted"] or "")
    ]
    if len(same_reading) == len(rows):
        assert lm_acc == pytest.approx(workbench_acc)


def test_loglikelihood_is_the_bridge_forward_with_the_hooks(toy_run):
    from lm_eval.api.instance import Instance

    from workbench.core.prompts import encode_prompts
    from workbench.interop.lmeval import ALSLM

    plain = ALSLM(run=str(toy_run.root), steer=False)
    steered = ALSLM(run=str(toy_run.root), steer=True)
    req = Instance("loglikelihood", doc={}, arguments=("What is 2 + 3?", "\\boxed{5}"), idx=0)
    (lp, greedy), (lp_steered, _) = plain.loglikelihood([req])[0], steered.loglikelihood([req])[0]
    ctx = encode_prompts(plain.tokenizer, ["What is 2 + 3?"], toy_run.prompt())[0]
    cont = plain.tokenizer("\\boxed{5}", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = plain.bridge(torch.tensor([ctx + cont]))[0, len(ctx) - 1 : -1]
    expected = torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(cont)[:, None]).sum()
    assert lp == pytest.approx(float(expected), abs=1e-4)
    assert isinstance(greedy, bool) and lp_steered != pytest.approx(lp, abs=1e-6)


def test_the_gsm8k_task_reads_the_local_jsonl(monkeypatch):
    from lm_eval.tasks import TaskManager, get_task_dict

    from workbench.sources.data import load_problems

    monkeypatch.chdir(ROOT)  # the task's data path is relative to the repository root
    task = get_task_dict(["gsm8k_local"], TaskManager(include_path=str(ROOT / "tasks")))
    docs = list(task["gsm8k_local"].test_docs())
    problems = load_problems("gsm8k", "test")
    assert len(docs) == len(problems) == 1319
    assert docs[0]["question"] == problems[0].question
    assert docs[0]["answer"].endswith(f"#### {problems[0].answer}")
