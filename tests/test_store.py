import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import torch
from safetensors import safe_open

from hskd.common.io import file_sha256
from hskd.hsk.compression import HSKBatch
from hskd.hsk.store import BITORDER, HSKStore, HSKStoreWriter, StoreMismatchError, load_logits, save_logits

N, L, K, D, M = 13, 2, 5, 24, 17
STUDENT, TEACHER = [2, 4], [6, 12]
TEACHER_SHA, DATA_SHA = "a" * 64, "b" * 64


def magnitude_batch(gen: torch.Generator) -> HSKBatch:
    """Random targets keeping the M largest-magnitude entries per example and layer."""
    hidden = torch.randn(N, L, K, D, generator=gen)
    flat = hidden.abs().reshape(N, L, K * D)
    keep = torch.zeros_like(flat, dtype=torch.bool).scatter_(-1, flat.topk(M, dim=-1).indices, True)
    keep = keep.view(N, L, K, D)
    return HSKBatch(STUDENT, TEACHER, token_index(gen), hidden * keep, keep)


def dense_batch(gen: torch.Generator, dims: torch.Tensor) -> HSKBatch:
    keep = torch.zeros(D, dtype=torch.bool)
    keep[dims] = True
    keep = keep.view(1, 1, 1, D)
    return HSKBatch(STUDENT, TEACHER, token_index(gen), torch.randn(N, L, K, D, generator=gen) * keep, keep)


def token_index(gen: torch.Generator) -> torch.Tensor:
    return torch.rand(N, 128, generator=gen).argsort(-1)[:, :K].sort(-1).values


def rows(batch: HSKBatch, start: int, stop: int) -> HSKBatch:
    keep = batch.keep_mask if batch.keep_mask.shape[0] == 1 else batch.keep_mask[start:stop]
    return HSKBatch(
        batch.student_layers,
        batch.teacher_layers,
        batch.token_index[start:stop],
        batch.target[start:stop],
        keep,
    )


def writer(path, layout: str, dims: torch.Tensor | None = None, **overrides) -> HSKStoreWriter:
    kwargs = dict(
        num_examples=N,
        cell="depth=top2/length=all/width=x",
        split="train",
        student_layers=STUDENT,
        teacher_layers=TEACHER,
        num_tokens=K,
        hidden_size=D,
        max_seq_length=128,
        width_layout=layout,
        kept_dims=dims,
        kept_entries=M if layout == "magnitude" else None,
        teacher_sha256=TEACHER_SHA,
        data_sha256=DATA_SHA,
        extra_metadata={"task": "sst2"},
    )
    return HSKStoreWriter(path, **{**kwargs, **overrides})


def write_in_chunks(path, batch: HSKBatch, layout: str, dims: torch.Tensor | None = None) -> None:
    with writer(path, layout, dims) as w:
        for start in (5, 0, 9):  # out of order on purpose
            stop = {0: 5, 5: 9, 9: N}[start]
            w.write(start, rows(batch, start, stop))


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("layout", ["magnitude", "dense-subset", "dense-all"])
def test_round_trip(tmp_path, gen, layout):
    path = tmp_path / "hsk.safetensors"
    if layout == "magnitude":
        dims, batch = None, magnitude_batch(gen)
        write_in_chunks(path, batch, "magnitude")
    else:
        dims = torch.tensor([7, 1, 20, 3]) if layout == "dense-subset" else None
        batch = dense_batch(gen, torch.arange(D) if dims is None else dims)
        write_in_chunks(path, batch, "dense", dims)

    store = HSKStore(path, teacher_sha256=TEACHER_SHA, data_sha256=DATA_SHA)
    assert (store.num_examples, store.cell, store.metadata["task"]) == (
        N,
        "depth=top2/length=all/width=x",
        "sst2",
    )
    assert (store.student_layers, store.teacher_layers) == (STUDENT, TEACHER)
    idx = [4, 0, 12, 4, 7]
    got = store.batch(torch.tensor(idx))
    assert got.token_index.dtype == torch.int64
    assert torch.equal(got.token_index, batch.token_index[idx])
    assert got.target.dtype == torch.float16 and got.target.shape == (len(idx), L, K, D)
    torch.testing.assert_close(got.target.float(), batch.target[idx], rtol=1e-3, atol=1e-3)
    expected_keep = batch.keep_mask if layout != "magnitude" else batch.keep_mask[idx]
    assert torch.equal(got.keep_mask, expected_keep)
    assert store.batch(np.array([3])).target.shape == (1, L, K, D)


