"""Planning refuses run targets the config does not ask for (unless told to allow them), and puts every output
and log of a study under its results_dir."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import SMOKE_RESULTS, copy_workflow

ON_GRID = f"{SMOKE_RESULTS}/SST-2/runs/pruned/depth=top2-1/length=all/width=all/lr=0.001/seed=0/metrics.json"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("planning"))


def plan(workdir: Path, target: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["snakemake", "-n", target, *extra, "--configfile", "workflow/configs/smoke.yaml"],
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
    assert '"epochs": 7' in result.stdout.split("hskd finetune-teacher")[1].split("hskd ")[0]
    distill = result.stdout.split("hskd distill")[1]
    assert '"epochs": 2, "eval_every": 10, "lr": 0.002, "schedule": "linear"' in distill


def planned_jobs(dry_run: str) -> list[dict]:
    """The jobs a dry run lists: {"rule": name, "output": [paths], "log": [paths]} each."""
    jobs = []
    for line in dry_run.splitlines():
        if match := re.match(r"(?:local)?rule (\w+):$", line):
            jobs.append({"rule": match[1], "output": [], "log": []})
        elif match := re.match(r"\s+(output|log): (.*)$", line):
            jobs[-1][match[1]] = match[2].split(", ")
    return jobs


def test_every_output_and_log_goes_under_results_dir(workdir):
    # glue_dir too: it is no output folder, but the smoke config generates its data into it
    elsewhere = ["--config", "results_dir=elsewhere", "glue_dir=elsewhere/glue"]
    result = plan(workdir, "all", "bench", *elsewhere)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = planned_jobs(result.stdout)
    assert {job["rule"] for job in jobs} == {"smoke_data", "prepare_data", "finetune_teacher", "init_student",
                                             "extract_SST_2", "distill", "run_list", "aggregate", "plot", "bench",
                                             "all"}  # fmt: skip
    for job in jobs:
        assert job["log"] or job["rule"] == "all", job
        for path in job["output"] + job["log"]:
            assert path.startswith("elsewhere/"), (job["rule"], path)
    # the smoke study's own folder is no target of the moved study
    moved = plan(workdir, ON_GRID, *elsewhere)
    assert moved.returncode != 0 and f"No rule to produce {ON_GRID}" in moved.stdout + moved.stderr
