"""Extraction and distillation on a tiny random teacher: one teacher pass per batch, cached == online,
the teacher is not loaded in cached mode, and a seed fixes every result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import BertConfig

from hskd.hsk import extract as extract_module
from hskd.hsk import sources
from hskd.hsk.extract import StoreTarget, extract
from hskd.hsk.sources import CachedHSK, OnlineHSK
from hskd.hsk.store import HSKStore, StoreMismatchError
from hskd.models.data import TokenizedSplit
from hskd.models.pretrained import pretrained_student_from_config
from hskd.models.teacher import teacher_fingerprint
from hskd.planning.cells import parse_cell
from hskd.planning.config import StageConfig
from hskd.training import distill
from hskd.training.distill import RunInputs, RunSettings, stage1_loss

CELLS = [
    "depth=all-top2/length=all/width=all",
    "depth=top2-1/length=attention_nosep-3/width=magnitude-0.2",
    "depth=all-top2/length=left-4/width=random-0.5",
    "depth=top2-2/length=cls-1/width=uniform-0.25",
    "depth=top2-1/length=random-3/width=all",  # per-example seeded picks: the same whatever the batch
]
STAGE = StageConfig(epochs=1, lr=1e-3, batch_size=16, warmup_ratio=0.0, weight_decay=0.0,
                    temperature=1.0, eval_every=3, schedule="constant")


@pytest.fixture(scope="module")
def extracted(tiny_task, tmp_path_factory):
    out = tmp_path_factory.mktemp("hsk")
    targets = [StoreTarget("s", 2, parse_cell(cell), str(out / f"{i}.safetensors")) for i, cell in enumerate(CELLS)]
    manifest = extract(tiny_task["teacher"], tiny_task["train"], targets, str(out / "logits.safetensors"),
                       str(out / "manifest.json"), threads=1)
    return {"targets": targets, "manifest": manifest, "logits": str(out / "logits.safetensors"), "out": out}


def test_one_teacher_forward_per_batch_for_the_whole_grid(tiny_task, tmp_path, monkeypatch):
    calls = []
    original = extract_module.teacher_pass
    monkeypatch.setattr(extract_module, "teacher_pass", lambda *a, **k: calls.append(1) or original(*a, **k))
    targets = [StoreTarget("s", 2, parse_cell(cell), str(tmp_path / f"{i}.st")) for i, cell in enumerate(CELLS)]
    manifest = extract(tiny_task["teacher"], tiny_task["train"], targets, str(tmp_path / "l.st"),
                       str(tmp_path / "m.json"), threads=1)
    batches = -(-len(TokenizedSplit.load(tiny_task["train"])) // extract_module.EXTRACT_BATCH_SIZE)
    assert len(calls) == batches == manifest["teacher_forward_passes"]
    assert manifest["teacher_passes_per_split"] == 1.0
    for row in manifest["stores"]:
        assert row["bytes_per_example"] == row["expected_bytes_per_example"]


@pytest.mark.parametrize("mode", ["paper", "masked"])
@pytest.mark.parametrize("position", range(len(CELLS)))
def test_cached_and_online_give_the_same_loss(tiny_task, extracted, position, mode):
    target = extracted["targets"][position]
    train = TokenizedSplit.load(tiny_task["train"])
    config = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32)
    student = pretrained_student_from_config(config, num_labels=2, teacher_hidden_size=32, seed=0).eval()
    index = torch.tensor([5, 1, 17, 30, 2, 9])
    batch = train.batch(index)
    cached = CachedHSK(HSKStore(target.path))(index, batch)
    online_source = OnlineHSK.load(tiny_task["teacher"], target.cell, 2, train.max_seq_length, torch.device("cpu"))
    online = online_source(index, batch)
    cached_loss = stage1_loss(student, batch, cached, mode)
    online_loss = stage1_loss(student, batch, online, mode)
    assert cached_loss > 0
    torch.testing.assert_close(cached_loss, online_loss, rtol=2e-3, atol=1e-5)


def test_an_online_teacher_in_train_mode_renoises_its_targets_at_every_step(tiny_task):
    # protocol_choices.teacher_mode: the paper's teacher keeps its dropout on while it produces HSK targets
    from dataclasses import replace

    from hskd.planning.protocol import PRESETS

    train = TokenizedSplit.load(tiny_task["train"])
    index = torch.tensor([5, 1, 17, 30])
    batch = train.batch(index)
    cell = parse_cell("depth=all-top2/length=attention-3/width=all")
    targets = {}
    for mode in ("eval", "train"):
        protocol = replace(PRESETS["hskd"], teacher_mode=mode)
        source = OnlineHSK.load(tiny_task["teacher"], cell, 2, train.max_seq_length, torch.device("cpu"), protocol)
        assert source.teacher.training == (mode == "train")
        torch.manual_seed(0)
        targets[mode] = [source(index, batch).target for _ in range(2)]
    torch.testing.assert_close(targets["eval"][0], targets["eval"][1], rtol=0, atol=0)
    assert not torch.equal(targets["train"][0], targets["train"][1])
    assert not torch.equal(targets["train"][0], targets["eval"][0])


def test_store_from_another_teacher_is_refused(extracted):
    with pytest.raises(StoreMismatchError, match="teacher"):
        HSKStore(extracted["targets"][0].path, teacher_sha256="0" * 64)


def _run(tiny_task, extracted, tmp_path, cell_position: int, kd_mode: str, name: str, seed: int = 1,
         checkpoint_minutes: float = 0, precision: str = "auto") -> dict:
    student_dir = tmp_path / "student"
    if not student_dir.exists():
        config = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=32)
        pretrained_student_from_config(config, 2, 32, seed=0).save(student_dir)
    settings = RunSettings(task="SST-2", student="s", cell=CELLS[cell_position], lr=1e-3, seed=seed, stage1=STAGE,
                           stage2=STAGE, width_loss="paper", freeze_word_embeddings=True, group_by_length=True,
                           threads=1, kd_mode=kd_mode, precision=precision)
    inputs = RunInputs(str(student_dir), tiny_task["teacher"], tiny_task["train"],
                       extracted.get("heldout", tiny_task["heldout"]), tiny_task["dev"], extracted["logits"],
                       extracted["targets"][cell_position].path)  # fmt: skip
    distill.run(settings, inputs, str(tmp_path / name), checkpoint_minutes)
    return json.loads((tmp_path / name).read_text())


def test_a_run_without_a_heldout_slice_records_no_heldout_metric(tiny_task, extracted, tmp_path):
    from hskd.common.synthetic import write_synthetic_tsv
    from hskd.models.data import SPLITS, prepare_splits
    from hskd.models.hub import load_tokenizer

    write_synthetic_tsv(tmp_path / "glue", n_train=20, n_dev=4, seed=1)
    empty = {split: str(tmp_path / f"{split}.safetensors") for split in SPLITS}
    prepare_splits("SST-2", str(tmp_path / "glue"), load_tokenizer("minilm-l6"), 16, None, 0, 0, empty)
    with_slice = _run(tiny_task, extracted, tmp_path, 0, "cached", "a.json")
    without = _run(tiny_task, {**extracted, "heldout": empty["heldout"]}, tmp_path, 0, "cached", "b.json")
    assert with_slice["heldout_final"] is not None and without["heldout_final"] is None
    assert without["dev_final"] == with_slice["dev_final"]  # the held-out slice is only ever measured


def test_cached_run_never_loads_the_teacher_and_a_seed_fixes_every_result(tiny_task, extracted, tmp_path,
                                                                          monkeypatch):
    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher was loaded in cached mode")

    monkeypatch.setattr(sources, "load_teacher", no_teacher)
    first = _run(tiny_task, extracted, tmp_path, 1, "cached", "a.json")
    second = _run(tiny_task, extracted, tmp_path, 1, "cached", "b.json")
    assert first["teacher_loaded"] is False and first["kd_mode"] == "cached"
    for key in ("stage1_loss", "stage2_loss", "dev_best", "dev_final", "dev_after_stage1", "heldout_final"):
        assert first[key] == second[key], key
    assert first["stage1_loss"] > 0 and first["stage2_loss"] > 0
    other_seed = _run(tiny_task, extracted, tmp_path, 1, "cached", "c.json", seed=2)
    assert other_seed["stage2_loss"] != first["stage2_loss"]


def test_bf16_runs_are_reproducible_and_really_bf16(tiny_task, extracted, tmp_path):
    first = _run(tiny_task, extracted, tmp_path, 2, "cached", "bf16_a.json", precision="bf16")
    second = _run(tiny_task, extracted, tmp_path, 2, "cached", "bf16_b.json", precision="bf16")
    fp32 = _run(tiny_task, extracted, tmp_path, 2, "cached", "fp32.json", precision="fp32")
    assert first["precision"] == "bf16" and fp32["precision"] == "fp32"
    for key in ("stage1_loss", "stage2_loss", "dev_final", "heldout_final"):
        assert first[key] == second[key], key
    assert first["stage1_loss"] != fp32["stage1_loss"]  # bf16 matrix products really ran


EVERY_STEP = 1e-9  # checkpoint minutes: a save after every step


def test_an_interrupted_run_resumes_where_it_stopped_with_the_same_result(tiny_task, extracted, tmp_path,
                                                                          monkeypatch):
    uninterrupted = _run(tiny_task, extracted, tmp_path, 1, "cached", "a.json")
    real_loss, calls = distill.prediction_kd_loss, []

    def interrupted_at_step_4(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # stage 2 (5 steps) has evaluated dev once, at step 3
            raise RuntimeError("interrupted")
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(distill, "prediction_kd_loss", interrupted_at_step_4)
    with pytest.raises(RuntimeError, match="interrupted"):
        _run(tiny_task, extracted, tmp_path, 1, "cached", "b.json", checkpoint_minutes=EVERY_STEP)
    resume_file = tmp_path / f"b{distill.RESUME_SUFFIX}"
    assert resume_file.exists() and not (tmp_path / "b.json").exists()

    def no_stage1(*args, **kwargs):
        raise AssertionError("stage 1 had finished before the interruption and ran again")

    monkeypatch.setattr(distill, "prediction_kd_loss", real_loss)
    monkeypatch.setattr(distill, "stage1_loss", no_stage1)
    resumed = _run(tiny_task, extracted, tmp_path, 1, "cached", "b.json", checkpoint_minutes=EVERY_STEP)
    assert not resume_file.exists()
    for key in ("stage1_loss", "stage1_steps", "dev_after_stage1", "stage2_loss", "stage2_steps", "dev_best",
                "dev_final", "heldout_final"):
        assert resumed[key] == uninterrupted[key], key


def test_a_saved_state_of_other_settings_is_ignored(tiny_task, extracted, tmp_path, monkeypatch):
    real_loss = distill.prediction_kd_loss

    def interrupted(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(distill, "prediction_kd_loss", interrupted)
    with pytest.raises(RuntimeError):
        _run(tiny_task, extracted, tmp_path, 1, "cached", "c.json", seed=1, checkpoint_minutes=EVERY_STEP)
    assert (tmp_path / f"c{distill.RESUME_SUFFIX}").exists()  # saved during stage 1
    monkeypatch.setattr(distill, "prediction_kd_loss", real_loss)
    other_seed = _run(tiny_task, extracted, tmp_path, 1, "cached", "c.json", seed=2, checkpoint_minutes=EVERY_STEP)
    fresh = _run(tiny_task, extracted, tmp_path, 1, "cached", "d.json", seed=2)
    assert other_seed["stage1_loss"] == fresh["stage1_loss"] and other_seed["dev_final"] == fresh["dev_final"]


def test_online_run_records_the_teacher(tiny_task, extracted, tmp_path):
    metrics = _run(tiny_task, extracted, tmp_path, 0, "online", "online.json")
    assert metrics["teacher_loaded"] is True and metrics["kd_mode"] == "online"
    assert metrics["hsk_fraction"] == 1.0


def test_teacher_fingerprint_is_the_weights_hash(tiny_task):
    assert len(teacher_fingerprint(tiny_task["teacher"])) == 64
    assert Path(tiny_task["teacher"], "model.safetensors").exists()


def test_students_of_the_same_depth_share_one_store_file(tiny_task, tmp_path):
    cell = parse_cell(CELLS[1])
    targets = [StoreTarget(name, 2, cell, str(tmp_path / name / "train.safetensors")) for name in ("a", "b")]
    targets.append(StoreTarget("deeper", 3, cell, str(tmp_path / "deeper" / "train.safetensors")))
    manifest = extract(tiny_task["teacher"], tiny_task["train"], targets, str(tmp_path / "l.st"),
                       str(tmp_path / "m.json"), threads=1)
    a, b, deeper = (Path(t.path).stat() for t in targets)
    assert a.st_ino == b.st_ino != deeper.st_ino  # a hard link, not a copy; another depth is another file
    assert [row["same_file_as"] for row in manifest["stores"]] == [None, targets[0].path, None]
    assert manifest["bytes_on_disk"] == manifest["bytes_total"] - manifest["stores"][1]["bytes"]
    assert HSKStore(targets[1].path).batch(torch.arange(3)).target.equal(HSKStore(targets[0].path).batch(
        torch.arange(3)).target)


def test_a_run_records_the_trivial_baseline_of_its_dev_split(tiny_task, extracted, tmp_path):
    metrics = _run(tiny_task, extracted, tmp_path, 0, "cached", "trivial.json")
    train, dev = (TokenizedSplit.load(tiny_task[split]).labels.tolist() for split in ("train", "dev"))
    majority = max((train.count(c), -c) for c in set(train))[1] * -1
    assert metrics["dev_trivial"] == pytest.approx(dev.count(majority) / len(dev))
    assert metrics["collapsed"] is (metrics["dev_distinct_predictions"] == 1
                                    or metrics["dev_final"] <= metrics["dev_trivial"] + 0.01)
