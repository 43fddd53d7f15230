"""`grid.search: adaptive`: the search's sequences and its first round's runs, from the config alone.

A sequence is one task, student, dimension and scheme (a depth map, a length or a width scheme), its cells
ordered from the most HSK kept to the least; hskd.report.sequential decides it round by round. Every run the
search can ask for is a run of the grid at `grid.adaptive.n_max` seeds (same cell, lr and seed paths), so
switching between the two reuses every finished run."""

from __future__ import annotations

from dataclasses import dataclass

from hskd.planning.cells import Cell, parse_cell
from hskd.planning.config import StudyConfig
from hskd.planning.grid import Run, _depth, baseline_cells, joint_cells
from hskd.planning.shapes import student_layer_count


@dataclass(frozen=True)
class SearchSequence:
    task: str
    student: str
    dimension: str  # depth | length | width
    scheme: str  # the depth map, or the length or width scheme
    lr: float  # stage 2's
    cells: tuple[Cell, ...]  # most HSK kept first

    def name(self) -> str:
        return f"{self.task}/{self.student}/{self.dimension}={self.scheme}"

    def runs(self, cell: Cell, seeds: list[int]) -> list[Run]:
        return [Run(self.task, self.student, cell, self.lr, seed) for seed in seeds]


def search_sequences(study: StudyConfig) -> list[SearchSequence]:
    """Every sequence of the study, per task and student: each depth map's `keep` counts, each length scheme's
    token counts and each width scheme's fractions, from the most kept down."""
    grid, sequences = study.grid, []
    for task in study.tasks:
        lr = study.for_task(task).stage2.lr
        for student in study.students:
            num_layers = student_layer_count(study, study.students[student])
            for depth_map in grid.depth.maps:
                cells = [parse_cell(f"depth={_depth(depth_map, keep, num_layers)}/length=all/width=all")
                         for keep in sorted(set(grid.depth.keep), reverse=True)]  # fmt: skip
                sequences.append(SearchSequence(task, student, "depth", depth_map, lr, tuple(cells)))
            for scheme in grid.length.schemes:
                cells = [parse_cell(f"depth=all-{grid.full_map}/length={scheme}-{keep}/width=all")
                         for keep in sorted(set(grid.length.keep), reverse=True)]  # fmt: skip
                sequences.append(SearchSequence(task, student, "length", scheme, lr, tuple(cells)))
            for scheme in grid.width.schemes:
                cells = [parse_cell(f"depth=all-{grid.full_map}/length=all/width={scheme}-{fraction}")
                         for fraction in sorted(set(grid.width.fractions), reverse=True)]  # fmt: skip
                sequences.append(SearchSequence(task, student, "width", scheme, lr, tuple(cells)))
    return [sequence for sequence in sequences if sequence.cells]  # a sweep turned off (`keep: []`) has none


def first_round_runs(study: StudyConfig) -> list[Run]:
    """What the first decision reads: the baselines and joint cells as the grid runs them (every learning rate
    and seed), and each sequence's first cell at `n_min` seeds."""
    baselines, joint, result = baseline_cells(study), joint_cells(study), []
    for task in study.tasks:
        for student in study.students:
            for cell in baselines + joint:
                lrs = study.for_task(task).baselines.lrs if cell in baselines else [study.for_task(task).stage2.lr]
                result += [Run(task, student, cell, lr, seed) for lr in lrs for seed in study.seeds]
    for sequence in search_sequences(study):
        result += sequence.runs(sequence.cells[0], study.seeds[: study.grid.adaptive.n_min])
    return list(dict.fromkeys(result))


def search_spec(study: StudyConfig) -> dict:
    """What a decision job needs, as JSON: the test, the seeds, each task and student's full-HSK cell and every
    sequence's cells."""
    adaptive = study.grid.adaptive
    full = f"depth=all-{study.grid.full_map}/length=all/width=all"
    return {
        "plan": {"n_min": adaptive.n_min, "n_max": adaptive.n_max, "step": adaptive.step,
                 "margin": study.report.margin, "alpha": study.report.alpha},  # fmt: skip
        "select_on": study.baselines.select_on,
        "value": study.report.value,  # decided on it under select_on: dev, as the grid's minimum_hsk
        "seeds": study.seeds[: adaptive.n_max],
        "full_cell": full,
        "sequences": [{"name": sequence.name(), "task": sequence.task, "student": sequence.student,
                       "dimension": sequence.dimension, "scheme": sequence.scheme, "lr": sequence.lr,
                       "cells": [str(cell) for cell in sequence.cells]} for sequence in search_sequences(study)],
    }  # fmt: skip
