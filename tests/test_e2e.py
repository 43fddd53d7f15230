"""End to end: the real Snakemake DAG on the smoke config (tiny random BERTs, generated data) in a temp dir."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--configfile", "workflow/configs/smoke.yaml"]
ONE_RUN = "results/SST-2/runs/pruned/depth=top2-1/length=all/width=all/lr=0.001/seed=0"


def snakemake(workdir: Path, *args: str) -> str:
    # targets and flags before --configfile, which takes every following word as a config file
    result = subprocess.run(["snakemake", "--cores", "2", *args, *SMOKE], cwd=workdir, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("e2e")
    shutil.copy(ROOT / "Snakefile", work)
    shutil.copy(ROOT / "config.yaml", work)
    for folder in ("workflow", "envs"):
        shutil.copytree(ROOT / folder, work / folder)
    snakemake(work)
    return work


@pytest.mark.e2e
def test_smoke_study_produces_every_output(workdir):
    results = workdir / "results"
    runs = sorted(results.glob("SST-2/runs/**/metrics.json"))
    assert len(runs) == 26
    for path in runs:
        metrics = json.loads(path.read_text())
        assert metrics["teacher_loaded"] is False
        assert 0.0 <= metrics["dev_final"] <= 1.0
    manifest = json.loads((results / "SST-2/hsk/manifest.json").read_text())
    assert manifest["teacher_passes_per_split"] == 1.0
    for name in ("runs.csv", "summary.csv", "minimum_hsk.md", "depth.tex", "joint.md"):
        assert (results / "tables" / name).stat().st_size > 0
    for stem in ("marginal_utility", "depth", "length", "width", "joint"):
        assert (results / "figures" / f"{stem}_SST-2.png").stat().st_size > 0
    teacher = json.loads((results / "SST-2/teacher/metrics.json").read_text())
    assert teacher["dev"] > 0.9  # the generated task is learnable; a broken trainer stays near 0.5


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
def test_html_report(workdir):
    snakemake(workdir, "--report", "results/report.html")
    assert (workdir / "results/report.html").stat().st_size > 10_000
