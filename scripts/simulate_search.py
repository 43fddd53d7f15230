"""The adaptive minimum-HSK search (hskd.report.sequential) against the grid, on simulated studies whose truth is
known: its family-wise type-I error at the margin, how often it finds each sequence's true minimum, and the
runs it spends.

A simulated study is one task and student: full HSK at `n_max` seeds and `sequences` sequences of `cells` cells
(most HSK first), every sequence with the scenario's true differences to full HSK (in units of the margin) and
normal seed noise. The adaptive search runs `decide_sequence` look by look, exactly as a study would; the grid
runs every cell at `n_max` seeds and decides as `hskd aggregate` does (Welch non-inferiority, Holm over all the
cells of the task and student). An error is a cell shown non-inferior whose true difference is at or below
-margin; a sequence's true minimum is its last cell before the first such cell. The prediction-only baseline's
runs are the same under both and are not counted.

    python scripts/simulate_search.py --studies 10000 --out results/bench/search_simulation.json
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from hskd.common.io import write_json_atomic
from hskd.report.sequential import SHOWN, SearchPlan, decide_sequence, minimum_of
from hskd.report.stats import holm, noninferiority

# true difference to full HSK of each cell, most HSK first, in units of the margin (0 = as good as full HSK)
SCENARIOS = {
    "every cell at the margin": [-1.0, -1.0, -1.0, -1.0, -1.0],
    "knee after 2 cells": [0.0, 0.0, -1.0, -2.0, -3.0],
    "knee after 4 cells": [0.0, 0.0, 0.0, 0.0, -1.0],
    "gradual": [0.0, -0.25, -0.5, -1.0, -2.0],
    "every cell as good as full": [0.0, 0.0, 0.0, 0.0, 0.0],
}
# sequences per task and student: the paper grid's 3 dimensions x 3 schemes; the demonstration's 1 width + 1 length
SHAPES = {"paper": 9, "demonstration": 2}


def simulate(diffs: list[float], plan: SearchPlan, sequences: int, studies: int, noise: float, cell_noise: float,
             seed: int) -> dict:  # fmt: skip
    """Error, how often each rule finds the true minimum, and runs, of both rules over `studies` studies."""
    rng = np.random.default_rng(seed)
    truth = np.asarray(diffs) * plan.margin
    null = truth <= -plan.margin + 1e-12
    true_minimum = int(np.argmax(null)) - 1 if null.any() else len(diffs) - 1  # -1: no cell is enough
    grid_runs = plan.n_max * (1 + sequences * len(diffs))
    counts = {"adaptive_errors": 0, "grid_errors": 0, "adaptive_found": 0, "grid_found": 0, "adaptive_runs": 0}
    for _ in range(studies):
        reference = rng.normal(0.0, noise, plan.n_max)
        values = truth[None, :, None] + rng.normal(0.0, cell_noise, (sequences, len(diffs), plan.n_max))
        adaptive_error, runs = False, plan.n_max
        for sequence in values:
            # every seed exists up front here; a look reads only its first seeds, as a study's round would
            named = [(str(index), sequence[index], False) for index in range(len(diffs))]
            decisions = decide_sequence(named, reference, plan, n_sequences=sequences)
            runs += sum(decision.seeds for decision in decisions)
            shown = [int(decision.cell) for decision in decisions if decision.decision == SHOWN]
            adaptive_error |= any(null[index] for index in shown)
            answer = minimum_of(decisions)
            counts["adaptive_found"] += (int(answer) if answer is not None else -1) == true_minimum
        cells = values.reshape(-1, plan.n_max)
        p_values = [noninferiority(cell, reference, plan.margin, plan.alpha)[0] for cell in cells]
        rejected = np.asarray(holm(p_values, plan.alpha)).reshape(sequences, len(diffs))
        counts["grid_errors"] += bool((rejected & null).any())
        for row in rejected:  # the grid's answer per sequence: the smallest cell shown
            counts["grid_found"] += (int(np.flatnonzero(row)[-1]) if row.any() else -1) == true_minimum
        counts["adaptive_errors"] += adaptive_error
        counts["adaptive_runs"] += runs
    return {
        "family_error_adaptive": counts["adaptive_errors"] / studies,
        "family_error_grid": counts["grid_errors"] / studies,
        "found_minimum_adaptive": counts["adaptive_found"] / (studies * sequences),
        "found_minimum_grid": counts["grid_found"] / (studies * sequences),
        "runs_adaptive": counts["adaptive_runs"] / studies,
        "runs_grid": grid_runs,
        "true_minimum": true_minimum,
    }


def monte_carlo_error(rate: float, studies: int) -> float:
    """Two standard errors of a simulated rate."""
    return 2 * math.sqrt(max(rate * (1 - rate), 1e-12) / studies)


def table(rows: list[dict]) -> str:
    lines = ["| shape | scenario (true difference / margin) | family error, adaptive | family error, grid "
             "| finds the minimum, adaptive | grid | runs, adaptive | grid | adaptive / grid |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for row in rows:
        lines.append(
            f"| {row['shape']} | {row['scenario']} ({', '.join(f'{d:g}' for d in row['diffs'])}) "
            f"| {row['family_error_adaptive']:.4f} ± {row['mc_error_adaptive']:.4f} | {row['family_error_grid']:.4f} "
            f"| {row['found_minimum_adaptive']:.3f} | {row['found_minimum_grid']:.3f} | {row['runs_adaptive']:.1f} "
            f"| {row['runs_grid']} | {row['runs_adaptive'] / row['runs_grid']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--n-min", type=int, default=3)
    parser.add_argument("--n-max", type=int, default=5)
    parser.add_argument("--margin", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--noise", type=float, default=0.007, help="seed standard deviation of the metric")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="processes: one scenario each")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    plan = SearchPlan(args.n_min, args.n_max, 1, args.margin, args.alpha)
    started = time.perf_counter()
    cases = [(shape, scenario, diffs, args.seed + index) for shape in args.shapes
             for index, (scenario, diffs) in enumerate(SCENARIOS.items())]  # fmt: skip
    with ProcessPoolExecutor(args.jobs) as pool:
        results = pool.map(simulate, *zip(*[(diffs, plan, SHAPES[shape], args.studies, args.noise, args.noise, seed)
                                            for shape, _, diffs, seed in cases], strict=True))  # fmt: skip
        rows = [{"shape": shape, "scenario": scenario, "diffs": diffs, **result,
                 "mc_error_adaptive": monte_carlo_error(result["family_error_adaptive"], args.studies)}
                for (shape, scenario, diffs, _), result in zip(cases, results, strict=True)]  # fmt: skip
    print(table(rows))
    seconds = time.perf_counter() - started
    print(f"{args.studies} studies per row; plan {plan}; seed noise {args.noise}; {seconds:.0f} s")
    if args.out:
        write_json_atomic({"rows": rows, "settings": vars(args)}, args.out)
    return rows


if __name__ == "__main__":
    main()
