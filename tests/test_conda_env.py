"""`--use-conda`: what can be checked without conda (it cannot be installed here): the env file names no
path (Snakemake copies it into .snakemake/conda/ before creating the env), pins what pyproject.toml pins,
and its post-deploy script, found by Snakemake's own naming rule, installs this repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from snakemake.sourcecache import LocalSourceFile

ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = ROOT / "envs" / "hskd.yaml"


def pip_entries() -> list[str]:
    dependencies = yaml.safe_load(ENV_FILE.read_text())["dependencies"]
    return next(item["pip"] for item in dependencies if isinstance(item, dict) and "pip" in item)


def test_the_env_pins_what_pyproject_pins_and_names_no_path():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert sorted(pip_entries()) == sorted(pyproject["project"]["dependencies"])


def test_snakemake_finds_the_post_deploy_script():
    script = LocalSourceFile(str(ENV_FILE)).replace_suffix([".yaml", ".yml"], ".post-deploy.sh")
    assert Path(script.get_path_or_uri(secret_free=True)).is_file()


def run_post_deploy(cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """The post-deploy script run from `cwd` with a `pip` that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "pip").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/pip_args\n')
    (bin_dir / "pip").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(["bash", str(ROOT / "envs" / "hskd.post-deploy.sh")], cwd=cwd, env=env,
                          capture_output=True, text=True)  # fmt: skip


def test_the_post_deploy_script_installs_the_repository_it_runs_in(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(ROOT / "pyproject.toml", checkout)
    assert run_post_deploy(checkout, tmp_path).returncode == 0
    assert (tmp_path / "pip_args").read_text().split() == ["install", "--no-deps", "-e", str(checkout)]


def test_the_post_deploy_script_refuses_another_folder(tmp_path):
    result = run_post_deploy(tmp_path, tmp_path)
    assert result.returncode == 1
    assert "run snakemake --use-conda from the hskd repository root" in result.stderr
    assert not (tmp_path / "pip_args").exists()
