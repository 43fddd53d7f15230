"""Expanding the config's grid into cells and run targets (students x cells x learning rates x seeds)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from hskd.common.synthetic import SYNTHETIC_TRAIN_SIZE
from hskd.planning import paths
from hskd.planning.cells import Cell, expand_joint, parse_cell
from hskd.planning.config import StudyConfig
from hskd.planning.protocol import Protocol
from hskd.planning.shapes import student_layer_count, teacher_shape

# Training-set sizes of GLUE, for sizing caches before any data is read.
GLUE_TRAIN_SIZES = {
    "CoLA": 8551, "SST-2": 67349, "MRPC": 3668, "STS-B": 5749,
    "QQP": 363846, "MNLI": 392702, "QNLI": 104743, "RTE": 2490,
}  # fmt: skip


@dataclass(frozen=True)
class Run:
    """One student training run: a task, a student, a cell, a stage-2 learning rate and a seed."""

    task: str
    student: str
    cell: Cell
    lr: float
    seed: int

    def wildcards(self) -> dict[str, str]:
        return {
            "task": self.task,
            "student": self.student,
            **paths.cell_wildcards(self.cell),
            "lr": paths.format_lr(self.lr),
            "seed": str(self.seed),
        }

    def metrics_path(self, results: str) -> str:
        return paths.RUN_METRICS.format(results=results, **self.wildcards())


def _sweep_cells(study: StudyConfig, num_layers: int) -> list[Cell]:
    grid = study.grid
    full_map = grid.full_map
    cells = [
        parse_cell(f"depth={_depth(depth_map, keep, num_layers)}/length=all/width=all")
        for depth_map in grid.depth.maps
        for keep in grid.depth.keep
    ]
    cells += [
        parse_cell(f"depth=all-{full_map}/length={scheme}-{keep}/width=all")
        for scheme in grid.length.schemes
        for keep in grid.length.keep
    ]
    cells += [
        parse_cell(f"depth=all-{full_map}/length=all/width={scheme}-{fraction}")
        for scheme in grid.width.schemes
        for fraction in grid.width.fractions
    ]
    return cells


def _depth(depth_map: str, keep: int, num_layers: int) -> str:
    return f"all-{depth_map}" if keep == num_layers + 1 else f"{depth_map}-{keep}"


def baseline_cells(study: StudyConfig) -> list[Cell]:
    cells = []
    if study.grid.none:
        cells.append(parse_cell("depth=none/length=all/width=all"))
    if study.grid.full:
        cells.append(parse_cell(f"depth=all-{study.grid.full_map}/length=all/width=all"))
    return cells


def joint_cells(study: StudyConfig) -> list[Cell]:
    joint = study.grid.joint
    schemes = {"depth": joint.depth, "length": joint.length, "width": joint.width}
    return [expand_joint(name, schemes) for name in joint.configs]


def is_joint(study: StudyConfig, cell: Cell) -> bool:
    return cell in joint_cells(study)


def cell_protocol(study: StudyConfig, cell: Cell) -> Protocol:
    """The protocol a cell's store and runs use: a joint cell ranks tokens by `joint_token_ranking`."""
    return study.protocol.for_cell(is_joint(study, cell))


def study_cells(study: StudyConfig, student: str) -> list[Cell]:
    """Every distinct cell a student is trained on, baselines first."""
    num_layers = student_layer_count(study, study.students[student])
    cells: list[Cell] = []
    for cell in baseline_cells(study) + joint_cells(study) + _sweep_cells(study, num_layers):
        if cell not in cells:
            cells.append(cell)
    return cells


def runs(study: StudyConfig) -> list[Run]:
    """All run targets: baselines with every baseline learning rate and all seeds, joint cells with all
    seeds, per-dimension sweeps with the first `grid.sweep_seeds` seeds (under `grid.search: adaptive`, the
    first `grid.adaptive.n_max`: every run the search may ask for); compressed cells at stage2.lr, or at every
    baseline learning rate with `grid.lr_search`."""
    baselines = baseline_cells(study)
    joint = joint_cells(study)
    # an adaptive search may ask for any sweep cell at up to n_max seeds (hskd.planning.search)
    sweep_seeds = study.grid.adaptive.n_max if study.grid.search == "adaptive" else study.grid.sweep_seeds
    result = []
    for task in study.tasks:
        task_study = study.for_task(task)
        for student in study.students:
            for cell in study_cells(study, student):
                searched = cell in baselines or (study.grid.lr_search and not cell.is_none)
                lrs = task_study.baselines.lrs if searched else [task_study.stage2.lr]
                seeds = study.seeds if cell in baselines or cell in joint else study.seeds[:sweep_seeds]
                result += [Run(task, student, cell, lr, seed) for lr in lrs for seed in seeds]
    return result


