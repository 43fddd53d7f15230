"""Resuming a training loop from a saved state gives the uninterrupted result, bit for bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hskd.models.data import TokenizedSplit
from hskd.training.loop import Optimisation, fit
from hskd.training.resume import Checkpoint, job_key

EVERY_STEP = 1e-9  # checkpoint minutes: a save after every step
OPTIMISATION = Optimisation(lr=1e-2, weight_decay=0.01, schedule="linear", warmup_ratio=0.2, batch_size=16)


class TinyClassifier(nn.Module):
    """Mean word embedding, dropout (so the random generator matters), linear layer."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, 8)
        self.dropout = nn.Dropout(0.5)
        self.classifier = nn.Linear(8, 2)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.dropout(self.embedding(batch["input_ids"].long())))


def _fit(split: TokenizedSplit, checkpoint: Checkpoint | None, interrupt_at: int | None = None):
    """Two epochs (10 steps) from the same initial weights; `after_step` logs every 3rd step into the carry."""
    torch.manual_seed(0)
    model = TinyClassifier(30522)
    carry: dict[str, list[int]] = {"logged": []}

    def loss_fn(index, batch):
        return nn.functional.cross_entropy(model(batch), batch["labels"])

    def after_step(step: int, total: int) -> float:
        if step == interrupt_at:
            raise RuntimeError("interrupted")
        if step % 3 == 0:
            carry["logged"].append(step)
        return 0.0

    result = fit(model, split, OPTIMISATION, 2, 0, False, torch.device("cpu"), loss_fn, "tiny",
                 after_step=after_step, checkpoint=checkpoint, carry=carry)  # fmt: skip
    return model, result, carry


@pytest.fixture(scope="module")
def train(tiny_task) -> TokenizedSplit:
    return TokenizedSplit.load(tiny_task["train"])


@pytest.fixture(scope="module")
def uninterrupted(train):
    return _fit(train, None)


def test_a_resumed_fit_ends_exactly_where_an_uninterrupted_one_does(train, uninterrupted, tmp_path):
    path = tmp_path / "resume.pt"
    with pytest.raises(RuntimeError, match="interrupted"):
        _fit(train, Checkpoint(path, "key", EVERY_STEP), interrupt_at=7)
    assert torch.load(path, weights_only=True)["training"]["step"] == 6  # the last finished step
    model, result, carry = _fit(train, Checkpoint(path, "key", EVERY_STEP))
    reference_model, reference_result, reference_carry = uninterrupted
    for (name, value), reference in zip(model.state_dict().items(), reference_model.state_dict().values(), strict=True):
        assert torch.equal(value, reference), name
    assert result.loss == reference_result.loss and result.steps == reference_result.steps == 10
    assert carry == reference_carry == {"logged": [3, 6, 9]}


def test_a_state_saved_under_another_key_or_with_checkpoints_off_is_not_used(train, uninterrupted, tmp_path):
    path = tmp_path / "resume.pt"
    with pytest.raises(RuntimeError):
        _fit(train, Checkpoint(path, "old settings", EVERY_STEP), interrupt_at=7)
    other = Checkpoint(path, "new settings", EVERY_STEP)
    assert other.training("tiny") is None and other.done == {}
    assert Checkpoint(path, "old settings", 0).training("tiny") is None  # 0 minutes: never read nor saved
    assert not Checkpoint(path, "old settings", 0).due()
    model, result, _ = _fit(train, other)  # starts over, as an uninterrupted fit does
    assert result.loss == uninterrupted[1].loss


def test_once_runs_a_finished_step_of_a_resumed_job_no_more(tmp_path):
    path = tmp_path / "resume.pt"
    first = Checkpoint(path, "key", EVERY_STEP)
    assert first.once("stage", lambda: {"value": 1}) == {"value": 1}
    first.save("next stage", {"step": 1})

    def again() -> dict:
        raise AssertionError("a finished step ran again")

    resumed = Checkpoint(path, "key", EVERY_STEP)
    assert resumed.once("stage", again) == {"value": 1}
    assert resumed.training("next stage") == {"step": 1}
    assert resumed.training("next stage") is None  # handed out once


def test_job_key_changes_with_any_setting():
    assert job_key(seed=1, lr=1e-3) == job_key(lr=1e-3, seed=1)
    assert job_key(seed=1, lr=1e-3) != job_key(seed=2, lr=1e-3)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "not_a_dict"])
def test_an_unreadable_saved_state_is_set_aside_and_the_job_starts_fresh(tmp_path, capsys, damage):
    path = tmp_path / "resume.pt"
    first = Checkpoint(path, "key", EVERY_STEP)
    first.once("stage", lambda: {"value": 1})
    first.save("next stage", {"step": 1})
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 64)
    else:
        torch.save([1, 2], path)
    resumed = Checkpoint(path, "key", EVERY_STEP)
    assert resumed.once("stage", lambda: {"value": 2}) == {"value": 2}  # computed again, not restored
    assert resumed.training("next stage") is None
    assert not path.exists() and (tmp_path / "resume.pt.unreadable").exists()
    assert "cannot read the saved state" in capsys.readouterr().err
