"""Resuming an interrupted job where it stopped, with the result it would have had uninterrupted.

A training job (teacher fine-tuning, a student run) saves its state every few minutes to a file beside its
output: what its finished steps produced, and the training state of the stage in progress (weights,
optimizer, schedule, random generators, step, losses). The file is never a declared Snakemake output, so
Snakemake does not delete it when the job fails; rerunning the job (the next `snakemake` call, with
`--rerun-incomplete` if Snakemake itself was killed, or the same `hskd` command) continues from it, and the
job removes it once its output is written.

A file is used only when its key (a hash of every setting and input fingerprint the job's result depends
on) and its format version match the job's; any other is ignored and overwritten."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from hskd.common.io import atomic_output

FORMAT_VERSION = 1  # of the saved file's layout; a file of another version is ignored like another job's


def job_key(**parts) -> str:
    """sha256 of the JSON of `parts` (settings, input fingerprints): what a saved state must match."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def rng_state() -> dict[str, object]:
    state: dict[str, object] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, object]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpoint:
    """The resumable state of one job, saved at most every `every_minutes` (0 = never saved nor read).

    `once(name, compute)` runs a step of the job that ends in a result (a training stage and its evaluation)
    once: in a resumed job, a step that finished before the interruption returns its recorded result.
    `training(stage)` is the saved training state of `stage` if the job stopped during it; `save` records
    the stage's current state together with the finished steps' results.
    """

    def __init__(self, path: str | Path, key: str, every_minutes: float):
        self.path, self.key, self.every_seconds = Path(path), key, every_minutes * 60
        self.done: dict[str, dict] = {}
        self._stage, self._training = None, None
        self._last_save = time.monotonic()
        if every_minutes > 0 and self.path.exists():
            saved = self._read()
            if saved.get("key") == key and saved.get("format_version") == FORMAT_VERSION:
                self.done, self._stage, self._training = saved["done"], saved["stage"], saved["training"]
            else:
                print(f"ignoring {self.path}: saved by a job with other settings, inputs or code", file=sys.stderr)

    def _read(self) -> dict:
        """The saved state, or {} for a file that cannot be read: it is set aside (suffix .unreadable) with a
        one-line warning, so the job starts fresh instead of failing on it at every rerun."""
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
            if isinstance(saved, dict):
                return saved
            problem = f"holds a {type(saved).__name__}, not a saved state"
        except Exception as err:  # torch raises many types for a damaged file (pickle, zip, EOF, runtime)
            problem = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        aside = self.path.with_name(self.path.name + ".unreadable")
        self.path.replace(aside)
        print(f"warning: cannot read the saved state {self.path} ({problem}); moved it to {aside}, starting fresh",
              file=sys.stderr)  # fmt: skip
        return {}

    def once(self, name: str, compute: Callable[[], dict]) -> dict:
        if name not in self.done:
            self.done[name] = compute()
        return self.done[name]

    def training(self, stage: str) -> dict | None:
        """The saved training state of `stage`, if the job stopped while training it (handed out once)."""
        if self._stage != stage:
            return None
        state, self._stage, self._training = self._training, None, None
        print(f"resuming {stage} at step {state['step']} from {self.path}", file=sys.stderr)
        return state

    def due(self) -> bool:
        return self.every_seconds > 0 and time.monotonic() - self._last_save >= self.every_seconds

    def save(self, stage: str, training: dict) -> None:
        with atomic_output(self.path) as tmp:
            saved = {"key": self.key, "format_version": FORMAT_VERSION, "done": self.done, "stage": stage,
                     "training": training}  # fmt: skip
            torch.save(saved, tmp)
        self._last_save = time.monotonic()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
