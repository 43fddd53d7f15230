"""The teacher-margin guard: students are built only on a teacher clearly above the trivial baseline."""

from __future__ import annotations

import json

import pytest

from hskd.training.guards import WeakTeacherError, check_teacher_margin


def write_teacher(tmp_path, dev: float, trivial: float | None):
    metrics = {"task": "MRPC", "metric": "f1", "dev": dev, **({} if trivial is None else {"dev_trivial": trivial})}
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    return path


def test_a_teacher_below_the_margin_is_refused_with_the_file_named(tmp_path):
    path = write_teacher(tmp_path, dev=0.81, trivial=0.80)
    expected = r"metrics.json: teacher dev f1 0.8100 is not 0.05 above .* 0.8000"
    with pytest.raises(WeakTeacherError, match=expected) as err:
        check_teacher_margin(path, 0.05)
    assert "by_task.MRPC.teacher" in str(err.value) and "drop MRPC from tasks" in str(err.value)


def test_a_teacher_above_the_margin_passes_and_none_skips_the_check(tmp_path):
    check_teacher_margin(write_teacher(tmp_path, dev=0.86, trivial=0.80), 0.05)
    check_teacher_margin(write_teacher(tmp_path, dev=0.50, trivial=0.80), None)


def test_an_older_teacher_without_a_trivial_baseline_is_let_through_with_a_warning(tmp_path, capsys):
    check_teacher_margin(write_teacher(tmp_path, dev=0.5, trivial=None), 0.05)
    assert "no dev_trivial" in capsys.readouterr().err


def test_the_cli_stops_with_one_line(tmp_path):
    from hskd.cli import main

    write_teacher(tmp_path, dev=0.81, trivial=0.80)
    with pytest.raises(SystemExit) as stop:
        main(["extract", "--teacher-dir", str(tmp_path), "--train", "x", "--stores", "[]", "--logits", "l",
              "--manifest", "m", "--teacher-margin", "0.05"])  # fmt: skip
    assert str(stop.value).startswith("hskd extract: error: ") and "\n" not in str(stop.value)
