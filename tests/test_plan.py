"""`hskd plan`: the multiply-add count of an encoder, the steps and evaluations of a training, what an online
run costs over a cached one, and the throughput read from `hskd bench`'s JSON, each checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hskd.planning.config import ConfigError
from hskd.planning.layers import merge, read_layers
from hskd.planning.plan import (
    TRAIN_PASSES,
    Encoder,
    evaluations,
    plan_json,
    plan_study,
    teacher_encoder,
    throughput_from_bench,
)
from hskd.planning.study import load

ROOT = Path(__file__).resolve().parents[1]


def test_an_encoders_multiply_adds_by_hand():
    # 1 layer, width 2, attention width 2, FFN 4, 3 tokens: projections 3 x (4*2*2 + 2*2*4) = 96, attention
    # 2 * 3 * 3 * 2 = 36, pooler 2 * 2 = 4
    assert Encoder(1, 2, 2, 4).forward_macs(3) == 96 + 36 + 4
    # a rank-1 factorised embedding adds 3 tokens x 1 x 2; a narrower attention (1) shrinks q, k, v, o and scores
    assert Encoder(1, 2, 2, 4, emb_rank=1).forward_macs(3) == 136 + 6
    assert Encoder(1, 2, 1, 4).forward_macs(3) == 3 * (4 * 2 * 1 + 2 * 2 * 4) + 2 * 3 * 3 * 1 + 4


@pytest.mark.parametrize(("steps", "every", "count"), [(10, 4, 3), (8, 4, 2), (3, 4, 1), (10, None, 0)])
def test_evaluations_every_n_steps_and_at_the_end(steps, every, count):
    assert evaluations(steps, every) == count


def smoke_study(**overrides):
    """The smoke study (config.yaml < smoke.yaml) with top-level `overrides`."""
    config, _ = merge(read_layers([ROOT / "workflow/configs/smoke.yaml"], overrides, default=str(ROOT / "config.yaml")))
    return load(config)


def test_an_online_run_costs_its_teacher_passes_over_the_cached_one():
    cached, online = smoke_study(kd_mode="cached"), smoke_study(kd_mode="online")
    cached_jobs = [job for job in plan_study(cached).jobs if job.rule == "distill"]
    online_jobs = [job for job in plan_study(online).jobs if job.rule == "distill"]
    teacher = teacher_encoder(online).forward_macs(online.data.max_seq_length)
    for a, b in zip(cached_jobs, online_jobs, strict=True):
        assert a.teacher_passes == 0 and not a.online
        # the prediction-only run has no stage 1 and no teacher either way
        assert b.macs - a.macs == b.teacher_passes * online.stage1.batch_size * teacher
    assert sum(job.online for job in online_jobs) == len(online_jobs) - online.grid.none * len(online.baselines.lrs) \
        * len(online.seeds) * len(online.students)  # fmt: skip
    assert plan_study(online).stores == [] and plan_json(plan_study(cached))["SST-2"]["bytes_total"] > 0


def test_a_store_over_the_budget_is_planned_online():
    plan = plan_study(smoke_study(cache_budget_gb=1e-9))
    runs = [job for job in plan.jobs if job.rule == "distill"]
    assert plan.stores == [] and len(plan.online_cells) == 10  # 5 HSK cells x 2 students
    # 26 runs, 8 of them prediction-only (2 learning rates x 2 seeds x 2 students): no teacher
    assert sum(job.online for job in runs) == sum(job.teacher_passes > 0 for job in runs) == 26 - 8


def test_an_unknown_hub_student_is_a_config_error_naming_it():
    study = smoke_study()
    student = study.students["pretrained"]
    broken = study.__class__(**{**study.__dict__, "students": {"pretrained": student.__class__(
        **{**student.__dict__, "model": "someone/unknown-bert", "random_init": None})}})  # fmt: skip
    with pytest.raises(ConfigError, match="students.pretrained.model"):
        plan_study(broken)


def test_throughput_is_the_median_of_the_benchs_timed_steps(tmp_path):
    teacher = {"layers": 1, "hidden": 2, "heads": 1, "ffn": 4, "vocab_size": 10}
    student = {"family": "pretrained", "layers": 1, "heads": 1, "ffn": 4, "hidden": 2, "emb_rank": None}
    step = 2 * TRAIN_PASSES * Encoder(1, 2, 2, 4).forward_macs(3)  # batch 2, 3 tokens: 816 multiply-adds
    online = step + 2 * Encoder(1, 2, 2, 4).forward_macs(3)
    row = {"student": "s", "batch_size": 2, "seq_len": 3, "student_only_s": 1.0, "cached_s": 2.0,
           "online_s": online / (step / 4.0)}  # fmt: skip
    bench = {"rows": [row], "shapes": {"teacher": teacher, "students": {"s": student}},
             "machine": {"cpu_model": "test cpu", "torch_threads": 2}, "settings": {"gpu": None, "precision": "fp32"}}
    (tmp_path / "speed.json").write_text(json.dumps(bench))
    rate, source = throughput_from_bench(tmp_path / "speed.json")
    assert rate == pytest.approx(step / 2.0)  # of step/1, step/2 and step/4: the median
    assert "test cpu" in source and "fp32" in source


def test_evaluating_every_step_costs_one_dev_pass_per_extra_evaluation():
    from hskd.planning.plan import dev_size, student_encoder

    rare, often = smoke_study(stage2={"eval_every": 1000}), smoke_study(stage2={"eval_every": 1})
    [rare_run] = [job for job in plan_study(rare).jobs if job.rule == "distill"][-1:]
    [often_run] = [job for job in plan_study(often).jobs if job.rule == "distill"][-1:]
    # smoke: 448 training examples, batch 16, 2 epochs = 56 steps: 56 evaluations instead of 1 (at the end)
    forward = student_encoder(often, often.students["pruned"]).forward_macs(often.data.max_seq_length)
    assert often_run.macs - rare_run.macs == often_run.eval_macs - rare_run.eval_macs == (56 - 1) * dev_size(
        often, "SST-2") * forward


def test_an_adaptive_plan_prices_the_least_and_the_most_the_search_can_run():
    from hskd.planning.plan import format_plan

    config, _ = merge(read_layers([ROOT / "workflow/configs/smoke.yaml", ROOT / "workflow/configs/search-smoke.yaml"],
                                  {}, default=str(ROOT / "config.yaml")))  # fmt: skip
    study = load(config)
    text = format_plan(study, plan_study(study), 1e12, "assumed", 1)
    # 2 students x (prediction-only + full HSK) x 2 lrs x 3 seeds = 24 baseline runs; per student 3 sequences
    # (depth top2-1; attention 4, 2; magnitude 0.5, 0.25): first cells at n_min = 2 seeds, 12 runs; all 5
    # candidates at n_max = 3 seeds, 30 runs
    assert "the search runs between 36 distill jobs" in text and "and the 54 above" in text
    assert "between" not in format_plan(smoke_study(), plan_study(smoke_study()), 1e12, "assumed", 1)