def test_file_is_valid_safetensors(tmp_path, gen):
    path = tmp_path / "hsk.safetensors"
    batch = magnitude_batch(gen)
    write_in_chunks(path, batch, "magnitude")
    with safe_open(path, "np") as f:
        assert f.metadata()["width_layout"] == "magnitude"
        assert f.metadata()["num_examples"] == str(N)
        assert f.get_tensor("token_index").dtype == np.int16
        np.testing.assert_array_equal(f.get_tensor("token_index"), batch.token_index.numpy())
        np.testing.assert_array_equal(f.get_tensor("student_layers"), STUDENT)
        np.testing.assert_array_equal(f.get_tensor("teacher_layers"), TEACHER)
        flat_keep = batch.keep_mask.reshape(N, L, K * D).numpy()
        np.testing.assert_array_equal(
            f.get_tensor("entry_bits"), np.packbits(flat_keep, -1, bitorder=BITORDER)
        )
        values = batch.target.reshape(N, L, K * D).numpy()[flat_keep].reshape(N, L, M)
        np.testing.assert_allclose(f.get_tensor("values"), values, rtol=1e-3, atol=1e-3)


def test_fingerprint_mismatch_refused(tmp_path, gen):
    path = tmp_path / "hsk.safetensors"
    write_in_chunks(path, magnitude_batch(gen), "magnitude")
    HSKStore(path, teacher_sha256=TEACHER_SHA, data_sha256=DATA_SHA)
    for kwargs, what in (({"teacher_sha256": "c" * 64}, "teacher"), ({"data_sha256": "d" * 64}, "data")):
        with pytest.raises(StoreMismatchError) as err:
            HSKStore(path, **kwargs)
        message = str(err.value)
        assert "\n" not in message
        assert message.startswith(f"{path}: store was built from {what} sha256 ")
        assert message.endswith("re-run extraction")


def test_exception_leaves_no_files(tmp_path, gen):
    path = tmp_path / "hsk.safetensors"
    batch = magnitude_batch(gen)
    with pytest.raises(RuntimeError, match="boom"), writer(path, "magnitude") as w:
        w.write(0, rows(batch, 0, 4))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_missing_examples_raise(tmp_path, gen):
    path = tmp_path / "hsk.safetensors"
    batch = magnitude_batch(gen)
    with pytest.raises(ValueError, match="never written"), writer(path, "magnitude") as w:
        w.write(0, rows(batch, 0, 4))
    assert list(tmp_path.iterdir()) == []


def test_dense_keep_mask_must_match_kept_dims(tmp_path, gen):
    batch = dense_batch(gen, torch.tensor([1, 2]))
    with (
        pytest.raises(ValueError, match="kept_dims"),
        writer(tmp_path / "s", "dense", torch.tensor([1, 3])) as w,
    ):
        w.write(0, batch)


def test_bytes_per_example(tmp_path):
    small = dict(num_examples=2, student_layers=[3], teacher_layers=[6], num_tokens=10, hidden_size=384)
    with (
        pytest.raises(ValueError, match="never written"),
        writer(tmp_path / "s", "magnitude", kept_entries=384, **small) as w,
    ):
        assert w.bytes_per_example == 384 * 2 + 10 * 384 // 8 + 10 * 2
    with (
        pytest.raises(ValueError, match="never written"),
        writer(tmp_path / "s", "dense", torch.arange(0, 384, 2), **small) as w,
    ):
        assert w.bytes_per_example == 10 * 192 * 2 + 10 * 2


def test_logits_round_trip_and_refusal(tmp_path):
    path = tmp_path / "logits.safetensors"
    logits = torch.randn(7, 3)
    save_logits(path, logits, {"teacher_sha256": TEACHER_SHA, "data_sha256": DATA_SHA})
    assert [p.name for p in tmp_path.iterdir()] == ["logits.safetensors"]
    torch.testing.assert_close(load_logits(path, teacher_sha256=TEACHER_SHA, data_sha256=DATA_SHA), logits)
    with pytest.raises(StoreMismatchError, match="re-run extraction"):
        load_logits(path, data_sha256="e" * 64)


def test_unknown_format_version_refused(tmp_path):
    path = tmp_path / "logits.safetensors"
    safetensors.numpy.save_file({"logits": np.zeros((2, 2), np.float32)}, path, metadata={"format_version": "99"})
    with pytest.raises(StoreMismatchError, match="format_version"):
        load_logits(path)


def test_file_sha256(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 1000)
    assert file_sha256(path, chunk=7) == hashlib.sha256(b"abc" * 1000).hexdigest()


# ------------------------------------------------------------------------------------------ integrity


