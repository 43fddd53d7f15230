"""Planning refuses run targets the config does not ask for (unless told to allow them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import copy_workflow

ON_GRID = "results/SST-2/runs/pruned/depth=top2-1/length=all/width=all/lr=0.001/seed=0/metrics.json"


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
