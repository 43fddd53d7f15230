"""End to end: the real Snakemake DAG on the smoke config (tiny random BERTs, generated data) in a temp dir."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import SMOKE_RESULTS, copy_workflow
from test_curves import scalars
from test_tracking import history, logged_runs

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--configfile", "workflow/configs/smoke.yaml"]
ONE_RUN = f"{SMOKE_RESULTS}/SST-2/runs/pruned/depth=top2-1/length=all/width=all/lr=0.001/seed=0"
# a run of an earlier config (a seed this one does not ask for) left in the results folder
STALE_RUN = f"{SMOKE_RESULTS}/SST-2/runs/pruned/depth=none/length=all/width=all/lr=0.001/seed=9/metrics.json"


def snakemake(workdir: Path, *args: str) -> str:
    # targets and flags before --configfile, which takes every following word as a config file
    result = subprocess.run(["snakemake", "--cores", "2", *args, *SMOKE], cwd=workdir, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = copy_workflow(tmp_path_factory.mktemp("e2e"))
    stale = {"task": "SST-2", "student": "pruned", "depth": "none", "length": "all", "width": "all", "lr": 0.001,
             "seed": 9, "dev_final": 0.999}  # fmt: skip
    (work / STALE_RUN).parent.mkdir(parents=True)
    (work / STALE_RUN).write_text(json.dumps(stale))
    snakemake(work)
    return work


@pytest.mark.e2e
def test_smoke_study_produces_every_output(workdir):
    results = workdir / SMOKE_RESULTS
    runs = sorted(path for path in results.glob("SST-2/runs/**/metrics.json") if "seed=9" not in str(path))
    assert len(runs) == 26
    table = pd.read_csv(results / "tables/runs.csv")
    assert len(table) == 26 and 9 not in table["seed"].tolist()  # the stale run never reaches a table
    teacher = json.loads((results / "SST-2/teacher/metrics.json").read_text())
    collapsed = 0
    for path in runs:
        metrics = json.loads(path.read_text())
        assert len(list((path.parent / "tensorboard").glob("events.out.tfevents.*"))) == 1, path  # its curves
        assert metrics["teacher_loaded"] is False
        assert metrics["dev_trivial"] == teacher["dev_trivial"]
        collapsed += metrics["collapsed"]
        if "/pruned/" in str(path):  # built from the fine-tuned teacher: every run learns the generated task
            assert not metrics["collapsed"] and metrics["dev_final"] > teacher["dev_trivial"] + 0.3, path
    # the tiny random-weight pretrained student sits at the majority class in some runs: the tables say so
    assert table["collapsed"].sum() == collapsed
    if collapsed:
        assert "run(s) collapsed**" in (results / "tables/depth.md").read_text()
    manifest = json.loads((results / "SST-2/hsk/manifest.json").read_text())
    assert manifest["teacher_passes_per_split"] == 1.0
    # both students have two layers: each pruned store is the pretrained student's file, linked
    shared = [row for row in manifest["stores"] if row["same_file_as"]]
    assert {row["student"] for row in shared} == {"pruned"} and len(shared) == len(manifest["stores"]) / 2
    for row in shared:
        assert (workdir / row["path"]).stat().st_ino == (workdir / row["same_file_as"]).stat().st_ino
    assert manifest["bytes_on_disk"] == manifest["bytes_total"] / 2
    # `hskd plan` (the plan rule) foresaw every store's bytes and which are links, from the config alone
    planned = json.loads((results / "tables/plan.json").read_text())["SST-2"]
    assert sorted((row["student"], row["cell"], row["bytes"], row["same_file_as"] is not None)
                  for row in manifest["stores"]) == sorted(
        (row["student"], row["cell"], row["bytes"], row["shared"]) for row in planned["stores"])  # fmt: skip
    assert (planned["bytes_total"], planned["bytes_on_disk"]) == (manifest["bytes_total"], manifest["bytes_on_disk"])
    for name in ("runs.csv", "summary.csv", "minimum_hsk.md", "depth.tex", "joint.md"):
        assert (results / "tables" / name).stat().st_size > 0
    for stem in ("marginal_utility", "depth", "length", "width", "joint", "curves", "curves_flagged"):
        assert (results / "figures" / f"{stem}_SST-2.png").stat().st_size > 0
    assert teacher["dev"] > 0.9  # the generated task is learnable; a broken trainer stays near 0.5
    assert 0.3 < teacher["dev_trivial"] < 0.7  # the generated labels are balanced
    references = (results / "tables/references.csv").read_text().splitlines()
    assert references[1].startswith(f"SST-2,accuracy,{teacher['dev']},{teacher['dev_trivial']},")
    # the study is one folder: its logs are in it, and nothing is beside it in the default study's places
    assert (results / "logs/aggregate.log").read_text().startswith("hskd aggregate")
    assert not (workdir / "logs").exists() and not (workdir / "results/SST-2").exists()


@pytest.mark.e2e
def test_second_call_does_nothing_and_a_deleted_run_is_retrained_alone_and_identically(workdir):
    assert "Nothing to be done" in snakemake(workdir, "-n")
    # how often jobs save their state does not change results, so it reruns nothing
    assert "Nothing to be done" in snakemake(workdir, "-n", "--config", "checkpoint_minutes=3")
    before = json.loads((workdir / ONE_RUN / "metrics.json").read_text())
    shutil.rmtree(workdir / ONE_RUN)
    plan = snakemake(workdir, "-n", f"{ONE_RUN}/metrics.json")
    assert "distill" in plan and plan.count("rule distill:") == 1 and "extract" not in plan
    snakemake(workdir, f"{ONE_RUN}/metrics.json")
    after = json.loads((workdir / ONE_RUN / "metrics.json").read_text())
    for key in ("stage1_loss", "stage2_loss", "dev_best", "dev_final", "heldout_final", "dev_after_stage1"):
        assert before[key] == after[key], key


@pytest.mark.e2e
def test_jobs_rerun_under_tracking_mlflow_log_their_tensorboard_curves_to_a_real_server(workdir, mlflow_server):
    runs = [f"{SMOKE_RESULTS}/SST-2/runs/pruned/{cell}/lr=0.001/seed=1" for cell in (
        "depth=none/length=all/width=all", "depth=all-top2/length=all/width=all",
        "depth=top2-1/length=attention_nosep-2/width=magnitude-0.5")]  # fmt: skip
    written = {run: scalars(workdir / run / "tensorboard") for run in runs}
    for run in runs:
        shutil.rmtree(workdir / run)
    snakemake(workdir, *[f"{run}/metrics.json" for run in runs], "--config", "tracking=mlflow",
              f"tracking_uri={mlflow_server}")  # fmt: skip
    logged = logged_runs(mlflow_server, SMOKE_RESULTS)  # the study's experiment, its runs named by their folders
    assert sorted(logged) == sorted(runs)
    for run in runs:
        metrics = json.loads((workdir / run / "metrics.json").read_text())
        assert not (workdir / run / "tensorboard").exists()
        entry = logged[run]
        assert entry.info.status == "FINISHED"
        assert {key: entry.data.params[key] for key in ("cell", "lr", "seed", "student")} == {
            "cell": metrics["cell"], "lr": "0.001", "seed": "1", "student": "pruned"}  # fmt: skip
        assert sorted(entry.data.metrics) == sorted(written[run])
        for tag, points in written[run].items():  # the rerun is the same run, so are its curves
            assert history(mlflow_server, entry.info.run_id, tag) == [
                (step, pytest.approx(value)) for step, value in points], (run, tag)  # fmt: skip


@pytest.mark.e2e
def test_html_report_as_the_readme_writes_it(workdir):
    # the README's command exactly (no --cores), plus the smoke config
    command = "snakemake --report results/report.html"
    assert command in (ROOT / "README.md").read_text()
    result = subprocess.run([*command.split(), *SMOKE], cwd=workdir, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    html = (workdir / "results/report.html").read_text(encoding="utf-8")
    for table in ("runs.csv", "references.csv", "minimum_hsk.md", "lr_sweep.md", "depth.md", "length.md",
                  "width.md", "joint.md", "width_SST-2.png", "curves_SST-2.png", "curves_flagged_SST-2.png"):
        assert table in html, table
