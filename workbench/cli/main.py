"""`als` / `python -m workbench`: subcommands over the library's functions, dispatch and printing.

The options come from the command dataclasses (`workbench.cli.commands`) through the generated
parser (`workbench.cli.parser`). Every user error (a `WorkbenchError`, a bad option) is printed as
one line and exits with code 2; results already written stay on disk, and rerunning resumes.
A command that writes a run folder holds its writer lock throughout (`WRITES_RUN_FOLDER`), so a
second one started on the same folder is refused at once. A command that records its settings
before loading its model checks first that the model's name resolves (`check_model_name`: one
hub look-up at most, no retries), so an unknown name fails at once and writes nothing.
`als --version` answers from the package metadata before anything heavy is imported.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:  # the command dataclasses import the whole stack: `als --version` needs none
    from workbench.cli.commands import (
        CompareArgs,
        DeriveArgs,
        ExportArgs,
        GenerateArgs,
        ProbeArgs,
        PublishArgs,
        RouteArgs,
        RunArgs,
        SampleArgs,
        StageArgs,
        SweepArgs,
        UpgradeArgs,
    )

__all__ = ["main"]

logger = logging.getLogger("workbench")


def cmd_generate(a: GenerateArgs) -> int:
    from workbench.core.artifacts import write_json
    from workbench.core.prompts import PromptConfig
    from workbench.core.records import summarize
    from workbench.engine.config import GenerationConfig
    from workbench.experiment.rundir import RunDir
    from workbench.methods.cot import run_cot
    from workbench.sources.data import load_problems
    from workbench.sources.models import check_model_name, load_model

    check_model_name(a.model.name)  # before anything is written
    d = a.data
    problems = load_problems(d.dataset, d.split, data_dir=a.data_dir, limit=d.limit)
    out = RunDir(Path(a.out))
    out.record_settings(
        "generate",
        asdict(a.model),
        may_change=("limit", "generation.static_step"),  # greedy output is the same (tested)
        defaults={"generation": asdict(GenerationConfig()), "prompt": asdict(PromptConfig())},
        dataset=d.dataset,
        split=d.split,
        limit=d.limit,
        generation=asdict(a.generation),
        prompt=asdict(a.prompt),
        stop_at_answer=a.stop_at_answer,
    )
    bridge = load_model(a.model)
    rows = run_cot(
        bridge,
        problems,
        generation=a.generation,
        prompt=a.prompt,
        out=out.generations_path,
        stop_at_answer=a.stop_at_answer,
    )
    s = summarize(rows, method="cot")
    meta = {"model": a.model.name, "dataset": d.dataset, "split": d.split}
    write_json(out.summary_path, {**meta, **s.to_json()})
    print(
        f"{a.model.name} on {d.dataset}/{d.split}: accuracy {s.accuracy:.3f} "
        f"({s.correct}/{s.n}, Wilson 95% CI [{s.ci_low:.3f}, {s.ci_high:.3f}]); "
        f"{s.tokens_per_problem:.0f} generated tokens and "
        f"{s.seconds_per_problem:.2f} s per problem; finish {s.finish}"
    )
    print(f"wrote {out.generations_path} and {out.summary_path}")
    return 0


def cmd_sample(a: SampleArgs) -> int:
    from workbench.core.artifacts import write_json
    from workbench.core.records import summarize
    from workbench.experiment.rundir import RunDir
    from workbench.methods.sampling import pass_rates, run_samples, voted_rows
    from workbench.sources.models import check_model_name

    source = RunDir(Path(a.run_dir))
    problems = source.problems(a.split, data_dir=a.data_dir)[: a.limit]
    generation = replace(source.generation(), batch_size=a.batch_size)
    model = {**source.settings()["model"], **a.overrides()}
    check_model_name(model["name"])  # before anything is written
    out = RunDir(Path(a.out))
    out.record_settings(
        "sample",
        model,
        may_change=("limit", "generation.batch_size", "model.device", "model.dtype"),
        source_run=str(source.root),
        split=a.split,
        limit=a.limit,
        sampling=asdict(a.sampling),
        generation=asdict(generation),
        prompt=asdict(source.prompt()),
    )
    bridge = source.load_model(**a.overrides())
    rows = run_samples(
        bridge,
        problems,
        a.sampling,
        generation=generation,
        prompt=source.prompt(),
        out=out.root / "samples.jsonl",
    )
    rates = pass_rates(rows)
    voted = voted_rows(problems, rows, answer_format=source.prompt().answer_format)
    sc = summarize(voted, method=f"sc@{a.sampling.k}")
    per = summarize(rows, method="sample")
    mixed = sum(r.mixed for r in rates.values())
    summary = {
        "problems": len(problems),
        "samples": len(rows),
        "mixed_problems": mixed,
        "none_correct": sum(r.correct == 0 for r in rates.values()),
        "all_correct": sum(r.correct == r.n for r in rates.values()),
        "per_sample": per.to_json(),
        "sc": sc.to_json(),
    }
    write_json(out.summary_path, summary)
    print(
        f"{len(problems)} problems x {a.sampling.k} samples: per-sample accuracy "
        f"{per.accuracy:.3f} ({per.correct}/{per.n}); SC@{a.sampling.k} {sc.accuracy:.3f} "
        f"({sc.correct}/{sc.n}); both outcomes on {mixed}, none correct on "
        f"{summary['none_correct']}, all correct on {summary['all_correct']}; "
        f"{per.tokens_per_problem:.0f} tokens a chain"
    )
    return 0


def cmd_run(a: RunArgs) -> int:
    from workbench.experiment.pipeline import record_run_settings, run_als
    from workbench.experiment.rundir import RunDir
    from workbench.sources.models import check_model_name, load_model

    check_model_name(a.model.name)  # before anything is written
    out = Path(a.out)
    record_run_settings(RunDir(out), a.model, a.als, a.generation, a.prompt)
    bridge = load_model(a.model)
    results = run_als(
        bridge, out, a.als, generation=a.generation, prompt=a.prompt, data_dir=a.data_dir
    )
    for row in results["test"]:
        extra = f", McNemar p={row['mcnemar_p']:.3g}" if row["mcnemar_p"] is not None else ""
        print(
            f"{row['method']:>4}: accuracy {row['accuracy']:.3f} "
            f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}] (n={row['n']}){extra}; "
            f"{row['tokens_per_problem']:.0f} tokens, "
            f"{row['seconds_per_problem']:.2f} s per problem, "
            f"intervention rate {row['intervention_rate']:.3f}"
        )
    from workbench.report.run_report import build_run_report  # the report stage

    print(f"wrote {build_run_report(out)}")
    return 0


def _launched(launcher: Any, a: CompareArgs | SweepArgs, cfg: Any) -> Any:
    """`launcher` (`launch_sweep` or `launch_compare`) on the run folder with the options given."""
    return launcher(a.run_dir, cfg, a.launch, overrides=a.overrides(), data_dir=a.data_dir)


def _report_failures(failures) -> int:
    for f in failures:
        print(f"{f.name} failed: {f.error}\n  log: {f.log}\n  rerun alone: {f.rerun}")
    print(f"{len(failures)} job(s) failed; finished rows are kept (rerunning resumes)")
    return 1


def _run_bridge(a: Any, *, finished: bool = True) -> tuple[Path, object]:
    """The run folder of `a.run_dir` (finished, unless not asked), and its model loaded with
    any device/dtype override."""
    from workbench.experiment.rundir import RunDir

    run = RunDir(Path(a.run_dir))
    run = run.require_finished() if finished else run
    return run.root, run.load_model(**a.overrides())


def _probe_samples(a: ProbeArgs) -> int:
    from workbench.core.contrast_probes import ContrastProbeConfig
    from workbench.experiment.contrast_run import contrast_run
    from workbench.experiment.rundir import SamplesDir
    from workbench.report.samples_report import build_samples_report

    samples = SamplesDir.of_samples(a.samples)
    bridge = samples.load_model(**a.overrides())
    cfg = ContrastProbeConfig(n_folds=a.probe.n_folds, n_bootstrap=a.probe.n_bootstrap)
    s = contrast_run(bridge, samples, cfg, data_dir=a.data_dir)
    print(
        f"{s['problems']} problems, {s['chains']} chains ({s['correct_chains']} correct); "
        f"both outcomes on {s['mixed_problems']}"
    )
    for metric, b in s["best"].items():
        print(
            f"{metric}: best at layer {b['layer']}: {b['value']:.3f} "
            f"[{b['ci_low']:.3f}, {b['ci_high']:.3f}]"
        )
    report = build_samples_report(samples)
    print(f"wrote {samples.contrast_dir} and {report}")
    return 0


def cmd_derive(a: DeriveArgs) -> int:
    from workbench.experiment.derived_run import derive_run
    from workbench.experiment.rundir import SamplesDir

    samples = SamplesDir.of_samples(a.samples)
    bridge = samples.load_model(**a.overrides())
    run = derive_run(
        bridge, samples, a.kind, a.out, n_candidates=a.n_candidates, data_dir=a.data_dir
    )
    plan = json.loads(run.selection_plan_path.read_text())
    print(
        f"{run.root}: the {a.kind} direction of {samples.root}, candidate layers "
        f"{plan['candidates']}; next: als stage select {run.root} && als stage test {run.root}"
    )
    return 0


def cmd_route(a: RouteArgs) -> int:
    from workbench.experiment.router_run import router_run
    from workbench.experiment.rundir import RunDir
    from workbench.report.samples_report import build_samples_report

    run = RunDir(Path(a.run_dir)).require_finished()
    bridge = run.load_model(**a.overrides())
    if a.retime:
        from workbench.experiment.router_retime import router_retime

        timed = router_retime(bridge, run, a.test_samples, a.retime, data_dir=a.data_dir)
        print(
            f"re-timed on {timed['n']} test problems: CoT "
            f"{timed['cot']['seconds_per_token'] * 1e3:.1f} ms a token, sampled chains "
            f"{timed['sample']['seconds_per_token'] * 1e3:.1f} ms a token"
        )
    out = router_run(bridge, run, a.fit_samples, a.test_samples, a.budgets, data_dir=a.data_dir)
    report = build_samples_report(a.test_samples)
    print(f"predictor: the difficulty direction at layer {out['layer']} (last prompt token)")
    for r in out["table"]:
        share = r.get("share_expensive")
        print(
            f"{r['method']:>22}: accuracy {r['accuracy']:.3f} [{r['ci_low']:.3f}, "
            f"{r['ci_high']:.3f}]; {r['tokens_per_problem']:.0f} tokens a problem"
            + (f", {sec:.2f} s" if (sec := r["seconds_per_problem"]) is not None else "")
            + (f"; {share:.0%} to SC" if share is not None else "")
        )
    print(f"wrote {report}")
    return 0


def cmd_probe(a: ProbeArgs) -> int:
    from workbench.experiment.probe_run import probe_run, sampled_fit_problems
    from workbench.experiment.rundir import RunDir
    from workbench.report.run_report import build_run_report

    if a.samples is not None:
        return _probe_samples(a)
    if a.probe.difficulty_from is not None:  # before the model loads
        sampled_fit_problems(RunDir.of(a.run_dir), a.probe.difficulty_from)
    run, bridge = _run_bridge(a, finished=not a.probe.fit_only)
    summary = probe_run(bridge, run, a.probe, data_dir=a.data_dir)
    report = None if a.probe.fit_only else build_run_report(run)
    b = summary["best_auroc"]
    print(
        f"best layer {summary['best_layer']}: AUROC {b['value']:.3f} "
        f"[{b['ci_low']:.3f}, {b['ci_high']:.3f}] (n={b['n']})"
    )
    e16 = summary["early_auroc_k16_at_best_layer"]
    if e16:
        print(
            f"first 16 tokens at that layer: AUROC {e16['value']:.3f} "
            f"[{e16['ci_low']:.3f}, {e16['ci_high']:.3f}]"
        )
    print(f"wrote {RunDir.of(run).probe_dir}" + (f" and {report}" if report else ""))
    return 0


def cmd_compare(a: CompareArgs) -> int:
    from workbench.experiment.compare import run_compare
    from workbench.experiment.rundir import RunDir
    from workbench.report.run_report import build_run_report

    cfg = a.compare
    if a.launch:
        from workbench.experiment.launch import launch_compare

        failures = _launched(launch_compare, a, cfg)
        if failures:
            return _report_failures(failures)
    run, bridge = _run_bridge(a)
    table = run_compare(bridge, run, cfg, data_dir=a.data_dir)
    for r in table:
        eas = "n/a" if r["eas"] is None else f"{r['eas']:.3f}"
        trade = "n/a" if r["tradeoff"] is None else f"{r['tradeoff']:.1f}"
        change = r["tradeoff_change_vs_cot"]
        trade += "" if change is None or r["method"] == "cot" else f" ({change:+.1f}% vs CoT)"
        speed = "" if r["als_speedup"] is None else f", ALS {r['als_speedup']:.2f}x faster"
        same = r.get("cot_accuracy_same")
        vs = "" if same is None or r["method"] == "cot" else f", CoT {same:.3f} on these"
        print(
            f"{r['method']:>16}: accuracy {r['accuracy']:.3f} [{r['ci_low']:.3f}, "
            f"{r['ci_high']:.3f}] (n={r['n']}{vs}); {r['seconds_per_problem']:.2f} s and "
            f"{r['tokens_per_problem']:.0f} tokens per problem; EAS {eas}{speed}; trade-off "
            f"{trade} on the {r['tradeoff_n']} problems every method decoded"
        )
    print(f"wrote {RunDir.of(run).compare_dir} and {build_run_report(run)}")
    return 0


def cmd_stage(a: StageArgs) -> int:
    from workbench.experiment.rundir import RunDir
    from workbench.stages import run_stage

    run = RunDir(Path(a.run_dir))
    result = run_stage(a.name, run, data_dir=a.data_dir, limit=a.limit, **a.overrides())
    wrote = f": wrote {result}" if isinstance(result, Path) else ""
    print(f"stage {a.name} done on {run.root}{wrote}")
    return 0


def cmd_upgrade(a: UpgradeArgs) -> int:
    from workbench.experiment.upgrade import upgrade_run

    changed = upgrade_run(Path(a.run_dir))
    print(f"upgraded {len(changed)} files" + "".join(f"\n  {p}" for p in changed))
    return 0


def cmd_publish(a: PublishArgs) -> int:
    from workbench.experiment.publish import publish_run

    out = a.out or str(Path("results") / Path(a.run_dir).resolve().name)
    published = publish_run(a.run_dir, out)
    size = published.total_bytes / 1e6
    print(f"published {len(published.files)} files ({size:.2f} MB) to {published.root}")
    return 0


def cmd_sweep(a: SweepArgs) -> int:
    from workbench.experiment.rundir import RunDir
    from workbench.experiment.sweeps import run_sweep, select_and_test
    from workbench.report.run_report import build_run_report

    cfg = a.sweep
    if a.launch:
        from workbench.experiment.launch import launch_sweep

        table, failures = _launched(launch_sweep, a, cfg)
        if failures:
            return _report_failures(failures)
        run = Path(a.run_dir)
        if a.select:
            _, bridge = _run_bridge(a)
    else:
        run, bridge = _run_bridge(a)
        table = run_sweep(bridge, run, cfg, data_dir=a.data_dir)
    for r in table:
        print(
            f"{r['name']}: accuracy {r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] "
            f"delta {r['delta_vs_cot']:+.3f} p={r['mcnemar_p']:.3g} "
            f"rate {r['intervention_rate']:.3f} repetition {r['repetition']:.3f}"
        )
    if a.select:
        report = select_and_test(bridge, run, cfg, data_dir=a.data_dir)
        best = report["validation_best"]
        print(f"selected on {cfg.split}: {best['name']} (accuracy {best['accuracy']:.3f})")
        for r in report["test"]:
            print(
                f"  test {r['direction']:>10}: accuracy {r['accuracy']:.3f} "
                f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] delta vs CoT {r['delta_vs_cot']:+.3f} "
                f"p={r['mcnemar_p']:.3g}"
            )
    print(f"wrote {RunDir.of(run).sweep_dir} and {build_run_report(run)}")
    return 0


def cmd_export(a: ExportArgs) -> int:
    from workbench.experiment.rundir import RunDir
    from workbench.interop.export import (
        steering_vectors,
        write_control_vector,
        write_lm_eval_steering,
    )
    from workbench.sources.models import model_type

    run = RunDir(Path(a.run_dir)).require_finished()
    spec = run.steering()
    if a.layers is not None:
        spec = replace(spec, layers=a.layers, tau=2.0)  # the gate is not exported anyway
    vectors = steering_vectors(run.directions(), spec, scale=a.scale)
    layers = ", ".join(str(layer) for layer in sorted(vectors))
    model = run.settings()["model"]["name"]
    if a.format == "gguf":
        hint = a.model_hint or model_type(model)
        out = Path(a.out) if a.out else run.export_path("gguf")
        write_control_vector(out, vectors, site=spec.site, model_hint=hint)
        print(
            f"wrote {out}: llama.cpp control vector ({hint}), layers {layers} at {spec.site}, "
            f"scale {a.scale:g}; load with --control-vector {out} (every position)"
        )
    else:
        out = Path(a.out) if a.out else run.export_path("lm-eval")
        write_lm_eval_steering(out, vectors, site=spec.site)
        print(
            f"wrote {out}: lm-eval steered-model file, layers {layers} at {spec.site}, scale "
            f"{a.scale:g}; use lm_eval --model steered --model_args "
            f"pretrained=<the HF folder or id of {model}>,steer_path={out} (every position)"
        )
    return 0


COMMAND_FUNCTIONS = {
    "generate": cmd_generate,
    "sample": cmd_sample,
    "route": cmd_route,
    "derive": cmd_derive,
    "run": cmd_run,
    "probe": cmd_probe,
    "compare": cmd_compare,
    "sweep": cmd_sweep,
    "stage": cmd_stage,
    "upgrade": cmd_upgrade,
    "publish": cmd_publish,
    "export": cmd_export,
}


WRITES_RUN_FOLDER = {
    "generate": "out",
    "route": "test_samples",
    "derive": "out",
    "sample": "out",
    "run": "out",
    "probe": "folder_written",
    "compare": "run_dir",
    "sweep": "run_dir",
    "stage": "run_dir",
    "upgrade": "run_dir",
}
"""Commands that write a run folder -> the option naming it. Each holds the folder's writer lock
(`RunDir.writer`) from before it loads a model until it returns, so that a second writer is
refused before it decodes anything (the jobs of ``--launch`` write under the launcher's lock).
Left out: ``export`` (one file under export/ of a finished run, which no other command writes)
and ``publish`` (writes outside the run, and may copy a live one)."""


def _writing(command: str, args: Any, argv: list[str] | None) -> contextlib.AbstractContextManager:
    """The writer lock of the run folder `command` writes, or nothing."""
    from workbench.experiment.rundir import RunDir

    option = WRITES_RUN_FOLDER.get(command)
    if option is None:
        return contextlib.nullcontext()
    line = "als " + " ".join(sys.argv[1:] if argv is None else argv)
    return RunDir(Path(getattr(args, option))).writer(command=line)


def _check_model(args: Any) -> None:
    """Refuse an unknown `--model.name` before the writer lock makes the run folder: one line, at
    once (`check_model_name`; its answer is kept, so the command does not ask the hub again)."""
    from workbench.sources.models import ModelConfig, check_model_name

    model = getattr(args, "model", None)
    if isinstance(model, ModelConfig):
        check_model_name(model.name)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    quiet = ("httpx", "urllib3", "filelock", "huggingface_hub", "transformers", "kaleido")
    for name in (*quiet, "choreographer", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # huggingface_hub prints its warnings with a handler of its own and passes them on to ours:
    # each came out twice. Only ours now (its handler is added when it is first imported).
    import huggingface_hub.utils.logging  # noqa: F401

    hub = logging.getLogger("huggingface_hub")
    for handler in list(hub.handlers):
        if type(handler) is logging.StreamHandler:
            hub.removeHandler(handler)


def _version(argv: list[str]) -> bool:
    """`als --version` (before any subcommand): print it from the package metadata, without
    importing the stack the parser needs (seconds)."""
    leading = []
    for arg in argv:
        if not arg.startswith("-"):
            break
        leading.append(arg)
    if "--version" not in leading:
        return False
    from importlib.metadata import PackageNotFoundError, version

    try:
        print(f"als-workbench {version('als-workbench')}")
    except PackageNotFoundError:  # a source tree that was never installed
        print("als-workbench 0+unknown")
    return True


def main(argv: list[str] | None = None) -> int:
    if _version(sys.argv[1:] if argv is None else argv):
        return 0
    from workbench.cli.parser import parse

    try:
        try:
            command, args, verbose = parse(argv)
        except SystemExit as exc:  # --help exits; a bad option returns its status like any error
            if not exc.code:
                raise
            return int(exc.code)
        _configure_logging(verbose)
        _check_model(args)
        with _writing(command, args, argv):
            return COMMAND_FUNCTIONS[command](args)
    except WorkbenchError as exc:
        print(f"als: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that cannot be read or written: say which, no traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"als: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("als: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
