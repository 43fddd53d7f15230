"""One GPU per job on a machine with several: each job claims the first visible GPU no other hskd job on
this machine holds, by an exclusive lock on a file named after the GPU, held until the job's process ends.

Under SLURM (`--gpus=1`) a job sees only its own GPU, so there is nothing to choose. In a local run with
`snakemake --resources gpu=N`, at most N GPU jobs run at once, and each one takes its own device."""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

LOCK_DIR = Path(tempfile.gettempdir())
_held: list[IO] = []  # the locks of this process, kept open (and so held) until it exits


def gpu_names(count: int, visible: str | None) -> list[str]:
    """The machine-wide name of each of the `count` GPUs this process sees: its entry in
    CUDA_VISIBLE_DEVICES (`visible`), or its index when that is unset."""
    if visible:
        names = [name.strip() for name in visible.split(",") if name.strip()]
        if len(names) >= count:
            return names[:count]
    return [str(index) for index in range(count)]


def try_claim(names: list[str], lock_dir: Path) -> tuple[int, IO] | None:
    """The index of the first GPU whose lock this process could take, with the open lock file; None if
    every one is held."""
    for index, name in enumerate(names):
        handle = open(lock_dir / f"hskd-gpu-{name}.lock", "a")  # noqa: SIM115  (held for the process's life)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return index, handle
    return None


def claim_gpu(count: int, lock_dir: Path = LOCK_DIR, poll_seconds: float = 5.0) -> int:
    """The index (0..count-1) of the visible GPU this job uses: 0 when it sees one, else the first free
    one, waiting while all are held (more GPU jobs than GPUs: `--resources gpu=N` above the count)."""
    if count <= 1:
        return 0
    names = gpu_names(count, os.environ.get("CUDA_VISIBLE_DEVICES"))
    waited = False
    while (claimed := try_claim(names, lock_dir)) is None:
        if not waited:
            print(f"all {count} GPUs are held by other hskd jobs; waiting for one", file=sys.stderr)
            waited = True
        time.sleep(poll_seconds)
    index, handle = claimed
    _held.append(handle)
    return index
