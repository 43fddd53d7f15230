"""GLUE evaluation of a saved teacher (HF folder) or student (hskd folder) on a tokenized split."""

from __future__ import annotations

from pathlib import Path

from hskd.models.data import TokenizedSplit
from hskd.models.runtime import setup_runtime
from hskd.models.students import load_student
from hskd.models.teacher import load_teacher
from hskd.training.loop import evaluate

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
