"""One GPU per job: a job takes the first GPU whose lock no other process holds (no GPU needed to test)."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from hskd.models import gpu


@pytest.mark.parametrize(
    ("visible", "count", "expected"),
    [(None, 3, ["0", "1", "2"]), ("4,6", 2, ["4", "6"]), ("GPU-a, GPU-b", 2, ["GPU-a", "GPU-b"]), ("", 2, ["0", "1"])],
)
def test_gpu_names_are_the_machine_wide_ones(visible, count, expected):
    assert gpu.gpu_names(count, visible) == expected


def hold_lock(path) -> subprocess.Popen:
    """Another process holding an exclusive lock on `path` until its stdin closes."""
    code = ("import fcntl, sys\nhandle = open(sys.argv[1], 'a')\nfcntl.flock(handle, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\nsys.stdin.read()\n")  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_job_takes_the_first_gpu_no_other_job_holds(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5,7")
    holder = hold_lock(tmp_path / "hskd-gpu-2.lock")  # another job has GPU 2, the first visible one
    try:
        assert gpu.claim_gpu(3, tmp_path) == 1
        # this process now holds GPU 5: a third job gets GPU 7
        third = subprocess.run([sys.executable, "-c", f"from hskd.models import gpu; from pathlib import Path; "
                                f"print(gpu.claim_gpu(3, Path({str(tmp_path)!r})))"],
                               capture_output=True, text=True, check=True)  # fmt: skip
        assert third.stdout.strip() == "2"
    finally:
        holder.stdin.close()
        holder.wait()
    gpu._held.pop().close()


def test_a_job_waits_while_every_gpu_is_held(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    holders = [hold_lock(tmp_path / f"hskd-gpu-{index}.lock") for index in range(2)]
    threading.Timer(0.5, lambda: (holders[1].stdin.close(), holders[1].wait())).start()
    try:
        assert gpu.claim_gpu(2, tmp_path, poll_seconds=0.1) == 1  # GPU 1 is freed after 0.5 s
    finally:
        holders[0].stdin.close()
        holders[0].wait()
    gpu._held.pop().close()


def test_one_visible_gpu_is_the_jobs_own(tmp_path):
    assert gpu.claim_gpu(1, tmp_path) == 0
    assert list(tmp_path.iterdir()) == []  # nothing to lock: SLURM gave this job its GPU
