"""Shared fixtures: the default config as a dict, and a tiny teacher + data folder built offline."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SMOKE_RESULTS = yaml.safe_load((ROOT / "workflow/configs/smoke.yaml").read_text())["results_dir"]


def copy_workflow(work: Path) -> Path:
    """The Snakefile, default config, workflow/ and envs/ copied into `work`, for a Snakemake run of its own."""
    import shutil

    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, work)
    for folder in ("workflow", "envs"):
        shutil.copytree(ROOT / folder, work / folder)
    return work


def load_script(name: str):
    """`scripts/<name>.py` as a module, registered in sys.modules (dataclasses look their module up there)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def job_arguments(shell: str, cwd: Path) -> list[str]:
    """The arguments a planned `hskd` command line passes, its `@file` arguments expanded as argparse expands
    them (one argument per line), without the program, its subcommand and what follows `&&`."""
    import shlex

    words = shlex.split(shell.split(" && ")[0])[2:]
    expanded = []
    for word in words:
        expanded += (cwd / word[1:]).read_text().splitlines() if word.startswith("@") else [word]
    return expanded


def option(arguments: list[str], name: str) -> str:
    """The value of option `name` in an argument list."""
    return arguments[arguments.index(name) + 1]


@pytest.fixture(scope="session")
def default_config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.fixture
def config(default_config) -> dict:
    return copy.deepcopy(default_config)


@pytest.fixture(scope="session")
def tiny_task(tmp_path_factory) -> dict[str, str]:
    """A tiny SST-2-style task: tokenized splits and a 2-layer random teacher saved with a tokenizer."""
    from hskd.common.synthetic import write_synthetic_tsv
    from hskd.models.data import SPLITS, prepare_splits
    from hskd.models.hub import load_tokenizer, random_classifier

    root = tmp_path_factory.mktemp("tiny_task")
    write_synthetic_tsv(root / "glue", n_train=96, n_dev=32, seed=0)
    tokenizer = load_tokenizer("minilm-l6")
    data = {split: str(root / "data" / f"{split}.safetensors") for split in SPLITS}
    prepare_splits("SST-2", str(root / "glue"), tokenizer, 16, None, 16, 0, data)
    teacher = random_classifier(2, layers=2, hidden=32, heads=2, ffn=64, vocab_size=tokenizer.vocab_size, seed=0)
    teacher.save_pretrained(root / "teacher")
    tokenizer.save_pretrained(root / "teacher")
    return {**data, "teacher": str(root / "teacher"), "root": str(root)}


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server on loopback (SQLite-backed, in a temp folder), stopped by its process id:
    yields its URI."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    folder = tmp_path_factory.mktemp("mlflow_server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(folder / "server.log", "w")  # noqa: SIM115 (open for the server's whole life)
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder}/server.db", "--default-artifact-root", str(folder / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # its workers share its process group
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_text = (folder / "server.log").read_text()
                    raise RuntimeError(f"the MLflow server did not start: {log_text}") from None
                time.sleep(0.5)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
