"""Training curves: the logged steps are the training steps, a resumed fit continues the same curve, the final
points equal the run's metrics, the teacher logs too, and `tracking: none` writes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_resume import TinyClassifier
from test_wiring import FULL, NONE, STAGE, run, setup  # noqa: F401  (setup: the module fixture)

from hskd.models.data import TokenizedSplit
from hskd.planning.paths import EVENTS_DIR
from hskd.training.curves import Curves
from hskd.training.loop import Optimisation, fit
from hskd.training.resume import Checkpoint


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_runs_curves_have_a_point_every_log_every_steps_and_its_final_metrics(tiny_task, setup):  # noqa: F811
    (setup["out"] / "curves").mkdir(exist_ok=True)
    # the tiny task: 80 training examples, batch 16: 5 steps per epoch; 2 epochs per stage = 10 steps
    stage = replace(STAGE, epochs=2, eval_every=4)
    metrics = run(tiny_task, setup, FULL, "curves/metrics.json", stage1=stage, stage2=stage, log_every=3)
    curves = scalars(setup["out"] / "curves" / EVENTS_DIR)
    for name in ("stage1", "stage2"):
        assert [step for step, _ in curves[f"{name}/loss"]] == [3, 6, 9, 10]
        assert [step for step, _ in curves[f"{name}/lr"]] == [3, 6, 9, 10]
    assert [step for step, _ in curves["stage2/dev"]] == [4, 8, 10] and curves["stage1/dev"][0][0] == 10
    assert curves["stage2/dev"][-1][1] == pytest.approx(metrics["dev_final"])
    assert curves["stage1/dev"][0][1] == pytest.approx(metrics["dev_after_stage1"])
    for name in ("dev_final", "dev_best", "stage1_loss", "stage2_loss"):
        assert curves[f"final/{name}"] == [(10, pytest.approx(metrics[name]))]
        # each loss point is the mean since the last one: weighted by their 3, 3, 3, 1 steps they give the mean
        # over all 10 steps, which metrics.json records (its loss is the mean of the last 50 steps)
        if name.endswith("_loss"):
            points = curves[f"{name.split('_')[0]}/loss"]
            weighted = sum(value * (step - before) for (step, value), before in zip(points, [0, 3, 6, 9], strict=True))
            assert weighted / 10 == pytest.approx(metrics[name], rel=1e-5)


def test_tracking_none_writes_no_curves(tiny_task, setup):  # noqa: F811
    (setup["out"] / "untracked").mkdir(exist_ok=True)
    run(tiny_task, setup, NONE, "untracked/metrics.json", tracking="none")
    assert sorted(path.name for path in (setup["out"] / "untracked").iterdir()) == ["metrics.json"]


def _fit(split, checkpoint, interrupt_at=None) -> Curves:
    torch.manual_seed(0)
    model, curves = TinyClassifier(30522), Curves(log_every=3)

    def after_step(step: int, total: int) -> float:
        if step == interrupt_at:
            raise RuntimeError("interrupted")
        return 0.0

    fit(model, split, Optimisation(1e-2, 0.01, "linear", 0.2, 16), 2, 0, False, torch.device("cpu"),
        lambda index, batch: torch.nn.functional.cross_entropy(model(batch), batch["labels"]), "tiny",
        after_step=after_step, checkpoint=checkpoint, curves=curves, tag="tiny")  # fmt: skip
    return curves


def test_a_resumed_fit_continues_the_same_curve(tiny_task, tmp_path):
    split = TokenizedSplit.load(tiny_task["train"])
    uninterrupted = _fit(split, None)
    path = tmp_path / "resume.pt"
    with pytest.raises(RuntimeError, match="interrupted"):  # killed after step 7: saved at 7, logged up to 6
        _fit(split, Checkpoint(path, "key", 1e-9), interrupt_at=8)
    resumed = _fit(split, Checkpoint(path, "key", 1e-9))
    assert [step for step, _ in resumed.scalars("tiny/loss")] == [3, 6, 9, 10]  # no step twice, none missing
    assert resumed.points == uninterrupted.points


def test_the_teacher_logs_its_loss_and_dev_curve(tiny_task, tmp_path):
    from hskd.planning.config import Shape, TeacherConfig
    from hskd.training.finetune import finetune

    config = TeacherConfig(model=tiny_task["teacher"], random_init=Shape(layers=2, hidden=32, heads=2, ffn=64),
                           epochs=1, lr=1e-3, batch_size=16, warmup_ratio=0.0, weight_decay=0.0, seed=3,
                           hidden_size=None, num_layers=None, eval_every=2)  # fmt: skip
    result = finetune("SST-2", config, tiny_task["train"], tiny_task["dev"], str(tmp_path), 1, False, log_every=2)
    curves = scalars(tmp_path / EVENTS_DIR)
    assert [step for step, _ in curves["teacher/loss"]] == [2, 4, 5]
    assert [step for step, _ in curves["teacher/dev"]] == [2, 4, 5]
    assert curves["final/dev"] == [(5, pytest.approx(result["dev"]))]
