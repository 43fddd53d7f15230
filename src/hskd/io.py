"""Atomic file outputs (temp path, then rename) and run provenance."""

from __future__ import annotations

import json
import os
import platform
import resource
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch
from safetensors.torch import save_file

PACKAGES = ("hskd", "torch", "transformers", "safetensors", "numpy", "snakemake")


def _tmp(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(path.name + ".tmp")


def write_json_atomic(data: dict, path: str | Path) -> None:
    tmp = _tmp(path)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def save_tensors_atomic(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    tmp = _tmp(path)
    save_file({name: t.contiguous() for name, t in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