def _damaged_store(tmp_path, gen, monkeypatch, damage: str, fix_checksum: bool) -> HSKStore:
    """A magnitude store of N examples in blocks of 4, with example 5 (block 1) damaged on disk."""
    from hskd.hsk import store as store_module

    monkeypatch.setattr(store_module, "BLOCK_EXAMPLES", 4)
    path = tmp_path / "hsk.safetensors"
    write_in_chunks(path, magnitude_batch(gen), "magnitude")
    _, entries, start = store_module._read_header(path)
    mm, arrays = store_module._map_tensors(path, start, entries, "r+")
    if damage == "zeros":
        arrays["values"][5, 0, :4] = 0
    elif damage in ("nan", "inf"):
        arrays["values"][5, 1, 3] = np.float16(damage)
    elif damage == "swapped_bits":
        bits = np.unpackbits(arrays["entry_bits"][5, 0], bitorder=BITORDER)
        on, off = np.flatnonzero(bits)[0], np.flatnonzero(bits == 0)[0]
        bits[on], bits[off] = 0, 1
        arrays["entry_bits"][5, 0] = np.packbits(bits, bitorder=BITORDER)
    elif damage == "token_out_of_range":
        arrays["token_index"][5, 0] = 500
    if fix_checksum:  # damage that a checksum recomputed after it would hide: the content checks still catch it
        arrays["block_crc32"][1] = store_module._block_crc32(arrays, 1)
    mm.flush()
    del mm, arrays
    return HSKStore(path)


@pytest.mark.parametrize(
    ("damage", "fix_checksum", "message"),
    [
        ("zeros", False, "fails its checksum"),
        ("nan", False, "fails its checksum"),
        ("inf", False, "fails its checksum"),
        ("swapped_bits", False, "fails its checksum"),
        ("token_out_of_range", False, "fails its checksum"),
        ("nan", True, "holds non-finite values"),
        ("inf", True, "holds non-finite values"),
        ("token_out_of_range", True, "has token positions outside \\[0, 128\\)"),
    ],
)
def test_a_damaged_block_stops_the_read_naming_file_and_block(tmp_path, gen, monkeypatch, damage, fix_checksum,
                                                               message):  # fmt: skip
    from hskd.hsk.store import StoreCorruptError

    store = _damaged_store(tmp_path, gen, monkeypatch, damage, fix_checksum)
    store.batch([0, 1, 2, 3, 8])  # blocks 0 and 2 are intact
    with pytest.raises(StoreCorruptError, match=f"hsk.safetensors: block 1 \\(examples 4..7\\) {message}"):
        store.batch([6, 5])


def test_a_truncated_store_is_refused_naming_the_file(tmp_path, gen):
    from hskd.hsk.store import StoreCorruptError

    path = tmp_path / "hsk.safetensors"
    write_in_chunks(path, magnitude_batch(gen), "magnitude")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(StoreCorruptError, match="hsk.safetensors: cannot read the store"):
        HSKStore(path)


def test_the_writer_refuses_non_finite_hsk(tmp_path, gen):
    batch = magnitude_batch(gen)
    batch.target[3, 0][batch.keep_mask[3, 0]] = float("nan")
    with pytest.raises(ValueError, match="non-finite HSK values .* in examples 0..12"), writer(
        tmp_path / "hsk.safetensors", "magnitude"
    ) as w:
        w.write(0, batch)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("wrong", ["token_index", "target"])
def test_the_writer_refuses_a_batch_of_another_shape(tmp_path, gen, wrong):
    # A target [N, 1, K, D] for a store of L = 2 layers would broadcast silently into values [N, 2, K, Dk]:
    # either wrong shape alone must stop the write.
    batch = dense_batch(gen, torch.arange(D))
    if wrong == "token_index":
        batch.token_index = batch.token_index[:, : K - 1]  # [N, K - 1]
    else:
        batch.target = batch.target[:, :1]  # [N, 1, K, D]
    with (
        pytest.raises(ValueError, match="expected token_index"),
        writer(tmp_path / "hsk.safetensors", "dense") as w,
    ):
        w.write(0, batch)
    assert not list(tmp_path.iterdir())


def mapped_rss_kb(path) -> int:
    """Resident kB of this process's mappings of `path` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text(encoding="utf-8").splitlines():
        if "-" in line.split(" ", 1)[0] and len(line.split()) >= 5:  # a mapping's header line
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc")
def test_reading_and_writing_leave_no_store_pages_resident(tmp_path, gen):
    # a job's memory must not grow with the stores it streams: pages go back to the page cache after each batch
    path = tmp_path / "hsk.safetensors"
    batch = dense_batch(gen, torch.arange(D))
    with writer(path, "dense") as w:
        w.write(0, rows(batch, 0, N))
        assert mapped_rss_kb(w._tmp) == 0
    store = HSKStore(path, teacher_sha256=TEACHER_SHA, data_sha256=DATA_SHA)
    got = store.batch(torch.arange(N))
    assert mapped_rss_kb(path) == 0
    torch.testing.assert_close(got.target.float(), batch.target, rtol=1e-3, atol=1e-3)
