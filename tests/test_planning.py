"""Planning refuses run targets the config does not ask for (unless told to allow them), and puts every output
and log of a study under its results_dir."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import SMOKE_RESULTS, copy_workflow, job_arguments, option

ON_GRID = f"{SMOKE_RESULTS}/SST-2/runs/pruned/depth=top2-1/length=all/width=all/lr=0.001/seed=0/metrics.json"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("planning"))


def plan(workdir: Path, target: str, *extra: str, overlay: str | None = None) -> subprocess.CompletedProcess:
    configfiles = ["workflow/configs/smoke.yaml", *([overlay] if overlay else [])]
    return subprocess.run(["snakemake", "-n", target, *extra, "--configfile", *configfiles],
                          cwd=workdir, capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.parametrize(
    "target",
    [ON_GRID.replace("lr=0.001", "lr=5.0"), ON_GRID.replace("seed=0", "seed=7"),
     ON_GRID.replace("depth=top2-1", "depth=top2-2"), ON_GRID.replace("/pruned/", "/nosuch/")],
    ids=["lr", "seed", "cell", "student"],
)  # fmt: skip
def test_an_off_grid_target_is_refused_at_planning(workdir, target):
    result = plan(workdir, target)
    assert result.returncode != 0
    assert f"{target} is not a run of this config" in result.stdout + result.stderr


def test_on_grid_and_allowed_off_grid_targets_plan(workdir):
    assert plan(workdir, ON_GRID).returncode == 0
    allowed = plan(workdir, ON_GRID.replace("seed=0", "seed=7"), "--config", "allow_off_grid=True")
    assert allowed.returncode == 0, allowed.stderr[-2000:]


def test_by_task_values_reach_the_task_jobs(workdir):
    overlay = workdir / "by_task.yaml"
    overlay.write_text("by_task:\n  SST-2:\n    data: {max_seq_length: 12}\n    teacher: {epochs: 7}\n"
                       "    stage2: {lr: 0.002}\n")  # fmt: skip
    target = ON_GRID.replace("lr=0.001", "lr=0.002")
    result = subprocess.run(["snakemake", "-n", "-p", target, "--configfile", "workflow/configs/smoke.yaml",
                             str(overlay)], cwd=workdir, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--max-seq-length 12 " in result.stdout
    jobs = {job["rule"]: job for job in planned_jobs(result.stdout)}
    teacher = json.loads(option(job_arguments(jobs["finetune_teacher"]["shell"], workdir), "--settings"))
    assert teacher["epochs"] == 7
    run = json.loads(option(job_arguments(jobs["distill"]["shell"], workdir), "--settings"))
    assert run["stage2"] | {"epochs": 2, "eval_every": 10, "lr": 0.002, "schedule": "linear"} == run["stage2"]


def planned_jobs(dry_run: str) -> list[dict]:
    """The jobs a dry run lists: {"rule": name, "input"/"output"/"log"/"resources": [items], "shell": command}
    each (the shell command only with `-p`)."""
    jobs = []
    for line in dry_run.splitlines():
        if match := re.match(r"(?:local)?rule (\w+):$", line):
            jobs.append({"rule": match[1], "input": [], "output": [], "log": [], "resources": [], "shell": ""})
        elif match := re.match(r"\s+(input|output|log|resources): (.*)$", line):
            jobs[-1][match[1]] = match[2].split(", ")
        elif match := re.match(r"Shell command: (.*)$", line):
            jobs[-1]["shell"] = match[1]
    return jobs


def test_every_output_and_log_goes_under_results_dir(workdir):
    # glue_dir too: it is no output folder, but the smoke config generates its data into it
    elsewhere = ["--config", "results_dir=elsewhere", "glue_dir=elsewhere/glue"]
    result = plan(workdir, "all", "bench", *elsewhere)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = planned_jobs(result.stdout)
    assert {job["rule"] for job in jobs} == {"smoke_data", "prepare_data", "finetune_teacher", "init_student",
                                             "extract", "distill", "run_list", "study_config", "plan", "aggregate",
                                             "plot", "curves", "bench", "all"}  # fmt: skip
    for job in jobs:
        assert job["log"] or job["rule"] == "all", job
        for path in job["output"] + job["log"]:
            assert path.startswith("elsewhere/"), (job["rule"], path)
    # the smoke study's own folder is no target of the moved study
    moved = plan(workdir, ON_GRID, *elsewhere)
    assert moved.returncode != 0 and f"No rule to produce {ON_GRID}" in moved.stdout + moved.stderr


def test_hskd_plan_counts_the_jobs_snakemake_plans(workdir):
    from collections import Counter

    from hskd.planning.layers import merge, read_layers
    from hskd.planning.plan import plan_study
    from hskd.planning.study import load

    overlay = workdir / "plan_two_tasks.yaml"
    overlay.write_text("tasks: [SST-2, MNLI]\n")
    result = plan(workdir, "all", overlay=str(overlay))
    assert result.returncode == 0, result.stderr[-2000:]
    planned = Counter(job["rule"] for job in planned_jobs(result.stdout))
    layers = read_layers([workdir / "workflow/configs/smoke.yaml", overlay], default=str(workdir / "config.yaml"))
    counted = Counter(job.rule for job in plan_study(load(merge(layers)[0])).jobs)
    assert counted == {rule: planned[rule] for rule in counted} and counted["distill"] == 52


def test_one_extract_rule_serves_every_task(workdir):
    # one rule named `extract` (so `--set-resources extract:...` reaches it), one job per task, each
    # writing its task's manifest, logits and store folder
    overlay = workdir / "two_tasks.yaml"
    overlay.write_text("tasks: [SST-2, CoLA]\nglue_dir: null\nsynthetic_data: false\n")
    result = subprocess.run(["snakemake", "-n", "all", "--set-resources", "extract:mem_mb=1234", "--configfile",
                             "workflow/configs/smoke.yaml", str(overlay)], cwd=workdir, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = planned_jobs(result.stdout)
    assert not [job for job in jobs if job["rule"].startswith("extract_")]
    extracts = [job for job in jobs if job["rule"] == "extract"]
    expected = [[f"{SMOKE_RESULTS}/{task}/hsk/manifest.json", f"{SMOKE_RESULTS}/{task}/hsk/stores",
                 f"{SMOKE_RESULTS}/{task}/teacher/logits_train.safetensors"] for task in ("CoLA", "SST-2")]  # fmt: skip
    assert sorted(sorted(job["output"]) for job in extracts) == expected
    assert all("mem_mb=1234" in job["resources"] for job in extracts)


def distill_job(workdir: Path, target: str, *extra: str, overlay: str | None = None) -> tuple[dict, list[dict]]:
    """The distill job of `target` in a dry run (with its shell command), and every job of that plan."""
    result = plan(workdir, target, "-p", *extra, overlay=overlay)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = planned_jobs(result.stdout)
    [job] = [job for job in jobs if job["rule"] == "distill"]
    return job, jobs


def test_threads_reach_a_run_on_its_command_line_not_in_its_params(workdir):
    # a run's params (settings JSON, teacher folder, store) must not change with `threads`: Snakemake
    # reruns a finished job whose params change
    one, _ = distill_job(workdir, ON_GRID, "--cores", "4", "--config", "threads=1")
    two, _ = distill_job(workdir, ON_GRID, "--cores", "4", "--config", "threads=2")
    assert "--threads 1 " in one["shell"] and "--threads 2 " in two["shell"]
    assert one["shell"].replace("--threads 1 ", "") == two["shell"].replace("--threads 2 ", "")
    settings = json.loads(option(job_arguments(one["shell"], workdir), "--settings"))
    assert "threads" not in settings and settings["cell"] == "depth=top2-1/length=all/width=all"


def test_a_prediction_only_run_gets_the_prediction_only_stage(workdir):
    none = ON_GRID.replace("depth=top2-1", "depth=none")
    (workdir / "prediction_only.yaml").write_text(
        "baselines: {prediction_only: {epochs: stage1, batch_size: 5, warmup_ratio: 0.3}}\n")
    job, _ = distill_job(workdir, none, overlay="prediction_only.yaml")
    settings = json.loads(option(job_arguments(job["shell"], workdir), "--settings"))
    assert (settings["stage2"]["epochs"], settings["stage2"]["batch_size"], settings["stage2"]["warmup_ratio"]) == (
        settings["stage1"]["epochs"], 5, 0.3)
    hsk_run, _ = distill_job(workdir, ON_GRID, overlay="prediction_only.yaml")
    stage2 = json.loads(option(job_arguments(hsk_run["shell"], workdir), "--settings"))["stage2"]
    assert (stage2["batch_size"], stage2["warmup_ratio"]) != (5, 0.3)


def test_a_cached_run_depends_on_its_tasks_extraction_and_reads_its_store(workdir):
    job, jobs = distill_job(workdir, ON_GRID)
    [extract] = [other for other in jobs if other["rule"] == "extract"]
    manifest = f"{SMOKE_RESULTS}/SST-2/hsk/manifest.json"
    assert manifest in extract["output"] and manifest in job["input"]  # extraction rewrites it: the run reruns
    store = option(job_arguments(job["shell"], workdir), "--store")
    stores = f"{SMOKE_RESULTS}/SST-2/hsk/stores"
    assert stores in extract["output"] and stores in job["input"]
    assert store == f"{stores}/pruned/depth=top2-1/length=all/width=all/train.safetensors"
    # the extraction job's stores param lists it, so it writes it
    written = json.loads(option(job_arguments(extract["shell"], workdir), "--stores"))
    assert store in {row["path"] for row in written}
    # a prediction-only run reads no store
    baseline, _ = distill_job(workdir, ON_GRID.replace("depth=top2-1", "depth=none"))
    assert "--store" not in job_arguments(baseline["shell"], workdir)
    assert not {manifest, stores} & set(baseline["input"])


def test_the_resources_section_sizes_each_cluster_rule(workdir):
    overlay = workdir / "resources.yaml"
    overlay.write_text("resources:\n  distill: {mem_mb: 1234, runtime: 7}\n  init_student: {mem_mb: 99, runtime: 3}\n")
    result = subprocess.run(["snakemake", "-n", "all", "--configfile", "workflow/configs/smoke.yaml", str(overlay)],
                            cwd=workdir, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    sized = {(job["rule"], item) for job in planned_jobs(result.stdout) for item in job["resources"]
             if item.startswith(("mem_mb=", "runtime="))}  # fmt: skip
    assert sized == {("distill", "mem_mb=1234"), ("distill", "runtime=7"), ("init_student", "mem_mb=99"),
                     ("init_student", "runtime=3"), ("extract", "mem_mb=8000"), ("extract", "runtime=240"),
                     ("finetune_teacher", "mem_mb=8000"), ("finetune_teacher", "runtime=240")}  # fmt: skip


def test_paper_joint_runs_and_stores_rank_tokens_by_the_joint_choice(workdir):
    joint = ON_GRID.replace("depth=top2-1/length=all/width=all",
                            "depth=top2-1/length=attention_nosep-2/width=magnitude-0.5")  # fmt: skip
    sweep = ON_GRID.replace("depth=top2-1/length=all", "depth=all-top2/length=attention-2")
    rankings = {}
    for name, target in (("joint", joint), ("sweep", sweep)):
        job, jobs = distill_job(workdir, target, "--config", "protocol=paper")
        settings = json.loads(option(job_arguments(job["shell"], workdir), "--settings"))
        rankings[name] = settings["protocol"]["token_ranking"]
        [extract] = [other for other in jobs if other["rule"] == "extract"]
        stores = json.loads(option(job_arguments(extract["shell"], workdir), "--stores"))
    assert rankings == {"joint": "uniform_layer", "sweep": "mapped_layer"}
    joint_cells = {row["cell"] for row in stores if row["joint"]}
    assert joint_cells == {"depth=top2-1/length=attention_nosep-2/width=magnitude-0.5"}


def test_every_planned_command_of_the_paper_study_is_short_and_its_args_file_holds_the_rest(workdir):
    # Snakemake echoes a job's command line, and repeats it on an error: long JSON and paths go in an args file
    result = subprocess.run(["snakemake", "-n", "-p", "--configfile", "workflow/configs/paper.yaml"], cwd=workdir,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = planned_jobs(result.stdout)
    commands = [job["shell"] for job in jobs if job["shell"].startswith("hskd ")]
    assert len(commands) == sum(job["rule"] not in {"all", "run_list", "study_config", "plan"} for job in jobs)
    assert max(len(command) for command in commands) <= 500
    [distill] = [job for job in jobs if job["rule"] == "distill"][:1]
    arguments = job_arguments(distill["shell"], workdir)
    assert json.loads(option(arguments, "--settings"))["task"] in {"CoLA", "SST-2", "QNLI", "MNLI"}
    assert option(arguments, "--out") == distill["output"][0]
