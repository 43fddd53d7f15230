"""One teacher pass over the training split that writes every cached cell's HSK store and the teacher
logits: the teacher runs once per task, whatever the size of the grid."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass

import torch
from tqdm import tqdm

from hskd.common.io import file_sha256, link_atomic, peak_rss_mb, write_json_atomic
from hskd.hsk.compression import real_fraction
from hskd.hsk.sources import compress_pass
from hskd.hsk.store import HSKStoreWriter, save_logits
from hskd.models.data import TokenizedSplit
from hskd.models.hub import load_tokenizer
from hskd.models.runtime import setup_runtime, to_device
from hskd.models.teacher import load_teacher, teacher_fingerprint, teacher_pass
from hskd.planning.cells import Cell
from hskd.planning.grid import kept_values_per_layer, store_bytes_per_example, store_content_key
from hskd.planning.protocol import PRESETS, Protocol
from hskd.planning.strategies import WIDTH_SEED

EXTRACT_BATCH_SIZE = 64


@dataclass(frozen=True)
class StoreTarget:
    """One store to write: a cell of a student (with Ls layers) and its output path; `joint` = a cell of
    grid.joint (its tokens are ranked by the protocol's `joint_token_ranking`)."""

    student: str
    student_layers: int
    cell: Cell
    path: str
    joint: bool = False

    @property
    def content_key(self) -> tuple[str, int, bool]:
        return store_content_key(self.cell, self.student_layers, self.joint)


def unique_targets(targets: list[StoreTarget]) -> dict[tuple[str, int, bool], StoreTarget]:
    """The first target of each content key: the one store written for every student that shares it."""
    first: dict[tuple[str, int, bool], StoreTarget] = {}
    for target in targets:
        first.setdefault(target.content_key, target)
    return first


def store_writer(
    target: StoreTarget, num_examples: int, max_len: int, hidden_size: int, teacher_sha: str, data_sha: str,
    protocol: Protocol = PRESETS["hskd"],
):  # fmt: skip
    """`target`'s store writer for `num_examples` examples tokenized to `max_len` tokens."""
    cell = target.cell
    tokens = cell.num_tokens(max_len)
    magnitude = cell.width.kind == "per_example"
    return HSKStoreWriter(
        target.path,
        num_examples=num_examples,
        cell=str(cell),
        split="train",
        student_layers=cell.student_layers(target.student_layers),
        teacher_layers=cell.teacher_layers(target.student_layers),
        num_tokens=tokens,
        hidden_size=hidden_size,
        max_seq_length=max_len,
        width_layout="magnitude" if magnitude else "dense",
        kept_dims=None if magnitude else torch.tensor(cell.width.kept_dims(hidden_size)),
        kept_entries=kept_values_per_layer(cell, tokens, hidden_size) if magnitude else None,
        teacher_sha256=teacher_sha,
        data_sha256=data_sha,
        extra_metadata={"width_seed": str(WIDTH_SEED), **protocol.store_metadata()},
        per_layer_tokens=per_layer_tokens(cell, protocol),
    )


def per_layer_tokens(cell: Cell, protocol: Protocol) -> bool:
    """Whether a cell's store holds one token set per distilled layer (attention ranking per mapped layer)."""
    return protocol.per_layer_tokens and cell.length.needs_attention


def extract(
    teacher_dir: str,
    train_path: str,
    targets: list[StoreTarget],
    logits_path: str,
    manifest_path: str,
    threads: int,
    precision: str = "auto",
    protocol: Protocol = PRESETS["hskd"],
) -> dict:
    """Run the teacher once over the training split; stream every target's store and the logits.

    With padding in the HSK loss (`protocol.pads_to_max`) the teacher sees every batch padded to
    max_seq_length, so the stores hold its real hidden states at padding positions (not zeros)."""
    device = setup_runtime(threads, seed=0, precision=precision)
    attentions = any(target.cell.length.needs_attention for target in targets)
    model = load_teacher(teacher_dir, device, attentions=attentions, token_score=protocol.token_score)
    sep_token_id = load_tokenizer(teacher_dir).sep_token_id
    hidden_size = model.config.hidden_size
    train = TokenizedSplit.load(train_path)
    teacher_sha, data_sha = teacher_fingerprint(teacher_dir), file_sha256(train_path)
    logits = torch.empty(len(train), model.config.num_labels)
    started, passes = time.perf_counter(), 0
    written = unique_targets(targets)
    protocols = {key: protocol.for_cell(target.joint) for key, target in written.items()}  # joint cells' ranking
    real = {key: torch.zeros(len(train)) for key in written}
    pad_to = train.max_seq_length if protocol.pads_to_max else None
    with ExitStack() as stack:  # every store is renamed into place only if the whole pass succeeds
        shape = (len(train), train.max_seq_length, hidden_size)
        writers = {
            key: stack.enter_context(store_writer(target, *shape, teacher_sha, data_sha, protocols[key]))
            for key, target in written.items()
        }
        for start in tqdm(range(0, len(train), EXTRACT_BATCH_SIZE), desc="extract", mininterval=10):
            index = torch.arange(start, min(start + EXTRACT_BATCH_SIZE, len(train)))
            batch = to_device(train.batch(index, pad_to), device)
            result = teacher_pass(model, batch, train.max_seq_length, attentions, protocol.token_score)
            passes += 1
            logits[index] = result.logits.cpu()
            lengths = result.attention_mask.sum(1)
            for key, writer in writers.items():
                target = written[key]
                hsk = compress_pass(target.cell, result, sep_token_id, target.student_layers, index, protocols[key])
                writer.write(start, hsk)
                real[key][index] = real_fraction(hsk.keep_mask, hsk.token_index, lengths, len(hsk.student_layers),
                                                 target.student_layers + 1).cpu()  # fmt: skip
    for target in targets:  # a student whose store equals another's gets a hard link to it, not a copy
        if target.path != written[target.content_key].path:
            link_atomic(written[target.content_key].path, target.path)
    metadata = {"teacher_sha256": teacher_sha, "data_sha256": data_sha, "split": "train"}
    save_logits(logits_path, logits, metadata)
    manifest = {
        "split": "train",
        "num_examples": len(train),
        "teacher_forward_passes": passes,
        "batches": -(-len(train) // EXTRACT_BATCH_SIZE),
        "teacher_passes_per_split": passes / -(-len(train) // EXTRACT_BATCH_SIZE),
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),  # this process's high-water mark, stores included
        "precision": precision,
        "protocol": protocol.as_dict(),
        "stores": [
            {
                **manifest_row(target, writers[target.content_key], len(train), hidden_size, train.max_seq_length,
                               protocols[target.content_key]),  # fmt: skip
                # magnitude_batch: the full width stored (its mask is drawn per training batch; runs report it)
                "hsk_fraction_real": round(float(real[target.content_key].mean()), 6),
                "same_file_as": None if target == written[target.content_key] else written[target.content_key].path,
            }
            for target in targets
        ],
    }
    manifest["bytes_total"] = sum(row["bytes"] for row in manifest["stores"])
    manifest["bytes_on_disk"] = sum(row["bytes"] for row in manifest["stores"] if row["same_file_as"] is None)
    write_json_atomic(manifest, manifest_path)
    return manifest


def manifest_row(
    target: StoreTarget, writer, num_examples: int, hidden_size: int, max_len: int,
    protocol: Protocol = PRESETS["hskd"],
) -> dict:  # fmt: skip
    cell = target.cell
    kept_values = round(
        cell.hsk_fraction(target.student_layers, max_len, hidden_size=hidden_size)
        * (target.student_layers + 1)
        * max_len
        * hidden_size
    )
    return {
        "student": target.student,
        "cell": str(cell),
        "hsk_fraction": cell.hsk_fraction(target.student_layers, max_len, hidden_size=hidden_size),
        "path": target.path,
        "bytes": writer.bytes_per_example * num_examples,
        "bytes_per_example": writer.bytes_per_example,
        "expected_bytes_per_example": store_bytes_per_example(cell, target.student_layers, hidden_size, max_len,
                                                              protocol.per_layer_tokens),  # fmt: skip
        "kept_values_per_example": kept_values,
        "bytes_over_fp16_kept": writer.bytes_per_example / (2 * kept_values),
    }