def train_size(study: StudyConfig, task: str) -> int:
    """Upper bound of the number of training examples a store holds (before any data is read): exact for GLUE's
    and the synthetic data's sizes."""
    data = study.for_task(task).data
    full = SYNTHETIC_TRAIN_SIZE if study.synthetic_data else GLUE_TRAIN_SIZES.get(task, 0)
    available = full - data.heldout_size
    return min(data.train_subset, available) if data.train_subset else available


def kept_values_per_layer(cell: Cell, tokens: int, hidden_size: int) -> int:
    """Values one example's store keeps per distilled layer, `tokens` being the cell's kept token count
    (every value for a per-batch mask, drawn per training batch)."""
    if cell.width.kind == "per_example":
        return max(1, round(cell.width.fraction * tokens * hidden_size))
    return tokens * len(cell.width.kept_dims(hidden_size))


def store_bytes_per_example(
    cell: Cell, num_layers: int, hidden_size: int, max_seq_length: int, per_layer_tokens: bool = False
) -> int:
    """Bytes per example of a cell's store (must match hskd.hsk.store's layout: fp16 values, int16 token
    positions, one set or, with `per_layer_tokens`, one per layer, and for a per-example width mask a packed
    bitmask of kept entries)."""
    layers = len(cell.student_layers(num_layers))
    tokens = cell.num_tokens(max_seq_length)
    kept = kept_values_per_layer(cell, tokens, hidden_size)
    mask_bytes = -(-tokens * hidden_size // 8) if cell.width.kind == "per_example" else 0
    token_sets = layers if per_layer_tokens and cell.length.needs_attention else 1
    return 2 * tokens * token_sets + layers * (2 * kept + mask_bytes)


def store_bytes_lower_bound(cell: Cell, num_layers: int, hidden_size: int, max_seq_length: int) -> float:
    """The fewest bytes per example any fixed-size record of a cell's store can take: the fp16 kept values
    plus the information saying where they sit, log2 C(T, K) bits for tokens picked per example and, for a
    per-example width mask, log2 C(K * D, kept) bits per layer (a fixed-size code must tell
    every possible mask apart). Fixed positions cost nothing."""
    layers = len(cell.student_layers(num_layers))
    tokens = cell.num_tokens(max_seq_length)
    kept = kept_values_per_layer(cell, tokens, hidden_size)
    bits = math.log2(math.comb(max_seq_length, tokens)) if cell.length.per_example else 0.0
    if cell.width.kind == "per_example":
        bits += layers * math.log2(math.comb(tokens * hidden_size, kept))
    return 2 * layers * kept + bits / 8


def store_content_key(cell: Cell, student_layers: int, joint: bool) -> tuple[str, int, bool]:
    """Stores with equal keys hold identical bytes: the cell, the student depth and the cell's token ranking (a
    joint cell's) fix every tensor, so extraction writes one file and hard-links it for the other students."""
    return str(cell), student_layers, joint


def is_cached(study: StudyConfig, task: str, student: str, cell: Cell) -> bool:
    """Whether a cell's runs read HSK from a store (else the teacher runs online)."""
    if cell.is_none or study.kd_mode == "online":
        return False
    if study.kd_mode == "cached":
        return True
    num_layers = student_layer_count(study, study.students[student])
    _, hidden = teacher_shape(study)
    per_example = store_bytes_per_example(cell, num_layers, hidden, study.for_task(task).data.max_seq_length,
                                          cell_protocol(study, cell).per_layer_tokens)  # fmt: skip
    return per_example * train_size(study, task) <= study.cache_budget_gb * 1e9


def cached_cells(study: StudyConfig, task: str, student: str) -> list[Cell]:
    return [cell for cell in study_cells(study, student) if is_cached(study, task, student, cell)]
