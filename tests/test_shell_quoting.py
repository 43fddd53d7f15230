"""Config values reach the shell only quoted: a planned command, run with its program replaced by printf,
prints every value verbatim and executes nothing inside it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from conftest import copy_workflow

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_MODEL = "minilm-l6'$(touch pwned)'"
APOSTROPHE_DIR = "results/it's glue"
APOSTROPHE_RESULTS = "results/it's smoke"


def test_config_values_are_quoted_in_every_planned_command(tmp_path):
    copy_workflow(tmp_path)
    config = yaml.safe_load((ROOT / "workflow/configs/smoke.yaml").read_text())
    config["teacher"]["model"] = HOSTILE_MODEL
    config["glue_dir"] = APOSTROPHE_DIR
    config["results_dir"] = APOSTROPHE_RESULTS
    (tmp_path / "hostile.yaml").write_text(yaml.safe_dump(config))
    plan = subprocess.run(["snakemake", "-n", "-p", "--configfile", "hostile.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert plan.returncode == 0, plan.stdout[-2000:] + plan.stderr[-2000:]
    lines = plan.stdout.splitlines()
    commands = [line.split("Shell command: ", 1)[1] for line in lines if "Shell command: hskd" in line]
    assert any("prepare-data" in command for command in commands)
    for command in commands:
        program, _, rest = command.partition(" ")
        assert program == "hskd"
        arguments = rest.split(" && ", 1)[0]
        printed = subprocess.run(["bash", "-c", f"printf '%s\\n' {arguments}"], cwd=tmp_path, capture_output=True,
                                 text=True, check=True).stdout.splitlines()  # fmt: skip
        if "prepare-data" in command:
            assert printed[printed.index("--tokenizer") + 1] == HOSTILE_MODEL
            assert printed[printed.index("--glue-dir") + 1] == APOSTROPHE_DIR
            assert printed[printed.index("--out-dir") + 1] == f"{APOSTROPHE_RESULTS}/SST-2/data"
    assert not (tmp_path / "pwned").exists()
