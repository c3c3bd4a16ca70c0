"""`als` / `python -m workbench`: subcommands over the library's functions.

Every user error (a `WorkbenchError`) is printed as one line and exits with code 2; results already
written stay on disk, and rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from workbench.config import (
    add_config_args,
    config_from_args,
    finite_float,
    whole_number,
)
from workbench.errors import WorkbenchError
from workbench.generation import GenerationConfig

__all__ = ["main"]

logger = logging.getLogger("workbench")


_MODEL_FLAGS = {"name": "--model"}


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from workbench.models import ModelConfig

    add_config_args(p, ModelConfig, flags=_MODEL_FLAGS)


def _model_config(args: argparse.Namespace):
    from workbench.models import ModelConfig

    return config_from_args(ModelConfig, args, flags=_MODEL_FLAGS)


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with the JSONL files (default: $ALS_DATA_DIR, else ../shared/data)",
    )


def _add_data_args(p: argparse.ArgumentParser, *, split: str) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="gsm8k", help="gsm8k or math (MATH-500 / MATH pool)")
    g.add_argument("--split", default=split, help="gsm8k: train, test; math: pool, test")
    g.add_argument("--limit", type=whole_number, default=None, help="first N problems of the split")
    _add_data_dir(g)


def cmd_generate(args: argparse.Namespace) -> int:
    from workbench.artifacts import write_json
    from workbench.cot import run_cot
    from workbench.data import load_problems
    from workbench.models import load_model
    from workbench.records import summarize
    from workbench.rundir import RunDir

    generation = config_from_args(GenerationConfig, args)
    model_cfg = _model_config(args)
    problems = load_problems(args.dataset, args.split, data_dir=args.data_dir, limit=args.limit)
    out = RunDir(Path(args.out))
    out.record_settings(
        "generate",
        asdict(model_cfg),
        may_change=("limit",),
        defaults={"generation": asdict(GenerationConfig())},
        dataset=args.dataset,
        split=args.split,
        limit=args.limit,
        generation=asdict(generation),
        stop_at_answer=not args.no_stop_at_answer,
    )
    bridge = load_model(model_cfg)
    rows = run_cot(
        bridge,
        problems,
        generation=generation,
        out=out.generations_path,
        stop_at_answer=not args.no_stop_at_answer,
    )
    s = summarize(rows, method="cot")
    meta = {"model": model_cfg.name, "dataset": args.dataset, "split": args.split}
    write_json(out.summary_path, {**meta, **s.to_json()})
    print(
        f"{model_cfg.name} on {args.dataset}/{args.split}: accuracy {s.accuracy:.3f} "
        f"({s.correct}/{s.n}, Wilson 95% CI [{s.ci_low:.3f}, {s.ci_high:.3f}]); "
        f"{s.tokens_per_problem:.0f} generated tokens and "
        f"{s.seconds_per_problem:.2f} s per problem; finish {s.finish}"
    )
    print(f"wrote {out.generations_path} and {out.summary_path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from workbench.models import load_model
    from workbench.pipeline import ALSRunConfig, record_run_settings, run_als
    from workbench.prompts import PromptConfig
    from workbench.rundir import RunDir

    prompt = PromptConfig()
    cfg = config_from_args(ALSRunConfig, args)
    generation = config_from_args(GenerationConfig, args)
    model_cfg = _model_config(args)
    out = Path(args.out)
    record_run_settings(RunDir(out), model_cfg, cfg, generation, prompt)  # refuse before loading
    bridge = load_model(model_cfg)
    results = run_als(
        bridge, out, cfg, generation=generation, prompt=prompt, data_dir=args.data_dir
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
    from workbench.run_report import build_run_report  # the report stage

    print(f"wrote {build_run_report(out)}")
    return 0


def _add_run_dir_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="folder written by `als run`")
    p.add_argument("--device", default=None, help="override the run's device")
    p.add_argument("--dtype", default=None, help="override the run's dtype")
    _add_data_dir(p)


_LAUNCH_FLAGS = {"folder": "--jobs-folder"}


def _add_launch_args(p: argparse.ArgumentParser) -> None:
    from workbench.launch import LaunchConfig

    p.add_argument(
        "--launch",
        choices=["local", "slurm"],
        default=None,
        help="run the shards as submitit jobs (slurm: sbatch; local: subprocesses), wait, merge",
    )
    add_config_args(p, LaunchConfig, skip=("executor",), flags=_LAUNCH_FLAGS)


def _launch_config(args: argparse.Namespace):
    from workbench.launch import LaunchConfig

    return config_from_args(LaunchConfig, args, flags=_LAUNCH_FLAGS, executor=args.launch)


def _launched(launcher: Any, args: argparse.Namespace, cfg: Any) -> Any:
    """`launcher` (`launch_sweep` or `launch_compare`) on the run folder with the options given."""
    return launcher(
        args.run_dir, cfg, _launch_config(args), overrides=_overrides(args), data_dir=args.data_dir
    )


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    return {k: v for k, v in (("device", args.device), ("dtype", args.dtype)) if v}


def _report_failures(failures) -> int:
    for f in failures:
        print(f"{f.name} failed: {f.error}\n  log: {f.log}\n  rerun alone: {f.rerun}")
    print(f"{len(failures)} job(s) failed; finished rows are kept (rerunning resumes)")
    return 1


def _run_bridge(args: argparse.Namespace) -> tuple[Path, object]:
    """The run folder of `args.run_dir`, and its model loaded with any device/dtype override."""
    from workbench.rundir import RunDir
    from workbench.stages import load_run_model

    run = RunDir(Path(args.run_dir)).require_finished()
    overrides = _overrides(args)
    return run.root, load_run_model(run, **overrides)


def cmd_probe(args: argparse.Namespace) -> int:
    from workbench.probe_run import ProbeRunConfig, probe_run
    from workbench.run_report import build_run_report

    cfg = config_from_args(ProbeRunConfig, args)
    run, bridge = _run_bridge(args)
    summary = probe_run(bridge, run, cfg, data_dir=args.data_dir)
    report = build_run_report(run)
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
    print(f"wrote {run / 'probe'} and {report}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from workbench.compare import CompareConfig, run_compare
    from workbench.run_report import build_run_report

    cfg = config_from_args(CompareConfig, args)
    if args.launch:
        from workbench.launch import launch_compare

        failures = _launched(launch_compare, args, cfg)
        if failures:
            return _report_failures(failures)
    run, bridge = _run_bridge(args)
    table = run_compare(bridge, run, cfg, data_dir=args.data_dir)
    for r in table:
        eas = "n/a" if r["eas"] is None else f"{r['eas']:.3f}"
        speed = "" if r["als_speedup"] is None else f", ALS {r['als_speedup']:.2f}x faster"
        same = r.get("cot_accuracy_same")
        vs = "" if same is None or r["method"] == "cot" else f", CoT {same:.3f} on these"
        print(
            f"{r['method']:>16}: accuracy {r['accuracy']:.3f} [{r['ci_low']:.3f}, "
            f"{r['ci_high']:.3f}] (n={r['n']}{vs}); {r['seconds_per_problem']:.2f} s and "
            f"{r['tokens_per_problem']:.0f} tokens per problem; EAS {eas}{speed}"
        )
    print(f"wrote {run / 'compare'} and {build_run_report(run)}")
    return 0


def cmd_stage(args: argparse.Namespace) -> int:
    from workbench.rundir import RunDir
    from workbench.stages import run_stage

    run = RunDir(Path(args.run_dir))
    overrides = _overrides(args)
    result = run_stage(args.name, run, data_dir=args.data_dir, **overrides)
    wrote = f": wrote {result}" if isinstance(result, Path) else ""
    print(f"stage {args.name} done on {run.root}{wrote}")
    return 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    from workbench.upgrade import upgrade_run

    changed = upgrade_run(Path(args.run_dir))
    print(f"upgraded {len(changed)} files" + "".join(f"\n  {p}" for p in changed))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from workbench.run_report import build_run_report
    from workbench.sweeps import SweepConfig, run_sweep, select_and_test

    cfg = config_from_args(SweepConfig, args)
    if args.launch:
        from workbench.launch import launch_sweep

        table, failures = _launched(launch_sweep, args, cfg)
        if failures:
            return _report_failures(failures)
        run = Path(args.run_dir)
        if args.select:
            _, bridge = _run_bridge(args)
    else:
        run, bridge = _run_bridge(args)
        table = run_sweep(bridge, run, cfg, data_dir=args.data_dir)
    for r in table:
        print(
            f"{r['name']}: accuracy {r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] "
            f"delta {r['delta_vs_cot']:+.3f} p={r['mcnemar_p']:.3g} "
            f"rate {r['intervention_rate']:.3f} repetition {r['repetition']:.3f}"
        )
    if args.select:
        report = select_and_test(bridge, run, cfg, data_dir=args.data_dir)
        best = report["validation_best"]
        print(f"selected on {cfg.split}: {best['name']} (accuracy {best['accuracy']:.3f})")
        for r in report["test"]:
            print(
                f"  test {r['direction']:>10}: accuracy {r['accuracy']:.3f} "
                f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] delta vs CoT {r['delta_vs_cot']:+.3f} "
                f"p={r['mcnemar_p']:.3g}"
            )
    print(f"wrote {run / 'sweep'} and {build_run_report(run)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from workbench.export import steering_vectors, write_control_vector, write_lm_eval_steering
    from workbench.models import model_type
    from workbench.rundir import RunDir

    run = RunDir(Path(args.run_dir)).require_finished()
    spec = run.steering()
    if args.layers is not None:
        spec = replace(spec, layers=args.layers, tau=2.0)  # the gate is not exported anyway
    vectors = steering_vectors(run.directions(), spec, scale=args.scale)
    layers = ", ".join(str(layer) for layer in sorted(vectors))
    model = run.settings()["model"]["name"]
    if args.format == "gguf":
        hint = args.model_hint or model_type(model)
        out = Path(args.out) if args.out else run.root / "export" / "control-vector.gguf"
        write_control_vector(out, vectors, site=spec.site, model_hint=hint)
        print(
            f"wrote {out}: llama.cpp control vector ({hint}), layers {layers} at {spec.site}, "
            f"scale {args.scale:g}; load with --control-vector {out} (every position)"
        )
    else:
        out = Path(args.out) if args.out else run.root / "export" / "lm-eval-steer.pt"
        write_lm_eval_steering(out, vectors, site=spec.site)
        print(
            f"wrote {out}: lm-eval steered-model file, layers {layers} at {spec.site}, scale "
            f"{args.scale:g}; use lm_eval --model steered --model_args "
            f"pretrained=<the HF folder or id of {model}>,steer_path={out} (every position)"
        )
    return 0


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected layers like 12 or 10,14, not {text!r}"
        ) from None


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage is one `--help` away)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_generate_command(sub: Any) -> None:
    gen = sub.add_parser(
        "generate",
        help="graded chain-of-thought generation (resumable)",
        description="Generate chains of thought, grade them against gold answers, write JSONL "
        "as it goes and a summary (accuracy with Wilson 95% CI, tokens, seconds). "
        "Paper scale on a GPU: --model Qwen/Qwen2.5-7B-Instruct --device cuda --dtype bfloat16 "
        "--batch-size 64 --max-new-tokens 1024.",
    )
    _add_model_args(gen)
    _add_data_args(gen, split="test")
    add_config_args(gen, GenerationConfig)
    gen.add_argument("--no-stop-at-answer", action="store_true", help="decode to EOS or the cap")
    gen.add_argument("--out", required=True, help="run folder (resumed if it exists)")
    gen.set_defaults(func=cmd_generate)


def _add_run_command(sub: Any) -> None:
    from workbench.pipeline import ALSRunConfig

    run = sub.add_parser(
        "run",
        help="the ALS experiment: fit directions, select on validation, test vs CoT",
        description="Fit per-layer success directions on graded CoT (fit split), choose layer, "
        "alpha and tau on a disjoint validation split, and compare CoT with ALS on held-out test "
        "problems; writes results.json, figures and report.html under --out, resumable. "
        "Paper scale on a GPU: --model Qwen/Qwen2.5-7B-Instruct --device cuda --dtype bfloat16 "
        "--batch-size 32 --max-new-tokens 1024 --n-fit 1000 --n-val 200 --n-test 1319 "
        "--alphas 0.05,0.1,0.2 --tau-quantiles 0.25,0.5,1.0 --n-candidate-layers 4.",
    )
    _add_model_args(run)
    _add_data_dir(run)
    add_config_args(run, ALSRunConfig)
    add_config_args(run, GenerationConfig)
    run.add_argument("--out", default="runs/als", help="run folder (resumed if it exists)")
    run.set_defaults(func=cmd_run)


def _add_probe_command(sub: Any) -> None:
    from workbench.probe_run import ProbeRunConfig

    probe = sub.add_parser(
        "probe",
        help="which layers carry the direction; drift trajectories (on a run folder)",
        description="Cross-validated per-layer probing with bootstrap CIs, early prediction, "
        "trajectories of cos(h_t, v) for CoT and ALS, and a PCA plane, for a folder made by "
        "`als run`; adds figures and a section to its report.html.",
    )
    _add_run_dir_args(probe)
    add_config_args(probe, ProbeRunConfig)
    probe.set_defaults(func=cmd_probe)


def _add_compare_command(sub: Any) -> None:
    from workbench.compare import CompareConfig

    compare = sub.add_parser(
        "compare",
        help="CoT, Self-Consistency, LatentSeek and ALS on the run's test problems",
        description="Like-for-like comparison on a folder made by `als run`: accuracy with CIs, "
        "paired tests vs CoT, seconds, tokens and passes per problem, speed-up of ALS, and the "
        "efficiency-accuracy score (accuracy gained per unit of extra relative compute over CoT).",
    )
    _add_run_dir_args(compare)
    add_config_args(compare, CompareConfig)
    _add_launch_args(compare)
    compare.set_defaults(func=cmd_compare)


def _add_sweep_command(sub: Any) -> None:
    from workbench.sweeps import SweepConfig

    sweep = sub.add_parser(
        "sweep",
        help="layer x alpha x tau x site x rule grid with controls, on validation data",
        description="Decode every condition of the grid (and the controls: random direction of "
        "the same norm, shuffled-label direction, negated direction) on the run's validation "
        "split; resumable per condition; --shard i/n runs every n-th condition for parallel jobs "
        "whose rows merge. --select then picks the best validation condition and evaluates only "
        "it and its controls on the test split.",
    )
    _add_run_dir_args(sweep)
    sweep.add_argument("--select", action="store_true", help="select on validation, then test")
    add_config_args(sweep, SweepConfig)
    _add_launch_args(sweep)
    sweep.set_defaults(func=cmd_sweep)


def _add_stage_command(sub: Any) -> None:
    from workbench.stages import STAGES

    stage = sub.add_parser(
        "stage",
        help="rerun one stage of a run folder (splits, fit, labels, directions, select, ...)",
        description="Run one stage of the experiment on a run folder with the run's own "
        "settings (config.json); it reads its inputs from the folder and resumes what is "
        "there. Stages: " + ", ".join(STAGES) + ".",
    )
    stage.add_argument("name", choices=list(STAGES), help="the stage")
    _add_run_dir_args(stage)
    stage.set_defaults(func=cmd_stage)


def _add_upgrade_command(sub: Any) -> None:
    upgrade = sub.add_parser(
        "upgrade",
        help="convert a run folder written before als-workbench 0.2",
        description="Rename the summary fields of a run folder written before 0.2 to the "
        "current names (tokens_per_problem, seconds_per_problem, only_base / only_method, "
        "mcnemar_p with base); the graded rows are unchanged; running it twice changes nothing.",
    )
    upgrade.add_argument("run_dir", help="folder written by `als run` or `als generate`")
    upgrade.set_defaults(func=cmd_upgrade)


def _add_export_command(sub: Any) -> None:
    export = sub.add_parser(
        "export",
        help="write a finished run's steering for llama.cpp (GGUF) or lm-eval's steered model",
        description=(
            "Write the run's selected steering (alpha times the unit success-minus-failure "
            "direction, per steered layer) as a static vector. gguf: a llama.cpp control vector "
            "(general.architecture=controlvector, one F32 direction.N per layer, N the block whose "
            "output it is added to: our layer N at resid_post). lm-eval: the steer_path .pt of "
            "lm-eval's built-in 'steered' model (hookpoint layers.N). THE GATE IS LOST: both add "
            "the vector at every position, prompt included, whatever cos(h, v) is; for "
            "conditional ALS in lm-eval use `python -m workbench.lmeval --model als`."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    export.add_argument("run_dir", help="folder written by `als run`")
    export.add_argument("--format", choices=["gguf", "lm-eval"], default="gguf", help="format")
    export.add_argument(
        "--out", default=None, help="file (default: RUN/export/control-vector.gguf or .pt)"
    )
    export.add_argument(
        "--scale", type=finite_float, default=1.0, help="multiplies the run's alpha"
    )
    export.add_argument(
        "--layers", type=_int_list, default=None, help="layers to export (default: the run's)"
    )
    export.add_argument(
        "--model-hint", default=None, help="architecture name (default: the model's model_type)"
    )
    export.set_defaults(func=cmd_export)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="als",
        description="Amortized Latent Steering workbench (TransformerLens 4).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate_command(sub)
    _add_run_command(sub)
    _add_probe_command(sub)
    _add_compare_command(sub)
    _add_sweep_command(sub)
    _add_stage_command(sub)
    _add_upgrade_command(sub)
    _add_export_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    quiet = ("httpx", "urllib3", "filelock", "huggingface_hub", "transformers", "kaleido")
    for name in (*quiet, "choreographer", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return args.func(args)
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
