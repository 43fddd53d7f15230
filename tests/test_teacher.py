"""Teacher fine-tuning on the tiny task: what `finetune` saves and reports, and that it is seeded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hskd.models.data import TokenizedSplit
from hskd.models.teacher import load_teacher, teacher_fingerprint
from hskd.planning.config import Shape, TeacherConfig
from hskd.training.finetune import finetune
from hskd.training.loop import evaluate


@pytest.fixture(scope="module")
def tuned(tiny_task, tmp_path_factory):
    """Two fine-tunings of the same random 2-layer teacher (1 epoch, batch 16) into separate folders."""
    config = TeacherConfig(model=tiny_task["teacher"], random_init=Shape(layers=2, hidden=32, heads=2, ffn=64),
                           epochs=1, lr=1e-3, batch_size=16, warmup_ratio=0.0, weight_decay=0.0, seed=3,
                           hidden_size=None, num_layers=None)  # fmt: skip
    folders = [tmp_path_factory.mktemp(f"teacher{i}") for i in range(2)]
    results = [finetune("SST-2", config, tiny_task["train"], tiny_task["dev"], str(out), threads=1,
                        group_by_length=False) for out in folders]  # fmt: skip
    return folders, results


def test_finetune_reports_the_training_it_did(tiny_task, tuned):
    folders, results = tuned
    result = results[0]
    # the tiny task: 96 smoke examples - 16 held out = 80 train, 32 dev; 1 epoch of batches of 16 = 5 steps
    assert (result["train_examples"], result["dev_examples"], result["steps"]) == (80, 32, 5)
    assert (result["task"], result["metric"], result["device"]) == ("SST-2", "accuracy", "cpu")
    assert result["dev"] == result["dev_metrics"]["accuracy"]
    facts = {split: TokenizedSplit.load(tiny_task[split]).facts for split in ("train", "dev")}
    assert result["data"] == facts and "torch" in result["versions"]
    assert json.loads((folders[0] / "metrics.json").read_text()) == result
    assert not (folders[0] / "resume.pt").exists()  # no checkpointing unless asked


def test_the_saved_teacher_scores_what_finetune_reported(tiny_task, tuned):
    folders, results = tuned
    model = load_teacher(folders[0], torch.device("cpu"))
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 32  # random_init's shape
    dev = TokenizedSplit.load(tiny_task["dev"])
    inputs = ("input_ids", "attention_mask", "token_type_ids")
    score = evaluate(lambda b: model(**{k: b[k] for k in inputs}).logits, dev, "SST-2", torch.device("cpu"))
    assert score["accuracy"] == pytest.approx(results[0]["dev"])
    assert (Path(folders[0]) / "tokenizer_config.json").exists()  # hskd distill loads the tokenizer from here


def test_finetune_is_seeded(tuned):
    folders, results = tuned
    assert teacher_fingerprint(folders[0]) == teacher_fingerprint(folders[1])
    assert results[0]["train_loss"] == results[1]["train_loss"]


def test_eval_every_keeps_the_best_dev_checkpoint_and_the_last_step_is_otherwise_kept(tiny_task, tuned, tmp_path,
                                                                                      monkeypatch):  # fmt: skip
    from dataclasses import replace

    from hskd.training import finetune as finetune_module

    config = replace(json_config(tuned), eval_every=1)
    real_metrics = finetune_module.compute_metrics

    def scripted(dev_values):  # dev after steps 1-5 as given, then the real metric of the saved weights
        pending = list(dev_values)

        def compute_metrics(task, predictions, labels):
            return {"accuracy": pending.pop(0)} if pending else real_metrics(task, predictions, labels)

        return compute_metrics

    monkeypatch.setattr(finetune_module, "compute_metrics", scripted([0.1, 0.9, 0.2, 0.9, 0.4]))
    best = finetune("SST-2", config, tiny_task["train"], tiny_task["dev"], str(tmp_path / "best"), 1, False)
    monkeypatch.setattr(finetune_module, "compute_metrics", scripted([0.1, 0.2, 0.3, 0.4, 0.5]))
    last = finetune("SST-2", config, tiny_task["train"], tiny_task["dev"], str(tmp_path / "last"), 1, False)
    folders, results = tuned
    # step 4 ties step 2: a later checkpoint must be strictly better
    assert (best["selected_step"], last["selected_step"], results[0]["selected_step"]) == (2, 5, 5)
    # evaluating during training changes no training step: the last checkpoint is the unevaluated run's
    assert teacher_fingerprint(tmp_path / "last") == teacher_fingerprint(folders[0])
    assert teacher_fingerprint(tmp_path / "best") != teacher_fingerprint(folders[0])


def json_config(tuned) -> TeacherConfig:
    folders, results = tuned
    return TeacherConfig(**{**results[0]["config"], "random_init": Shape(**results[0]["config"]["random_init"])})


def test_max_grad_norm_clips_every_update(tiny_task, tuned, tmp_path):
    from dataclasses import replace

    folders, _ = tuned
    # Adam's update is invariant to the gradient's scale until the gradient nears eps: clipped to 1e-12, the
    # teacher hardly moves from its random start, and so ends apart from the unclipped run
    clipped = replace(json_config(tuned), max_grad_norm=1e-12)
    result = finetune("SST-2", clipped, tiny_task["train"], tiny_task["dev"], str(tmp_path / "clipped"), 1, False)
    assert result["steps"] == 5 and teacher_fingerprint(tmp_path / "clipped") != teacher_fingerprint(folders[0])
    once = replace(json_config(tuned), max_grad_norm=1e6)  # never reached: the same as no clipping
    finetune("SST-2", once, tiny_task["train"], tiny_task["dev"], str(tmp_path / "unclipped"), 1, False)
    assert teacher_fingerprint(tmp_path / "unclipped") == teacher_fingerprint(folders[0])
