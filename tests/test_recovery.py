"""The README's recovery commands, followed as written after Snakemake (and every job) is killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pandas as pd
import pytest
from conftest import ROOT, SMOKE_RESULTS, copy_workflow

SMOKE = ["--configfile", "workflow/configs/smoke.yaml"]


def readme_command(description: str) -> str:
    """The command cell of the README's recovery table row that starts with `description`."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith(f"| {description}"):
            return line.split("|")[2].strip()
    raise AssertionError(f"README has no recovery row for {description!r}")


@pytest.mark.e2e
def test_a_killed_study_finishes_with_the_readme_commands(tmp_path):
    work = copy_workflow(tmp_path)
    study = subprocess.Popen(["snakemake", "--cores", "2", *SMOKE], cwd=work, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 600
    while not list(work.glob(f"{SMOKE_RESULTS}/SST-2/runs/**/metrics.json")):  # kill it while students train
        assert study.poll() is None and time.monotonic() < deadline, "the study ended before any run finished"
        time.sleep(1)
    os.killpg(study.pid, signal.SIGKILL)  # Snakemake and every job, as a lost terminal or a reboot would
    study.wait()
    assert (work / ".snakemake" / "locks").is_dir() and any((work / ".snakemake" / "locks").iterdir())
    row = readme_command("Snakemake itself was killed")
    commands = [part.strip().strip("`") for part in row.split(", then ")]
    assert commands == ["snakemake --unlock", "snakemake --cores 2 --rerun-incomplete"]
    for command in commands:  # as written, plus the study's config
        result = subprocess.run([*command.split(), *SMOKE], cwd=work, capture_output=True, text=True, timeout=1200)
        assert result.returncode == 0, command + "\n" + result.stderr[-3000:]
    runs = pd.read_csv(work / SMOKE_RESULTS / "tables/runs.csv")
    assert len(runs) == 26 and not list(work.glob(f"{SMOKE_RESULTS}/**/*.resume.pt"))
