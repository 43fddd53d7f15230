"""Atomic file outputs (temp path, then rename), content-addressed files, checksums and run provenance."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PACKAGES = ("hskd", "torch", "transformers", "safetensors", "numpy", "snakemake")


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; move it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def link_atomic(source: str | Path, path: str | Path) -> None:
    """Make `path` a hard link to `source` (a copy where the file system has no hard links), atomically."""
    with atomic_output(path) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def write_json_atomic(data: dict, path: str | Path) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def content_file(text: str, directory: str | Path, suffix: str) -> Path:
    """`text` in `directory`, in a file named by its sha256: the same path for the same text and a new path for a
    new one. Written once, atomically."""
    path = Path(directory) / f"{hashlib.sha256(text.encode()).hexdigest()[:20]}{suffix}"
    if not path.exists():
        with atomic_output(path) as tmp:
            tmp.write_text(text)
    return path


def save_tensors_atomic(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file  # imports torch: keep this module light for planning

    with atomic_output(path) as tmp:
        save_file({name: t.contiguous() for name, t in tensors.items()}, str(tmp), metadata=metadata)


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


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's contents, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def dir_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 over the names and contents of the files in a folder (not its subfolders)."""
    files = sorted(p for p in Path(path).iterdir() if p.is_file())
    return hashlib.sha256("".join(f"{p.name}:{file_sha256(p)};" for p in files).encode()).hexdigest()


# ---------------------------------------------------------------------------- output


def write_text(text: str, path: str | Path) -> Path:
    """Write `text` to `path` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
