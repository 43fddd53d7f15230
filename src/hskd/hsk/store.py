"""On-disk stores of compressed teacher HSK and teacher logits, as streamed safetensors files.

An HSK store holds fixed-size records for N examples, so its safetensors header can be written before any
data; the data region is then memory-mapped and filled batch by batch during the teacher pass, and read back
with one fancy-index per tensor. Tensors (L layers, K kept tokens, D teacher width):

- ``student_layers``, ``teacher_layers``: int32 [L]
- ``token_index``: int16 [N, K], or [N, L, K] with a token set per layer (int32 when max_seq_length > 32767)
- dense width layout: ``width_index`` int32 [Dk] and ``values`` F16 [N, L, K, Dk]
- magnitude width layout: ``values`` F16 [N, L, m], the kept entries in ascending flat (token, dim) order,
  and ``entry_bits`` U8 [N, L, ceil(K*D/8)], ``np.packbits`` of the [K*D] keep mask with bitorder "little".
- ``block_crc32``: U32 [ceil(N / BLOCK_EXAMPLES)], per block of examples the CRC-32 of its rows of
  ``token_index``, ``values`` and ``entry_bits`` (in that order). A reader verifies each block the first
  time it reads from it, with its values finite and its token positions in range, so a damaged store stops
  a run with one line naming the file and the block instead of training a student on it."""

from __future__ import annotations

import json
import math
import mmap
import os
import zlib
from pathlib import Path

import numpy as np
import safetensors.numpy
import torch
from safetensors import safe_open

from hskd.hsk.compression import HSKBatch

FORMAT_VERSION = "2"
BLOCK_EXAMPLES = 256  # examples per checksum block: a block is verified once, on its first read
BITORDER = "little"
WIDTH_LAYOUTS = ("dense", "magnitude")

_DTYPES = {
    "F16": np.float16,
    "F32": np.float32,
    "I16": np.int16,
    "I32": np.int32,
    "I64": np.int64,
    "U8": np.uint8,
    "U32": np.uint32,
}
_DTYPE_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
_PER_EXAMPLE = ("token_index", "values", "entry_bits")

TensorSpecs = dict[str, tuple[type, tuple[int, ...]]]
HeaderEntries = dict[str, dict]


class StoreMismatchError(ValueError):
    """A store was built from another teacher, dataset or format version than the current one."""


class StoreCorruptError(StoreMismatchError):
    """A store's bytes are damaged: a block fails its checksum, holds non-finite values or bad positions."""


def _block_crc32(arrays: dict[str, np.ndarray], block: int) -> int:
    rows = slice(block * BLOCK_EXAMPLES, (block + 1) * BLOCK_EXAMPLES)
    crc = 0
    for name in _PER_EXAMPLE:
        if name in arrays:
            crc = zlib.crc32(np.ascontiguousarray(arrays[name][rows]), crc)
    return crc


def _short(sha: str) -> str:
    return f"{sha[:12]}…" if sha else "<none>"


def _check_metadata(
    path: Path, metadata: dict[str, str], teacher_sha256: str | None, data_sha256: str | None
) -> None:
    """Refuse a store of an unknown format version or with fingerprints other than the expected ones."""
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise StoreMismatchError(
            f"{path}: store format_version is {version!r} but this code reads {FORMAT_VERSION!r}; "
            "re-run extraction"
        )
    for what, expected in (("teacher", teacher_sha256), ("data", data_sha256)):
        found = metadata.get(f"{what}_sha256", "")
        if expected is not None and found != expected:
            raise StoreMismatchError(
                f"{path}: store was built from {what} sha256 {_short(found)} "
                f"but the current {what} is {_short(expected)}; re-run extraction"
            )


