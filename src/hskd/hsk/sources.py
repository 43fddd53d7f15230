"""A run's HSK targets: read from a store, or computed from the teacher now with extraction's code."""

from __future__ import annotations

import torch

from hskd.hsk.compression import HSKBatch, compress_batch
from hskd.hsk.store import HSKStore, StoreMismatchError
from hskd.models.hub import load_tokenizer
from hskd.models.teacher import TeacherPass, attention_implementation, load_teacher, teacher_pass
from hskd.planning.cells import Cell
from hskd.planning.protocol import PRESETS, Protocol
from hskd.planning.strategies import WIDTH_SEED


def compress_pass(
    cell: Cell, result: TeacherPass, sep_token_id: int, student_layers: int, example_ids: torch.Tensor,
    protocol: Protocol = PRESETS["hskd"],
) -> HSKBatch:  # fmt: skip
    """A cell's HSK from one teacher pass over the examples `example_ids` (indices in the split), exactly as
    its store holds it (online runs call this too)."""
    return compress_batch(
        cell, result.hidden_states, result.cls_attention, result.input_ids, result.attention_mask, sep_token_id,
        student_layers, width_seed=WIDTH_SEED, sep_rank=protocol.sep_rank,
        layer_attention=result.layer_attention if protocol.per_layer_tokens else None,
        example_ids=example_ids,
        ranking_layers=cell.ranking_layers(student_layers, len(result.hidden_states) - 1, protocol.token_ranking),
    )  # fmt: skip


class CachedHSK:
    """HSK targets of a batch read from a store; the teacher is never loaded."""

    def __init__(self, store: HSKStore, cell: Cell | None = None, protocol: Protocol = PRESETS["hskd"]):
        """Refuses a store of another cell (when `cell` is given) or built under other protocol choices."""
        expected = protocol.store_metadata()
        if cell is not None:
            expected["cell"] = str(cell)
        for key, value in expected.items():
            found = store.metadata.get(key, PRESETS["hskd"].as_dict().get(key))
            if found != value:
                raise StoreMismatchError(f"{store.path}: store has {key} {found!r} but this run needs {value!r}; "
                                         "re-run extraction")  # fmt: skip
        self.store = store

    def __call__(self, index: torch.Tensor, batch: dict[str, torch.Tensor]) -> HSKBatch:
        return self.store.batch(index)


class OnlineHSK:
    """HSK targets of a batch computed by running the teacher now, with the same compression code."""

    def __init__(
        self, teacher, sep_token_id: int, cell: Cell, student_layers: int, max_seq_length: int,
        protocol: Protocol = PRESETS["hskd"],
    ):  # fmt: skip
        """Sets `teacher`'s attention implementation to the fastest one that gives what `cell` needs, and its mode:
        train (dropout on, the paper's) under `protocol.teacher_mode` "train", else eval."""
        teacher.set_attn_implementation(attention_implementation(cell.length.needs_attention, protocol.token_score))
        teacher.train(protocol.teacher_mode == "train")
        self.teacher, self.sep_token_id = teacher, sep_token_id
        self.cell, self.student_layers, self.max_seq_length = cell, student_layers, max_seq_length
        self.protocol = protocol

    @classmethod
    def load(
        cls, teacher_dir: str, cell: Cell, student_layers: int, max_seq_length: int, device,
        protocol: Protocol = PRESETS["hskd"],
    ) -> OnlineHSK:  # fmt: skip
        teacher = load_teacher(teacher_dir, device)
        sep = load_tokenizer(teacher_dir).sep_token_id
        return cls(teacher, sep, cell, student_layers, max_seq_length, protocol)

    def __call__(self, index: torch.Tensor, batch: dict[str, torch.Tensor]) -> HSKBatch:
        needs_attention = self.cell.length.needs_attention
        result = teacher_pass(self.teacher, batch, self.max_seq_length, needs_attention, self.protocol.token_score)
        return compress_pass(self.cell, result, self.sep_token_id, self.student_layers, index, self.protocol)
