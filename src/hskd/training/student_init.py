"""Building a task's untrained student: a truncated pretrained model or a pruned fine-tuned teacher."""

from __future__ import annotations

from itertools import islice

from transformers import BertConfig

from hskd.common import glue
from hskd.models.data import TokenizedSplit
from hskd.models.pretrained import init_pretrained_student, pretrained_student_from_config
from hskd.models.runtime import setup_runtime, to_device
from hskd.models.teacher import load_teacher
from hskd.planning.config import StudentConfig
from hskd.training.taylor_pruning import init_pruned_student


def init_student(
    task: str, student: StudentConfig, teacher_dir: str, train_path: str, out_dir: str, seed: int, threads: int
) -> None:
    """Build the student `student` for `task` and save it (with its projection) to `out_dir`."""
    device = setup_runtime(threads, seed)
    num_labels = glue.get_task(task).num_labels
    teacher = load_teacher(teacher_dir, device)
    teacher_hidden = teacher.config.hidden_size
    if student.family == "pruned":
        train = TokenizedSplit.load(train_path)
        order = train.batch_order(32, seed, shuffle=True, group_by_length=False)
        batches = (to_device(train.batch(index), device) for index in islice(order, student.importance_batches))
        model = init_pruned_student(
            teacher, batches, student.layers, student.heads, student.ffn, student.emb_rank, num_labels
        )
    elif student.random_init:
        shape = student.random_init
        config = BertConfig(
            vocab_size=teacher.config.vocab_size, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads, intermediate_size=shape.ffn, num_labels=num_labels,
        )  # fmt: skip
        model = pretrained_student_from_config(config, num_labels, teacher_hidden, seed)
    else:
        model = init_pretrained_student(student.model, student.layers, num_labels, teacher_hidden, seed)
    model.save(out_dir)