def _merge_metadata(own: dict[str, str], extra: dict[str, str] | None) -> dict[str, str]:
    extra = extra or {}
    clash = sorted(own.keys() & extra.keys())
    if clash:
        raise ValueError(f"extra metadata may not override {clash}")
    merged = {**own, **extra}
    bad = [k for k, v in merged.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise TypeError(f"metadata keys and values must be strings: {bad}")
    return merged


def _tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _encode_header(metadata: dict[str, str], specs: TensorSpecs) -> tuple[bytes, HeaderEntries, int]:
    """The 8-byte length plus padded JSON header, its tensor entries and the data region size.

    Tensors are laid out contiguously (safetensors allows no gaps) by decreasing item size, so every tensor
    stays naturally aligned in the memory map.
    """
    entries: HeaderEntries = {}
    offset = 0
    for name, (dtype, shape) in sorted(specs.items(), key=lambda item: -np.dtype(item[1][0]).itemsize):
        nbytes = np.dtype(dtype).itemsize * math.prod(shape)
        entries[name] = {
            "dtype": _DTYPE_NAMES[np.dtype(dtype)],
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    header = json.dumps({"__metadata__": metadata, **entries}, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header, entries, offset


def _read_header(path: Path) -> tuple[dict[str, str], HeaderEntries, int]:
    """The metadata, tensor entries and data region start of a safetensors file."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    metadata = header.pop("__metadata__", None) or {}
    return metadata, header, 8 + size


def _map_tensors(path: Path, data_start: int, entries: HeaderEntries, mode: str) -> tuple[np.memmap, dict]:
    """One memory map of the data region and an array view into it per tensor."""
    data_size = max(e["data_offsets"][1] for e in entries.values())
    mm = np.memmap(path, dtype=np.uint8, mode=mode, offset=data_start, shape=(data_size,))
    arrays = {}
    for name, e in entries.items():
        begin, end = e["data_offsets"]
        arrays[name] = mm[begin:end].view(_DTYPES[e["dtype"]]).reshape(e["shape"])
    return mm, arrays


def _drop_pages(mapping: np.memmap) -> None:
    """Unmap the store's pages from this process. The page cache keeps them (dirty ones are still written
    back), so a job's resident memory does not grow with the size of the stores it writes or reads; the next
    access maps a page again from the cache. np.memmap holds its mmap.mmap in `_mmap`."""
    mapping._mmap.madvise(mmap.MADV_DONTNEED)


def _bytes_per_example(arrays: dict[str, np.ndarray]) -> int:
    return sum(arrays[name][0].nbytes for name in _PER_EXAMPLE if name in arrays)


class HSKStoreWriter:
    """Streams the compressed HSK of one (student, cell, split) into a safetensors store.

    Use as a context manager: the file is built at ``path + ".tmp"`` and renamed to ``path`` on a clean exit;
    on an exception the tmp file is removed and ``path`` never appears.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        num_examples: int,
        cell: str,
        split: str,
        student_layers: list[int],
        teacher_layers: list[int],
        num_tokens: int,
        hidden_size: int,
        max_seq_length: int,
        width_layout: str,
        kept_dims: torch.Tensor | None,
        kept_entries: int | None,
        teacher_sha256: str,
        data_sha256: str,
        extra_metadata: dict[str, str] | None = None,
        per_layer_tokens: bool = False,
    ) -> None:
        self.path = Path(path)
        self._tmp = _tmp_path(self.path)
        num_layers = len(student_layers)
        if num_examples < 1 or num_tokens < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError("num_examples, num_tokens, hidden_size and the layer count must be positive")
        if len(teacher_layers) != num_layers:
            raise ValueError(f"{num_layers} student layers but {len(teacher_layers)} teacher layers")
        if num_tokens > max_seq_length:
            raise ValueError(f"num_tokens {num_tokens} exceeds max_seq_length {max_seq_length}")
        self.num_examples = num_examples
        self.student_layers = list(student_layers)
        self.teacher_layers = list(teacher_layers)
        self.width_layout = width_layout
        self._shape = (num_layers, num_tokens, hidden_size)
        self._max_seq_length = max_seq_length
        self._token_shape = (num_layers, num_tokens) if per_layer_tokens else (num_tokens,)
        width_specs = self._width_specs(width_layout, kept_dims, kept_entries)
        token_dtype = np.int16 if max_seq_length <= np.iinfo(np.int16).max else np.int32
        specs: TensorSpecs = {
            "student_layers": (np.int32, (num_layers,)),
            "teacher_layers": (np.int32, (num_layers,)),
            "token_index": (token_dtype, (num_examples, *self._token_shape)),
            "block_crc32": (np.uint32, (-(-num_examples // BLOCK_EXAMPLES),)),
            **width_specs,
        }
        metadata = _merge_metadata(
            {
                "format_version": FORMAT_VERSION,
                "cell": cell,
                "split": split,
                "num_examples": str(num_examples),
                "hidden_size": str(hidden_size),
                "max_seq_length": str(max_seq_length),
                "width_layout": width_layout,
                "teacher_sha256": teacher_sha256,
                "data_sha256": data_sha256,
            },
            extra_metadata,
        )
        header, entries, data_size = _encode_header(metadata, specs)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self._tmp, "wb") as f:
                f.write(header)
                f.truncate(len(header) + data_size)
            self._mm, self._arrays = _map_tensors(self._tmp, len(header), entries, "r+")
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        self._arrays["student_layers"][:] = self.student_layers
        self._arrays["teacher_layers"][:] = self.teacher_layers
        if width_layout == "dense":
            self._arrays["width_index"][:] = self._kept_dims
        self._written = np.zeros(num_examples, dtype=bool)
        self.bytes_per_example = _bytes_per_example(self._arrays)

    def _width_specs(
        self, width_layout: str, kept_dims: torch.Tensor | None, kept_entries: int | None
    ) -> TensorSpecs:
        """Validate the width arguments and return the specs of the width-dependent tensors."""
        num_layers, num_tokens, hidden_size = self._shape
        n = self.num_examples
        if width_layout == "dense":
            if kept_entries is not None:
                raise ValueError("kept_entries is only for the magnitude width layout")
            dims = torch.arange(hidden_size) if kept_dims is None else kept_dims.detach().cpu().long()
            if dims.ndim != 1 or dims.numel() == 0 or dims.unique().numel() != dims.numel():
                raise ValueError("kept_dims must be a non-empty 1-D tensor of distinct dims")
            if dims.min() < 0 or dims.max() >= hidden_size:
                raise ValueError(f"kept_dims must lie in [0, {hidden_size})")
            self._kept_dims = dims.numpy()
            self._dims_mask = torch.zeros(hidden_size, dtype=torch.bool)
            self._dims_mask[dims] = True
            return {
                "width_index": (np.int32, (dims.numel(),)),
                "values": (np.float16, (n, num_layers, num_tokens, dims.numel())),
            }
        if width_layout == "magnitude":
            entries = num_tokens * hidden_size
            if kept_dims is not None:
                raise ValueError("kept_dims is only for the dense width layout")
            if kept_entries is None or not 1 <= kept_entries <= entries:
                raise ValueError(f"magnitude layout needs kept_entries in [1, {entries}], got {kept_entries}")
            self._kept_entries = kept_entries
            return {
                "values": (np.float16, (n, num_layers, kept_entries)),
                "entry_bits": (np.uint8, (n, num_layers, math.ceil(entries / 8))),
            }
        raise ValueError(f"width_layout must be one of {WIDTH_LAYOUTS}, got {width_layout!r}")

    def __enter__(self) -> HSKStoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def write(self, start: int, batch: HSKBatch) -> None:
        """Store the examples ``start .. start + B`` of ``batch``."""
        if self._arrays is None:
            raise ValueError(f"{self.path}: writer is closed")
        num_layers, num_tokens, hidden_size = self._shape
        size = batch.token_index.shape[0]
        if start < 0 or start + size > self.num_examples:
            raise ValueError(
                f"examples {start}..{start + size} out of range for {self.num_examples} examples"
            )
        if batch.student_layers != self.student_layers or batch.teacher_layers != self.teacher_layers:
            raise ValueError("batch layers differ from the store's layers")
        full_shape = (size, num_layers, num_tokens, hidden_size)
        if tuple(batch.token_index.shape) != (size, *self._token_shape) or tuple(batch.target.shape) != full_shape:
            raise ValueError(
                f"expected token_index {(size, *self._token_shape)} and target {full_shape}, got "
                f"{tuple(batch.token_index.shape)} and {tuple(batch.target.shape)}"
            )
        if batch.keep_mask.dtype != torch.bool:
            raise ValueError(f"keep_mask must be bool, got {batch.keep_mask.dtype}")
        tokens = batch.token_index.detach().cpu()
        if tokens.min() < 0 or tokens.max() >= self._max_seq_length:
            raise ValueError(f"token_index must lie in [0, {self._max_seq_length})")
        keep = batch.keep_mask.detach().cpu().expand(full_shape)
        target = batch.target.detach().cpu().float()
        rows = slice(start, start + size)
        if self.width_layout == "dense":
            values = self._encode_dense(keep, target)
        else:
            values, bits = self._encode_magnitude(keep, target)
            self._arrays["entry_bits"][rows] = bits
        values = values.astype(np.float16)
        if not np.isfinite(values).all():
            raise ValueError(f"{self.path}: non-finite HSK values (NaN, inf, or beyond float16) in examples "
                             f"{start}..{start + size - 1}; the teacher's hidden states are not finite")  # fmt: skip
        self._arrays["values"][rows] = values
        self._arrays["token_index"][rows] = tokens.numpy()
        self._written[rows] = True
        _drop_pages(self._mm)

    def _encode_dense(self, keep: torch.Tensor, target: torch.Tensor) -> np.ndarray:
        if not torch.equal(keep, self._dims_mask.expand(keep.shape)):
            raise ValueError("keep_mask differs from the store's kept_dims")
        # np.take, because torch's index_select along the last dim is ~20x slower on CPU.
        return np.take(target.numpy(), self._kept_dims, axis=-1)

    def _encode_magnitude(self, keep: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Kept values [B, L, m] in ascending flat order and the packed keep bits [B, L, ceil(K*D/8)]."""
        size, num_layers = keep.shape[:2]
        flat_keep = keep.numpy().reshape(size * num_layers, -1)
        positions = np.flatnonzero(flat_keep)
        # Where each (example, layer) row begins in the sorted positions gives its kept count; torch's bool
        # sum and mask indexing are several times slower here.
        row_starts = np.searchsorted(positions, np.arange(size * num_layers + 1) * flat_keep.shape[1])
        if (np.diff(row_starts) != self._kept_entries).any():
            raise ValueError(f"every example and layer must keep exactly {self._kept_entries} entries")
        values = target.numpy().reshape(-1)[positions].reshape(size, num_layers, -1)
        bits = np.packbits(flat_keep, axis=-1, bitorder=BITORDER).reshape(size, num_layers, -1)
        return values, bits

    def close(self) -> None:
        """Flush and move the finished store into place; raises (and removes the tmp file) if incomplete."""
        if self._arrays is None:
            return
        missing = np.flatnonzero(~self._written)
        if missing.size:
            self._abort()
            raise ValueError(
                f"{self.path}: {missing.size} of {self.num_examples} examples were never written "
                f"(first: {missing[0]})"
            )
        crc = self._arrays["block_crc32"]
        for block in range(len(crc)):
            crc[block] = _block_crc32(self._arrays, block)
            _drop_pages(self._mm)
        self._mm.flush()
        self._release()
        os.replace(self._tmp, self.path)

    def _release(self) -> None:
        self._mm = self._arrays = None

    def _abort(self) -> None:
        self._release()
        self._tmp.unlink(missing_ok=True)


class HSKStore:
    """Read-only, memory-mapped view of an HSK store that yields dense ``HSKBatch``es."""

    def __init__(
        self, path: str | os.PathLike, *, teacher_sha256: str | None = None, data_sha256: str | None = None
    ) -> None:
        self.path = Path(path)
        try:
            self.metadata, entries, data_start = _read_header(self.path)
        except (ValueError, UnicodeDecodeError) as err:
            raise StoreCorruptError(f"{self.path}: cannot read the store header ({err}); rebuild it") from None
        _check_metadata(self.path, self.metadata, teacher_sha256, data_sha256)
        try:
            self._mm, self._arrays = _map_tensors(self.path, data_start, entries, "r")
        except (ValueError, KeyError) as err:
            raise StoreCorruptError(f"{self.path}: cannot read the store's tensors ({err}); rebuild it") from None
        self.num_examples = int(self.metadata["num_examples"])
        self.cell = self.metadata["cell"]
        self.split = self.metadata["split"]
        self.width_layout = self.metadata["width_layout"]
        self.hidden_size = int(self.metadata["hidden_size"])
        self.student_layers = self._arrays["student_layers"].tolist()
        self.teacher_layers = self._arrays["teacher_layers"].tolist()
        self.num_tokens = self._arrays["token_index"].shape[-1]
        self.bytes_per_example = _bytes_per_example(self._arrays)
        self.max_seq_length = int(self.metadata["max_seq_length"])
        self._verified = np.zeros(len(self._arrays["block_crc32"]), dtype=bool)
        if self.width_layout == "dense":
            self._width_index = self._arrays["width_index"].astype(np.int64)
            self._full_width = np.array_equal(self._width_index, np.arange(self.hidden_size))
            mask = torch.zeros(self.hidden_size, dtype=torch.bool)
            mask[torch.from_numpy(self._width_index)] = True
            self._dense_mask = mask.view(1, 1, 1, -1)

    def __len__(self) -> int:
        return self.num_examples

    def batch(self, example_indices: torch.Tensor | np.ndarray | list[int]) -> HSKBatch:
        """The dense, zero-filled HSK of the given examples (any order, repeats allowed).

        The target stays float16 as stored: half the bytes to move, upcast where the loss runs."""
        idx = np.asarray(example_indices, dtype=np.int64)
        if idx.ndim != 1:
            raise ValueError("example_indices must be 1-D")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_examples):
            raise IndexError(f"example indices must lie in [0, {self.num_examples})")
        for block in np.unique(idx // BLOCK_EXAMPLES):
            if not self._verified[block]:
                self._verify(int(block))
        tokens = torch.from_numpy(self._arrays["token_index"][idx].astype(np.int64))
        values = self._arrays["values"][idx]
        if self.width_layout == "dense":
            target, keep = self._decode_dense(values)
        else:
            target, keep = self._decode_magnitude(values, self._arrays["entry_bits"][idx])
        _drop_pages(self._mm)
        return HSKBatch(list(self.student_layers), list(self.teacher_layers), tokens, target, keep)

    def _verify(self, block: int) -> None:
        """Check one block's checksum, values and token positions; StoreCorruptError naming it if damaged."""
        first = block * BLOCK_EXAMPLES
        rows = slice(first, first + BLOCK_EXAMPLES)
        where = f"{self.path}: block {block} (examples {first}..{min(first + BLOCK_EXAMPLES, self.num_examples) - 1})"
        rebuild = "delete the store and rerun snakemake to rebuild it (the extraction job rewrites the task's stores)"
        if _block_crc32(self._arrays, block) != self._arrays["block_crc32"][block]:
            raise StoreCorruptError(f"{where} fails its checksum: the file is damaged; {rebuild}")
        if not np.isfinite(self._arrays["values"][rows]).all():
            raise StoreCorruptError(f"{where} holds non-finite values; {rebuild}")
        tokens = self._arrays["token_index"][rows]
        if tokens.min() < 0 or tokens.max() >= self.max_seq_length:
            raise StoreCorruptError(f"{where} has token positions outside [0, {self.max_seq_length}); {rebuild}")
        self._verified[block] = True
        _drop_pages(self._mm)

    def _decode_dense(self, values: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if self._full_width:
            return torch.from_numpy(values), self._dense_mask
        target = np.zeros((*values.shape[:-1], self.hidden_size), dtype=np.float16)
        target[..., self._width_index] = values
        return torch.from_numpy(target), self._dense_mask

    def _decode_magnitude(self, values: np.ndarray, bits: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        size, num_layers = values.shape[:2]
        entries = self.num_tokens * self.hidden_size
        keep = np.unpackbits(bits, axis=-1, count=entries, bitorder=BITORDER).view(bool)
        target = np.zeros((size, num_layers, entries), dtype=np.float16)
        # flatnonzero yields positions in the stored ascending order; about 2x faster than target[keep] = ...
        target.reshape(-1)[np.flatnonzero(keep)] = values.reshape(-1)
        full_shape = (size, num_layers, self.num_tokens, self.hidden_size)
        return torch.from_numpy(target).view(full_shape), torch.from_numpy(keep).view(full_shape)


def save_logits(path: str | os.PathLike, logits: torch.Tensor, metadata: dict[str, str]) -> None:
    """Write teacher logits float32 [N, C] as a safetensors file (``logits``), atomically."""
    if logits.ndim != 2:
        raise ValueError(f"logits must be [N, C], got shape {tuple(logits.shape)}")
    path = Path(path)
    tmp = _tmp_path(path)
    array = logits.detach().cpu().to(torch.float32).contiguous().numpy()
    merged = _merge_metadata({"format_version": FORMAT_VERSION}, metadata)
    try:
        safetensors.numpy.save_file({"logits": array}, str(tmp), metadata=merged)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_logits(
    path: str | os.PathLike, *, teacher_sha256: str | None = None, data_sha256: str | None = None
) -> torch.Tensor:
    """Teacher logits [N, C] saved by `save_logits`, refused if built from another teacher or dataset."""
    path = Path(path)
    with safe_open(path, "pt") as f:
        _check_metadata(path, f.metadata() or {}, teacher_sha256, data_sha256)
        return f.get_tensor("logits")
