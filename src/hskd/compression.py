"""HSK compression along depth, length and width: pure tensor functions, no I/O.

(Stub: being written.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class HSKBatch:
    """A batch of compressed teacher HSK, dense and zero-filled, ready for `hsk_loss`.

    L = number of distilled layers, K = kept tokens per example, D = teacher hidden width.
    """

    student_layers: list[int]  # student hidden-state indices (0 = embeddings), length L
    teacher_layers: list[int]  # teacher hidden-state indices (0 = embeddings), length L
    token_index: torch.Tensor  # LongTensor [B, K], selected positions, sorted ascending
    target: torch.Tensor  # FloatTensor [B, L, K, D], teacher hidden states, 0 where width-dropped
    keep_mask: torch.Tensor  # BoolTensor broadcastable to [B, L, K, D]: True where the value was kept
