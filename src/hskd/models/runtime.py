"""One job's runtime: threads, seeds, device and the autocast precision."""

from __future__ import annotations

import random
from contextlib import nullcontext

import numpy as np
import torch

from hskd.models.gpu import claim_gpu
from hskd.planning.config import PRECISIONS

# The autocast dtype of this process (None = plain fp32), chosen once per job by `setup_runtime`.
_autocast_dtype: torch.dtype | None = None


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 for ``bf16``, and for ``auto`` on CUDA; None (plain fp32) for ``fp32`` and ``auto`` on CPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (expected one of {', '.join(PRECISIONS)})")
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def setup_runtime(threads: int, seed: int, precision: str = "auto") -> torch.device:
    """Seed every RNG, set CPU threads, pick CUDA when present (one GPU per job, `hskd.models.gpu`), and set the
    precision `autocast` uses from now on."""
    global _autocast_dtype
    torch.set_num_threads(threads)
    seed_all(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Deterministic mode also NaN-fills every new tensor (a debug aid against reading uninitialised memory);
    # that costs a tenth of a CPU training step, and no kernel here reads memory it did not write.
    torch.utils.deterministic.fill_uninitialized_memory = False
    device = torch.device("cpu")
    if torch.cuda.is_available():
        device = torch.device("cuda", claim_gpu(torch.cuda.device_count()))
        torch.cuda.set_device(device)
    _autocast_dtype = autocast_dtype(precision, device)
    return device


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (dropout draws from torch's)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast(device: torch.device):
    """Mixed precision as `setup_runtime` chose it: bf16 autocast (fp32 weights), or plain fp32."""
    return torch.autocast(device.type, dtype=_autocast_dtype) if _autocast_dtype is not None else nullcontext()


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()}
