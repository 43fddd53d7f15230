"""GLUE evaluation of a saved teacher (HF folder) or student (hskd folder) on a tokenized split."""

from __future__ import annotations

from pathlib import Path

from hskd.data import TokenizedSplit
from hskd.students import load_student
from hskd.teacher import load_teacher
from hskd.training import evaluate, setup_runtime

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def evaluate_checkpoint(
    model_dir: str, task: str, split_path: str, threads: int = 1, precision: str = "auto"
) -> dict[str, float]:
    device = setup_runtime(threads, seed=0, precision=precision)
    split = TokenizedSplit.load(split_path)
    if (Path(model_dir) / "hskd_student.json").exists():
        model = load_student(model_dir).to(device).eval()
    else:
        model = load_teacher(model_dir, device)
    return evaluate(lambda batch: model(**{k: batch[k] for k in MODEL_INPUTS}).logits, split, task, device)
