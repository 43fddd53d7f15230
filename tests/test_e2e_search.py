"""End to end: the smoke study under `grid.search: adaptive` (workflow/configs/search-smoke.yaml) through the real
Snakemake DAG: rounds are checkpoints, a round follows only an undecided one, the tables read exactly the runs
the last round names, and a half-finished round resumes alone."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, copy_workflow

CONFIGS = ["--configfile", "workflow/configs/smoke.yaml", "workflow/configs/search-smoke.yaml"]
RESULTS = yaml.safe_load((ROOT / "workflow/configs/search-smoke.yaml").read_text())["results_dir"]


def snakemake(workdir: Path, *args: str) -> str:
    result = subprocess.run(["snakemake", "--cores", "2", *args, *CONFIGS], cwd=workdir, capture_output=True,
                            text=True, timeout=1800)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = copy_workflow(tmp_path_factory.mktemp("e2e_search"))
    snakemake(work)
    return work


def rounds(workdir: Path) -> list[dict]:
    files = sorted((workdir / RESULTS / "search").glob("round=*.json"), key=lambda path: int(path.stem[6:]))
    return [json.loads(path.read_text()) for path in files]


@pytest.mark.e2e
def test_the_search_runs_in_rounds_until_every_sequence_is_decided(workdir):
    decisions = rounds(workdir)
    assert [decision["done"] for decision in decisions] == [False] * (len(decisions) - 1) + [True]
    for before, after in zip(decisions, decisions[1:], strict=False):  # each round reads what the last named
        assert after["runs_read"] == len(before["runs"]) > before["runs_read"]
    final = decisions[-1]
    table = pd.read_csv(workdir / RESULTS / "tables/runs.csv")
    assert sorted(table["path"]) == sorted(final["runs"])  # the tables read exactly the search's runs
    grid = pd.read_csv(workdir / RESULTS / "tables/search.csv")
    assert set(grid["decision"]) <= {"non-inferior", "not shown", "futile", "collapsed: never enough", "not tested"}
    for sequence in final["sequences"]:
        cells = [cell["decision"] for cell in sequence["cells"]]
        assert "pending" not in cells
        tested = [decision for decision in cells if decision != "not tested"]
        assert all(decision == "non-inferior" for decision in tested[:-1])  # it went on only past shown cells
    assert "Candidate runs read:" in (workdir / RESULTS / "tables/search.md").read_text()


@pytest.mark.e2e
def test_a_half_finished_round_resumes_alone(workdir):
    decisions = rounds(workdir)
    assert len(decisions) >= 2, "the smoke search decides in one round: nothing to resume"
    final = decisions[-1]
    # a crash in the last round: one of the runs it added lost, its decision and the tables never written
    added = sorted(set(final["read"]) - set(decisions[-2]["read"]))
    shutil.rmtree(workdir / Path(added[0]).parent)
    (workdir / RESULTS / f"search/round={len(decisions) - 1}.json").unlink()
    for folder in ("tables", "figures"):
        shutil.rmtree(workdir / RESULTS / folder)
    plan = snakemake(workdir, "-n")
    assert plan.count("rule distill:") == 1 and "checkpoint search_round:" in plan
    assert "rule finetune_teacher:" not in plan and "rule extract:" not in plan
    snakemake(workdir)
    assert rounds(workdir)[-1] == final  # the same run retrained, the same decisions
