"""The training loop's wiring, checked against what each piece must receive: the teacher's logits in
stage 2, the run's learning rate, the prediction-only epochs, the held-out split, the student layer and
real tokens in stage 1, fingerprints before any training."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from types import SimpleNamespace

import pytest
import torch
from transformers import BertConfig

from hskd.hsk.compression import HSKBatch
from hskd.hsk.extract import StoreTarget, extract
from hskd.hsk.store import StoreMismatchError, load_logits, save_logits
from hskd.models.data import TokenizedSplit
from hskd.models.pretrained import pretrained_student_from_config
from hskd.planning.cells import parse_cell
from hskd.planning.config import StageConfig
from hskd.planning.protocol import PRESETS
from hskd.training import distill
from hskd.training.distill import RunInputs, RunSettings, stage1_loss

STAGE = StageConfig(epochs=1, lr=1e-3, batch_size=16, warmup_ratio=0.0, weight_decay=0.0,
                    temperature=1.0, eval_every=100, schedule="constant")
FULL = "depth=all-top2/length=all/width=all"
NONE = "depth=none/length=all/width=all"


@pytest.fixture(scope="module")
def setup(tiny_task, tmp_path_factory):
    out = tmp_path_factory.mktemp("wiring")
    store = str(out / "full.safetensors")
    extract(tiny_task["teacher"], tiny_task["train"], [StoreTarget("s", 2, parse_cell(FULL), store)],
            str(out / "logits.safetensors"), str(out / "manifest.json"), threads=1)  # fmt: skip
    config = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32)  # fmt: skip
    pretrained_student_from_config(config, 2, 32, seed=0).save(out / "student")
    return {"store": store, "logits": str(out / "logits.safetensors"), "student": str(out / "student"), "out": out}


def run(tiny_task, setup, cell: str, name: str, **changes) -> dict:
    settings = RunSettings(task="SST-2", student="s", cell=cell, lr=1e-3, seed=1, stage1=STAGE, stage2=STAGE,
                           width_loss="paper", freeze_word_embeddings=True, group_by_length=True, threads=1,
                           kd_mode="none" if cell == NONE else "cached")  # fmt: skip
    inputs = RunInputs(setup["student"], tiny_task["teacher"], tiny_task["train"], tiny_task["heldout"],
                       tiny_task["dev"], changes.pop("logits", setup["logits"]), setup["store"])  # fmt: skip
    out = setup["out"] / name
    tracking = {key: changes.pop(key) for key in ("tracking", "log_every") if key in changes}
    distill.run(replace(settings, **changes), inputs, str(out), **tracking)
    return json.loads(out.read_text())


def test_stage2_distils_the_cached_teacher_logits(tiny_task, setup, monkeypatch):
    teacher_logits, seen = load_logits(setup["logits"]), []
    real = distill.prediction_kd_loss
    monkeypatch.setattr(distill, "prediction_kd_loss",
                        lambda s, t, temperature, **k: seen.append(t) or real(s, t, temperature, **k))  # fmt: skip
    run(tiny_task, setup, NONE, "teacher_logits.json", stage2=replace(STAGE, epochs=2))
    targets = torch.cat(seen)
    assert len(targets) == len(teacher_logits) * 2  # two epochs of the prediction-only stage
    # every target row is a row of the teacher's logits (not the student's own, not uniform)
    matches = (targets[:, None, :] == teacher_logits[None]).all(-1)
    assert matches.any(1).all()


def test_the_student_learns_what_the_teacher_logits_say(tiny_task, setup):
    # two made-up teachers, confident in one class for every example: stage 2 must carry each student
    # to always predicting that class, so their dev accuracies add up to 1
    real_logits = load_logits(setup["logits"])
    results = {}
    for name, row in (("ones", [-5.0, 5.0]), ("zeros", [5.0, -5.0])):
        path = str(setup["out"] / f"{name}_logits.safetensors")
        save_logits(path, torch.tensor(row).expand_as(real_logits).contiguous(), _metadata(setup["logits"]))
        results[name] = run(tiny_task, setup, NONE, f"{name}.json", logits=path)
    assert results["ones"]["dev_distinct_predictions"] == results["zeros"]["dev_distinct_predictions"] == 1
    assert results["ones"]["dev_final"] + results["zeros"]["dev_final"] == pytest.approx(1.0)
    assert results["ones"]["dev_final"] != pytest.approx(0.5)  # the dev labels are not balanced exactly


def _metadata(path: str) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(path, "pt") as handle:
        return {key: value for key, value in handle.metadata().items() if key != "format_version"}


def test_prediction_only_trains_its_one_stage_as_the_settings_give_it(tiny_task, setup):
    # the planner puts the prediction-only stage (StudyConfig.prediction_only_stage) into settings.stage2
    examples = len(TokenizedSplit.load(tiny_task["train"]))
    metrics = run(tiny_task, setup, NONE, "epochs.json", stage1=replace(STAGE, epochs=2),
                  stage2=replace(STAGE, epochs=3, batch_size=8))  # fmt: skip
    assert metrics["stage1_steps"] == 0 and metrics["stage2_steps"] == 3 * -(-examples // 8)


def test_each_stage_gets_its_learning_rate_and_stage2_the_runs(tiny_task, setup, monkeypatch):
    lrs, real_fit = [], distill.fit
    monkeypatch.setattr(distill, "fit", lambda model, split, optimisation, *a, **k: lrs.append(optimisation.lr)
                        or real_fit(model, split, optimisation, *a, **k))  # fmt: skip
    run(tiny_task, setup, FULL, "lr.json", lr=7e-4, stage1=replace(STAGE, lr=3e-4), stage2=replace(STAGE, lr=9e-4))
    assert lrs == [3e-4, 7e-4]


@pytest.mark.parametrize("optimizer", ["adamw", "bertadam"])
def test_both_stages_use_the_protocols_optimizer(tiny_task, setup, monkeypatch, optimizer):
    kinds, real_fit = [], distill.fit
    monkeypatch.setattr(distill, "fit", lambda model, split, optimisation, *a, **k: kinds.append(
        optimisation.optimizer) or real_fit(model, split, optimisation, *a, **k))  # fmt: skip
    protocol = {**PRESETS["hskd"].as_dict(), "optimizer": optimizer}
    run(tiny_task, setup, FULL, f"{optimizer}.json", protocol=protocol)
    assert kinds == [optimizer, optimizer]


@pytest.mark.parametrize(("protocol", "expected"), [("hskd", (3, "dropout")), ("paper", (1, "relu"))])
def test_the_protocols_projection_and_head_reach_the_trained_student(tiny_task, setup, monkeypatch, protocol,
                                                                     expected):  # fmt: skip
    seen, real_fit = [], distill.fit
    monkeypatch.setattr(distill, "fit", lambda model, *a, **k: seen.append((len(model.projection), model.head))
                        or real_fit(model, *a, **k))  # fmt: skip
    choices = {**PRESETS["hskd"].as_dict(), "projection": PRESETS[protocol].projection,
               "student_head": PRESETS[protocol].student_head}  # fmt: skip
    run(tiny_task, setup, FULL, f"student-{protocol}.json", protocol=choices)
    assert seen == [expected, expected]


@pytest.mark.parametrize("freeze", [True, False])
def test_word_embeddings_train_only_when_not_frozen(tiny_task, setup, monkeypatch, freeze):
    # the paper's code optimises every parameter (freeze_word_embeddings: false in paper.yaml)
    changed, real_fit = [], distill.fit

    def spy(model, *args, **kwargs):
        before = model.word_embedding_weight().detach().clone()
        result = real_fit(model, *args, **kwargs)
        changed.append(not torch.equal(before, model.word_embedding_weight().detach()))
        return result

    monkeypatch.setattr(distill, "fit", spy)
    run(tiny_task, setup, FULL, f"embeddings-{freeze}.json", freeze_word_embeddings=freeze)
    assert changed == [not freeze, not freeze]


def test_heldout_final_is_measured_on_the_heldout_split(tiny_task, setup, monkeypatch):
    values = {tiny_task["heldout"]: 0.25, tiny_task["dev"]: 0.75}
    monkeypatch.setattr(distill, "_evaluate_student", lambda student, split, task, device: values[split.path])
    metrics = run(tiny_task, setup, NONE, "heldout.json")
    assert metrics["heldout_final"] == 0.25 and metrics["dev_final"] == 0.75


def test_logits_of_another_teacher_are_refused_before_training(tiny_task, setup, monkeypatch):
    other = str(setup["out"] / "other_logits.safetensors")
    save_logits(other, load_logits(setup["logits"]), {"teacher_sha256": "0" * 64, "data_sha256": "0" * 64,
                                                      "split": "train"})  # fmt: skip
    monkeypatch.setattr(distill, "fit", lambda *a, **k: pytest.fail("trained on refused inputs"))
    with pytest.raises(StoreMismatchError, match="teacher sha256"):
        run(tiny_task, setup, NONE, "refused.json", logits=other)


class LayerStudent:
    """Hidden state l is the constant l on real tokens and 100 on padding; projections are the identity."""

    def __init__(self, lengths: torch.Tensor, width: int, layers: int):
        self.lengths, self.width, self.layers = lengths, width, layers

    def __call__(self, input_ids, attention_mask, token_type_ids):
        batch, length = input_ids.shape
        padding = (torch.arange(length)[None, :] >= self.lengths[:, None])[..., None]
        states = [torch.full((batch, length, self.width), float(layer)).masked_fill(padding, 100.0)
                  for layer in range(self.layers + 1)]  # fmt: skip
        return SimpleNamespace(hidden_states=tuple(states))

    def project(self, layer, hidden):
        return hidden


@pytest.mark.parametrize("mode", ["paper", "masked"])
def test_stage1_compares_the_mapped_student_layer_on_real_tokens_only(mode):
    lengths = torch.tensor([3, 2])
    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long), "token_type_ids": torch.zeros(2, 3, dtype=torch.long),
             "attention_mask": (torch.arange(3)[None, :] < lengths[:, None]).long()}  # fmt: skip
    # student layer 2 against a zero target, all 3 positions selected (example 2's third is padding)
    hsk = HSKBatch(student_layers=[2], teacher_layers=[4], token_index=torch.tensor([[0, 1, 2], [0, 1, 2]]),
                   target=torch.zeros(2, 1, 3, 4), keep_mask=torch.ones(1, 1, 1, 4, dtype=torch.bool))  # fmt: skip
    loss = stage1_loss(LayerStudent(lengths, 4, 2), batch, hsk, mode)
    # (2 - 0)^2 on every real value: 4; layer 1 would give 1, the padded value (100) would give > 1000
    assert loss.item() == pytest.approx(4.0)
    assert not math.isnan(loss.item())


def test_a_cached_run_loads_no_teacher_by_any_import_path(tiny_task, setup, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    real = AutoModelForSequenceClassification.from_pretrained.__func__
    teacher = str(tiny_task["teacher"])

    def guarded(cls, path, *args, **kwargs):
        assert str(path) != teacher, "the teacher was loaded in cached mode"
        return real(cls, path, *args, **kwargs)

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", classmethod(guarded))
    assert run(tiny_task, setup, FULL, "cached.json")["teacher_loaded"] is False
    with pytest.raises(AssertionError, match="teacher was loaded"):
        run(tiny_task, setup, FULL, "online.json", kd_mode="online")  # the guard itself works


def test_a_store_of_another_teacher_is_refused_before_training(tiny_task, setup, monkeypatch):
    import shutil

    from safetensors.torch import load_file, save_file

    other = setup["out"] / "other_teacher"
    shutil.copytree(tiny_task["teacher"], other)
    weights = load_file(other / "model.safetensors")
    save_file({name: tensor + 1e-3 for name, tensor in weights.items()}, other / "model.safetensors")
    store = str(setup["out"] / "other_full.safetensors")
    extract(str(other), tiny_task["train"], [StoreTarget("s", 2, parse_cell(FULL), store)],
            str(setup["out"] / "other_logits.st"), str(setup["out"] / "other_manifest.json"), threads=1)  # fmt: skip
    inputs = dict(setup, store=store)
    monkeypatch.setattr(distill, "fit", lambda *a, **k: pytest.fail("trained on a refused store"))
    with pytest.raises(StoreMismatchError, match="teacher sha256"):
        run(tiny_task, inputs, FULL, "other_store.json")



@pytest.mark.parametrize(("argv", "threads"), [(["--threads", "3"], 3), ([], 1)], ids=["--threads", "default"])
def test_hskd_distill_takes_its_threads_from_the_command_line(tmp_path, monkeypatch, argv, threads):
    # the workflow passes `--threads {threads}`, not a settings key: a thread count must rerun no run
    from hskd.cli import main

    seen = []

    def fake_run(settings, inputs, out, checkpoint_minutes, tracking, log_every):
        seen.append(settings)
        return {"cell": settings.cell, "seed": settings.seed, "metric": "accuracy", "dev_final": 0.5}

    monkeypatch.setattr(distill, "run", fake_run)
    settings = {"task": "SST-2", "student": "s", "cell": NONE, "lr": 1e-3, "seed": 0, "stage1": asdict(STAGE),
                "stage2": asdict(STAGE), "width_loss": "paper", "freeze_word_embeddings": True,
                "group_by_length": True, "kd_mode": "online"}  # fmt: skip
    paths = [item for name in ("student-dir", "teacher-dir", "train", "heldout", "dev", "logits", "out")
             for item in (f"--{name}", str(tmp_path / name))]  # fmt: skip
    main(["distill", "--settings", json.dumps(settings), *paths, *argv])
    assert [s.threads for s in seen] == [threads]


def test_stage2_measures_dev_every_eval_every_steps_and_at_the_end(tiny_task, setup, monkeypatch):
    assert len(TokenizedSplit.load(tiny_task["train"])) == 80  # 5 batches of 16 per epoch
    # prediction-only, 2 epochs = 10 stage-2 steps; eval_every=4 measures dev after steps 4, 8 and 10 (the end)
    dev_values, calls = iter([0.25, 0.75, 0.5]), []

    def fake_evaluate(student, split, task, device):
        calls.append(split.path)
        return next(dev_values) if split.path == tiny_task["dev"] else 0.0

    monkeypatch.setattr(distill, "_evaluate_student", fake_evaluate)
    metrics = run(tiny_task, setup, NONE, "eval_every.json", stage2=replace(STAGE, epochs=2, eval_every=4))
    assert calls == [tiny_task["dev"]] * 3 + [tiny_task["heldout"]]
    assert (metrics["dev_best"], metrics["dev_final"]) == (0.75, 0.5)


def test_a_prediction_only_run_records_what_results_read(tiny_task, setup):
    metrics = run(tiny_task, setup, NONE, "record.json", lr=7e-4)
    # results.read_run checks lr against the path's lr=... segment; depth=none has no stage 1 and no teacher
    assert (metrics["lr"], metrics["stage1_lr"], metrics["kd_mode"]) == (7e-4, None, "none")
    assert (metrics["teacher_loaded"], metrics["dev_after_stage1"], metrics["hsk_fraction_real"]) == (False, None, 0.0)
    assert metrics["peak_rss_mb"] > 0 and "torch" in metrics["versions"]
