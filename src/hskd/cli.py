"""`hskd <subcommand>`: every pipeline step, runnable by hand with the same arguments Snakemake uses.

Structured settings (a config section) are passed as one JSON argument so that a rule's `params`
hold exactly what the step depends on (Snakemake re-runs a step when they change)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TextIO, TypeVar

from hskd.common.glue import TASKS, GlueFormatError
from hskd.common.synthetic import SYNTHETIC_DEV_SIZE, SYNTHETIC_TRAIN_SIZE
from hskd.planning import paths
from hskd.planning.config import MAX_LOG_EVERY, PRECISIONS, TRACKING, ConfigError, StudentConfig, TeacherConfig, typed
from hskd.planning.protocol import PRESETS
from hskd.planning.protocol import from_dict as protocol_from_dict
from hskd.training.guards import WeakTeacherError, check_teacher_margin

T = TypeVar("T")


def _json(text: str):
    """A JSON argument, or the path of a file holding JSON."""
    return json.loads(text if text.lstrip().startswith(("{", "[")) else Path(text).read_text())


def _parsed(option: str, text: str, build: Callable[[Any], T]) -> T:
    """`build` applied to a JSON option; any error in either becomes one ConfigError line naming `option`."""
    try:
        return build(_json(text))
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else ""
        raise ConfigError(f"{option}: {type(err).__name__}: {reason}") from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _run_settings(settings: dict, threads: int):
    """RunSettings from the --settings JSON and --threads (a thread count is no setting of a run's result, so
    the workflow keeps it out of the settings param)."""
    from hskd.planning.cells import parse_cell
    from hskd.training.distill import RunSettings

    run_settings = typed(RunSettings, {**settings, "threads": threads})
    parse_cell(run_settings.cell)
    protocol_from_dict(run_settings.protocol)
    if run_settings.kd_mode not in ("cached", "online"):
        raise ValueError(f"kd_mode {run_settings.kd_mode!r} is not cached or online")
    return run_settings


def _store_targets(rows: list) -> list:
    from hskd.hsk.extract import StoreTarget
    from hskd.planning.cells import parse_cell

    return [StoreTarget(row["student"], row["student_layers"], parse_cell(row["cell"]), row["path"], row["joint"])
            for row in rows]  # fmt: skip


def cmd_make_smoke_data(args) -> None:
    from hskd.common.synthetic import write_synthetic_tsv

    for task in args.task:
        write_synthetic_tsv(args.out_dir, task=task, n_train=args.n_train, n_dev=args.n_dev, seed=args.seed)


def cmd_prepare_data(args) -> None:
    from hskd.models.data import SPLITS, prepare_splits
    from hskd.models.hub import load_tokenizer

    out_paths = {split: str(Path(args.out_dir) / f"{split}.safetensors") for split in SPLITS}
    prepare_splits(
        args.task, args.glue_dir or None, load_tokenizer(args.tokenizer), args.max_seq_length,
        args.train_subset or None, args.heldout_size, args.seed, out_paths,
    )  # fmt: skip


def cmd_finetune_teacher(args) -> None:
    from hskd.training.finetune import finetune

    teacher = _parsed("--settings", args.settings, partial(typed, TeacherConfig))
    result = finetune(
        args.task, teacher, str(Path(args.data_dir) / "train.safetensors"),
        str(Path(args.data_dir) / "dev.safetensors"), args.out_dir, args.threads, args.group_by_length,
        args.checkpoint_minutes, args.precision, args.tracking, args.log_every,
    )  # fmt: skip
    print(f"teacher {args.task}: dev {result['metric']} = {result['dev']:.4f} ({result['train_seconds']} s)")


def cmd_init_student(args) -> None:
    from hskd.training.student_init import init_student

    student = _parsed("--settings", args.settings, partial(typed, StudentConfig))
    check_teacher_margin(Path(args.teacher_dir) / "metrics.json", args.teacher_margin)
    init_student(args.task, student, args.teacher_dir, args.train, args.out_dir, args.seed, args.threads)


def cmd_extract(args) -> None:
    from hskd.hsk.extract import extract

    targets = _parsed("--stores", args.stores, _store_targets)
    protocol = _parsed("--protocol", args.protocol, protocol_from_dict)
    check_teacher_margin(Path(args.teacher_dir) / "metrics.json", args.teacher_margin)
    manifest = extract(args.teacher_dir, args.train, targets, args.logits, args.manifest, args.threads, args.precision,
                       protocol)  # fmt: skip
    print(f"extract: {manifest['teacher_forward_passes']} teacher batches, {len(targets)} stores")


def cmd_distill(args) -> None:
    from hskd.training.distill import RunInputs, run

    settings = _parsed("--settings", args.settings, lambda value: _run_settings(value, args.threads))
    if settings.kd_mode == "cached" and not args.store:
        raise ConfigError("--store: a cached run (kd_mode cached in --settings) needs its HSK store")
    inputs = RunInputs(
        student_dir=args.student_dir, teacher_dir=args.teacher_dir, train=args.train, heldout=args.heldout,
        dev=args.dev, logits=args.logits, store=args.store or None,
    )  # fmt: skip
    metrics = run(settings, inputs, args.out, args.checkpoint_minutes, args.tracking, args.log_every)
    print(f"{metrics['cell']} seed {metrics['seed']}: dev {metrics['metric']} final {metrics['dev_final']:.4f}")


def cmd_evaluate(args) -> None:
    from hskd.training.evaluate import evaluate_checkpoint

    print(json.dumps(evaluate_checkpoint(args.model, args.task, args.split, args.threads, args.precision), indent=2))


def _config_overrides(assignments: list[str]) -> dict[str, Any]:
    """`--config key=value ...` as Snakemake reads them: each value parsed as YAML."""
    import yaml

    overrides = {}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        if not equals or not key:
            raise ConfigError(f"--config: {assignment!r} is not key=value")
        overrides[key] = yaml.safe_load(value)
    return overrides


def _layers(args):
    """The config layers of `--configfile`/`--config`, as the workflow merges them (config.yaml first)."""
    from hskd.planning.layers import read_layers

    return read_layers(args.configfile, _config_overrides(args.config))


def _study(args):
    """The study of `--configfile`/`--config` as Snakemake would load it; None when no config file is given."""
    if not args.configfile:
        return None
    from hskd.planning.layers import merge
    from hskd.planning.study import load

    return load(merge(_layers(args))[0])


def _print_and_write(text: str, out: str) -> None:
    """Print `text`, and write it to `out` too when given."""
    if out:
        from hskd.common.io import write_text

        write_text(text, out)
    print(text, end="")


def cmd_protocol(args) -> None:
    from hskd.planning.layers import merge
    from hskd.planning.protocol import format_recipe
    from hskd.planning.study import load

    _print_and_write(format_recipe(load(merge(_layers(args))[0])), args.out)


def cmd_plan(args) -> None:
    from hskd.common.io import write_json_atomic
    from hskd.planning.layers import merge
    from hskd.planning.plan import DEFAULT_MACS_PER_SECOND, format_plan, plan_json, plan_study, throughput_from_bench
    from hskd.planning.study import load

    study = load(merge(_layers(args))[0])
    if args.bench:
        rate, source = throughput_from_bench(args.bench)
    else:
        rate, source = DEFAULT_MACS_PER_SECOND, "assumed, not measured: pass --bench results/bench/speed.json"
    plan = plan_study(study)
    if args.json:
        write_json_atomic(plan_json(plan), args.json)
    _print_and_write(format_plan(study, plan, rate, source, args.devices), args.out)


def cmd_config(args) -> None:
    from hskd.planning.layers import effective_rows, format_rows, merge
    from hskd.planning.study import load

    layers = _layers(args)
    config, origins = merge(layers)
    load(config)  # validates and fills the schema's defaults in place
    _print_and_write(format_rows(effective_rows(config, origins), layers), args.out)


def _expected_runs(study, results: str, runs_from: str) -> list[str] | None:
    """metrics.json paths listed in `runs_from`, or asked for by the study; None when neither is given."""
    if runs_from:
        return [line for line in Path(runs_from).read_text(encoding="utf-8").splitlines() if line]
    if study is None:
        return None
    from hskd.planning.grid import runs

    return [run.metrics_path(results) for run in runs(study)]


def cmd_aggregate(args) -> None:
    from hskd.report.aggregate import aggregate

    study = _study(args)
    results = args.results or (study.results_dir if study else paths.RESULTS)
    missing = aggregate(results, args.out or f"{results}/tables", select_on=args.select_on, value_column=args.value,
                        expected=_expected_runs(study, results, args.runs_from), alpha=args.alpha, margin=args.margin)
    if missing:
        print(f"{len(missing)} expected runs are missing:", *missing, sep="\n  ")


def cmd_plot(args) -> None:
    import pandas as pd

    from hskd.report.plots import plot_all

    references = pd.read_csv(args.references) if args.references else None
    written = plot_all(pd.read_csv(args.summary), args.out, tasks=args.tasks or None, references=references,
                       fraction=args.fraction)  # fmt: skip
    print(f"wrote {len(written)} figure files to {args.out}")


def cmd_curves(args) -> None:
    import pandas as pd

    from hskd.report.curves import plot_task_curves

    runs, summary = pd.read_csv(args.runs), pd.read_csv(args.summary)
    written = [path for task in args.tasks or sorted(set(runs["task"]))
               for path in plot_task_curves(runs, summary, args.out, task)]  # fmt: skip
    print(f"wrote {len(written)} curve figure files to {args.out}")


def cmd_search_round(args) -> None:
    from hskd.common.io import write_json_atomic
    from hskd.report.runs import collect_runs
    from hskd.report.search import decide_round

    spec = _parsed("--spec", args.spec, dict)
    decision = decide_round(spec, collect_runs(args.results, args.runs), args.results, args.runs)
    write_json_atomic(decision, args.out)
    print(f"search: {decision['runs_read']} runs read; " + (
        "every sequence decided" if decision["done"] else f"{len(decision['runs']) - decision['runs_read']} runs next"))


def cmd_search_tables(args) -> None:
    from hskd.common.io import write_text
    from hskd.report.plots import save_figure
    from hskd.report.search import plot_search, search_markdown, search_table

    decisions = [json.loads(Path(path).read_text()) for path in args.rounds]
    write_text(search_markdown(decisions[-1], args.n_max), Path(args.out) / "search.md")
    write_text(search_table(decisions[-1]).to_csv(index=False), Path(args.out) / "search.csv")
    written = save_figure(plot_search(decisions, args.margin), args.figures, "search")
    print(f"wrote {args.out}/search.md, search.csv and {', '.join(map(str, written))}")


def cmd_download(args) -> None:
    from hskd.planning.download import DownloadError, download

    try:
        manifest = download(args.models, args.glue_tasks, args.out)
    except (DownloadError, ValueError) as err:  # ValueError: an unknown task, before anything is fetched
        sys.exit(f"hskd download: error: {err}")
    print(f"download: {len(manifest['models'])} models, {len(manifest['glue_tasks'])} GLUE tasks in "
          f"{manifest['hf_home']} ({manifest['seconds']:.0f} s)")  # fmt: skip


def cmd_bench(args) -> None:
    from hskd.bench import main as bench_main

    bench_main(args)


def _add_checkpoint_minutes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint-minutes", type=float, default=10.0,
                        help="save the training state this often beside the output, so that a rerun after an "
                             "interruption continues from it (0 = never)")  # fmt: skip


def _teacher_margin(text: str) -> float | None:
    return None if text.lower() in ("none", "null") else float(text)


def _add_teacher_margin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher-margin", type=_teacher_margin, default=None,
                        help="refuse a teacher whose dev metric is not this far above the trivial baseline "
                             "(none = no check)")  # fmt: skip


def _add_precision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto = bf16 autocast on CUDA, fp32 on CPU; bf16 = bf16 autocast everywhere")  # fmt: skip


def _add_tracking(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking", choices=TRACKING, default="tensorboard",
                   help="where the training curves go when the job finishes: a TensorBoard event file beside the "
                        "output, an MLflow run (MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME), or nowhere")
    p.add_argument("--log-every", type=_log_every, default=10, help="steps between two loss points (1-50)")


def _log_every(value: str) -> int:
    steps = int(value)
    if not 1 <= steps <= MAX_LOG_EVERY:
        raise argparse.ArgumentTypeError(f"must lie in 1..{MAX_LOG_EVERY}, got {steps}")
    return steps


def _add_study_options(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--configfile", nargs="+", action="extend", default=[],
                   help=f"config file(s) of the study, merged in order over config.yaml: {what}")  # fmt: skip
    p.add_argument("--config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="top-level values over the config files, as snakemake --config")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hskd", description=__doc__.splitlines()[0], fromfile_prefix_chars="@")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("make-smoke-data", help="write tiny learnable synthetic GLUE TSVs in each task's layout")
    p.add_argument("--task", nargs="+", default=["SST-2"], choices=sorted(TASKS), help="GLUE tasks (default SST-2)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--n-train", type=int, default=SYNTHETIC_TRAIN_SIZE)
    p.add_argument("--n-dev", type=int, default=SYNTHETIC_DEV_SIZE)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_make_smoke_data)

    p = sub.add_parser("prepare-data", help="read, split (train/heldout/dev) and tokenize a GLUE task")
    p.add_argument("--task", required=True)
    p.add_argument("--glue-dir", default="")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--max-seq-length", type=_positive_int, required=True)
    p.add_argument("--train-subset", type=int, default=0, help="0 = all")
    p.add_argument("--heldout-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_prepare_data)

    p = sub.add_parser("finetune-teacher", help="fine-tune the teacher on a task")
    p.add_argument("--task", required=True)
    p.add_argument("--settings", required=True, help="the config's teacher section as JSON (or a JSON file)")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=True)
    _add_checkpoint_minutes(p)
    _add_precision(p)
    _add_tracking(p)
    p.set_defaults(func=cmd_finetune_teacher)

    p = sub.add_parser("init-student", help="build a student (pretrained truncation or pruned teacher)")
    p.add_argument("--task", required=True)
    p.add_argument("--settings", required=True, help="the student's config entry as JSON, with its name")
    p.add_argument("--teacher-dir", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    _add_teacher_margin(p)
    p.set_defaults(func=cmd_init_student)

    p = sub.add_parser("extract", help="one teacher pass: every cached cell's HSK store + teacher logits")
    p.add_argument("--teacher-dir", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--stores", required=True, help="JSON list of {student, student_layers, cell, path}")
    p.add_argument("--logits", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--protocol", default=json.dumps(PRESETS["hskd"].as_dict()),
                   help="protocol choices as JSON (hskd.planning.protocol.Protocol fields; default: the hskd protocol)")
    _add_precision(p)
    _add_teacher_margin(p)
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("distill", help="one student run: stage 1 (HSK) + stage 2 (predictions)")
    p.add_argument("--settings", required=True, help="RunSettings as JSON (or a JSON file)")
    for name in ("student-dir", "teacher-dir", "train", "heldout", "dev", "logits", "out"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--store", default="", help="HSK store (cached mode)")
    p.add_argument("--threads", type=_positive_int, default=1, help="CPU threads")
    _add_checkpoint_minutes(p)
    _add_tracking(p)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("evaluate", help="GLUE metrics of a saved teacher or student on a tokenized split")
    p.add_argument("--model", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--split", required=True, help="tokenized split file (results/{task}/data/dev.safetensors)")
    p.add_argument("--threads", type=int, default=1)
    _add_precision(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("aggregate", help="runs.csv, per-dimension tables and minimum-HSK table")
    p.add_argument("--results", default="",
                   help="the study's folder (default: the --configfile's results_dir, else results)")
    p.add_argument("--out", default="", help="default: {results}/tables")
    p.add_argument("--select-on", choices=["train_heldout", "dev"], default="train_heldout")
    p.add_argument("--value", choices=["dev_final", "dev_best"], default="dev_final")
    p.add_argument("--margin", type=float, default=0.01, help="non-inferiority margin, metric units")
    p.add_argument("--alpha", type=float, default=0.05, help="family-wise error of the non-inferiority decisions")
    _add_study_options(p, "tables hold only the runs the study asks for; missing and other runs are listed")
    p.add_argument("--runs-from", default="",
                   help="file listing the metrics.json paths to read, one per line (what the aggregate rule passes); "
                        "other runs under --results are ignored")
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser("config", help="the effective config of a study, each value with the layer it came from")
    _add_study_options(p, "as for snakemake (config.yaml is merged first unless a file is standalone)")
    p.add_argument("--out", default="", help="also write the text to this file")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("protocol", help="per task, every protocol choice and recipe value against the paper's code")
    _add_study_options(p, "as for snakemake (config.yaml is merged first unless a file is standalone)")
    p.add_argument("--out", default="", help="also write the text to this file")
    p.set_defaults(func=cmd_protocol)

    p = sub.add_parser("plan", help="a study's jobs, store bytes, teacher passes and device-hours, from its config")
    _add_study_options(p, "as for snakemake (config.yaml is merged first unless a file is standalone)")
    p.add_argument("--bench", default="", help="speed.json of `hskd bench`: its measured throughput (else assumed)")
    p.add_argument("--devices", type=int, default=1, help="devices running jobs in parallel, for the wall time")
    p.add_argument("--out", default="", help="also write the text to this file")
    p.add_argument("--json", default="", help="write per task the stores and totals as JSON to this file")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("plot", help="figures from results/tables/summary.csv")
    p.add_argument("--summary", default="results/tables/summary.csv")
    p.add_argument("--references", default="", help="references.csv of `hskd aggregate`: teacher and trivial lines")
    p.add_argument("--out", default="results/figures")
    p.add_argument("--tasks", nargs="*", default=[], help="draw figures for these tasks even without runs")
    p.add_argument("--fraction", choices=["real", "nominal"], default="real",
                   help="x-axis of the fraction figures: share of the real tokens' HSK, or padding counted")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("curves", help="training-curve figures from the runs' TensorBoard event files")
    p.add_argument("--runs", default="results/tables/runs.csv")
    p.add_argument("--summary", default="results/tables/summary.csv")
    p.add_argument("--out", default="results/figures")
    p.add_argument("--tasks", nargs="*", default=[], help="draw figures for these tasks even without runs")
    p.set_defaults(func=cmd_curves)

    p = sub.add_parser("search-round", help="one round of the adaptive minimum-HSK search (grid.search: adaptive)")
    p.add_argument("--spec", required=True, help="JSON: the search's test, seeds and sequences")
    p.add_argument("--results", required=True, help="the study's results folder")
    p.add_argument("--runs", nargs="*", default=[], help="the finished runs' metrics.json files this round reads")
    p.add_argument("--out", required=True, help="the decision (JSON): done, and every run the next round needs")
    p.set_defaults(func=cmd_search_round)

    p = sub.add_parser("search-tables", help="the adaptive search's decisions as search.md, search.csv and a figure")
    p.add_argument("--rounds", nargs="+", required=True, help="every round's decision, in order (the last decides)")
    p.add_argument("--n-max", type=int, required=True, help="grid.adaptive.n_max: the grid's seeds per cell")
    p.add_argument("--margin", type=float, required=True, help="report.margin")
    p.add_argument("--out", required=True, help="the tables folder")
    p.add_argument("--figures", required=True, help="the figures folder (search.pdf, search.png)")
    p.set_defaults(func=cmd_search_tables)

    p = sub.add_parser("download", help="fetch hub models and GLUE tasks into the hub cache (HF_HOME) for offline jobs")
    p.add_argument("--models", nargs="*", default=[], help="hub model ids (config, tokenizer and weights)")
    p.add_argument("--glue-tasks", nargs="*", default=[], help="GLUE tasks read from the hub (all splits)")
    p.add_argument("--out", required=True, help="the manifest (JSON) written once everything is in the cache")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("bench", help="speed: teacher online vs cached HSK vs student alone")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="results")
    p.add_argument("--threads", type=int, default=2)
    _add_precision(p)
    p.set_defaults(func=cmd_bench)
    for command in sub.choices.values():
        command.add_argument("--log", help="write all output to this file; an error's one line also goes to the "
                                           "terminal")  # fmt: skip
    return parser


def _input_errors() -> tuple[type[Exception], ...]:
    """The exceptions that mean bad input. hskd.hsk.store imports torch, so its StoreMismatchError is looked up
    only once hskd.hsk.store is loaded (it must be for one to be raised): `hskd --help` stays torch-free."""
    errors = (ConfigError, GlueFormatError, WeakTeacherError, FileNotFoundError, FloatingPointError)
    store = sys.modules.get("hskd.hsk.store")
    return errors if store is None else (*errors, store.StoreMismatchError)


def _output_to(log: str) -> TextIO:
    """Send this process's stdout and stderr to `log` at the file-descriptor level (tqdm, warnings and native
    libraries included); return a stream to the terminal's stderr, for the one line a failure prints there."""
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    terminal = os.fdopen(os.dup(sys.stderr.fileno()), "w")
    sys.stdout.flush()
    sys.stderr.flush()
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for stream in (sys.stdout, sys.stderr):
        os.dup2(descriptor, stream.fileno())
    os.close(descriptor)
    return terminal


def main(argv: list[str] | None = None) -> None:
    """Run one command. With `--log`, its whole output goes to the log file and only a failure's one line (bad
    input: the line naming the file or key; a bug: its exception and where the traceback is) to the terminal."""
    args = build_parser().parse_args(argv)
    terminal = _output_to(args.log) if args.log else None
    print("hskd", *(argv if argv is not None else sys.argv[1:]), file=sys.stderr, flush=True)
    try:
        args.func(args)
    except _input_errors() as err:  # evaluated only when an error propagates, after the command's imports
        # bad input: one line naming the file or key; anything else is a bug and keeps its traceback
        message = f"hskd {args.command}: error: {err}"
        if terminal is not None:
            print(message, file=terminal, flush=True)
        sys.exit(message)
    except Exception as err:
        if terminal is not None:
            reason = str(err).splitlines()[0] if str(err) else ""
            print(f"hskd {args.command}: {type(err).__name__}: {reason} (traceback in {args.log})", file=terminal,
                  flush=True)  # fmt: skip
        raise


if __name__ == "__main__":
    main()
