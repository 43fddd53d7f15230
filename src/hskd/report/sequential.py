"""The adaptive minimum-HSK search's decision rule: how much HSK is enough, decided with seeds spent only
where the decision is still open.

A **sequence** is one task, student, dimension and scheme, its cells ordered from the most HSK kept to the
least. Along it, **fixed-sequence testing**: each cell is tested for non-inferiority to full HSK, the next cell
only once this one is shown, and the first cell not shown ends the sequence. A cell is tested only if every
cell before it was shown, so the sequence's family-wise error is that of one test; the sequences of one task
and student split `alpha` equally (Bonferroni), so the family the grid's Holm correction controls (all cells
of a task and student) keeps a family-wise error of at most `alpha` too.

Within a cell, a **group-sequential test**: looks at `n_min`, `n_min + step`, ... `n_max` seeds of the cell
against full HSK at `n_max` seeds. Look k compares the Welch statistic of H0 "cell - full HSK <= -margin",
(difference + margin) / standard error, with a boundary c_k; the boundaries are set by Monte Carlo (normal
seed values, equal spread, the true difference at the margin, where the statistic's law does not depend on the
spread) so that the chance of crossing by look k is the Lan-DeMets O'Brien-Fleming spending function at
information n_k / n_max, which reaches the cell's alpha at n_max. A look whose one-sided upper bound of the
difference lies below -margin stops the cell for futility (stopping for futility only removes chances to
reject). `scripts/simulate_search.py` checks the error, power and runs by simulation."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from hskd.report.stats import welch_difference

SHOWN, NOT_SHOWN, FUTILE, COLLAPSED, PENDING, UNTESTED = (
    "non-inferior", "not shown", "futile", "collapsed: never enough", "pending", "not tested")  # fmt: skip


@dataclass(frozen=True)
class SearchPlan:
    """The search's budget and test: seeds per cell from `n_min` to `n_max` in steps of `step`."""

    n_min: int = 3
    n_max: int = 5
    step: int = 1
    margin: float = 0.01
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if not 2 <= self.n_min <= self.n_max or self.step < 1:
            raise ValueError(f"seeds: need 2 <= n_min ({self.n_min}) <= n_max ({self.n_max}) and step >= 1")

    def looks(self) -> list[int]:
        """Seeds of the cell at each look: n_min, n_min + step, ..., and n_max last."""
        return sorted({*range(self.n_min, self.n_max, self.step), self.n_max})

    def boundaries(self, alpha: float) -> list[float]:
        """Each look's boundary for the Welch statistic (`calibrated_boundaries`)."""
        return calibrated_boundaries(tuple(self.looks()), alpha)


def obrien_fleming_spent(information: float, alpha: float) -> float:
    """Lan-DeMets O'Brien-Fleming-type alpha spent by information fraction t (one-sided):
    2 - 2 Phi(z_{1 - alpha/2} / sqrt(t)); equal to `alpha` at t = 1."""
    return float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(information)))


CALIBRATION_DRAWS = 400_000
CALIBRATION_SEED = 20210801


@functools.lru_cache(maxsize=64)
def calibrated_boundaries(looks: tuple[int, ...], alpha: float) -> list[float]:
    """Boundaries c_1..c_K for the Welch statistic at `looks` seeds (full HSK at the last), such that under H0
    at the margin P(crossing by look k) = `obrien_fleming_spent`(n_k / n_K): Monte Carlo over
    `CALIBRATION_DRAWS` seeded studies of standard normal seeds, each boundary the quantile of the statistics
    of the studies that have not crossed yet."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    n_max = looks[-1]
    cell, reference = rng.standard_normal((2, CALIBRATION_DRAWS, n_max))
    crossed, bounds = np.zeros(CALIBRATION_DRAWS, dtype=bool), []
    for seeds in looks:
        statistic = welch_statistics(cell[:, :seeds], reference)
        target = obrien_fleming_spent(seeds / n_max, alpha) - crossed.mean()  # this look's share of the error
        open_studies = statistic[~crossed]
        bound = float(np.quantile(open_studies, 1 - target * CALIBRATION_DRAWS / len(open_studies)))
        crossed |= statistic > bound
        bounds.append(bound)
    return bounds


def welch_statistics(cell: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Row by row, (mean(cell) - mean(reference)) / Welch standard error."""
    error = np.sqrt(cell.var(axis=1, ddof=1) / cell.shape[1] + reference.var(axis=1, ddof=1) / reference.shape[1])
    return (cell.mean(axis=1) - reference.mean(axis=1)) / error


@dataclass(frozen=True)
class CellDecision:
    cell: str
    decision: str  # SHOWN, NOT_SHOWN, FUTILE, COLLAPSED, PENDING or UNTESTED
    looks: int  # looks taken
    seeds: int  # the cell's seeds the decision read (PENDING: the seeds its next look needs)
    lower_bound: float  # cell - full HSK minus the last look's boundary times its standard error (NaN: no look)
    upper_bound: float  # one-sided upper bound at the search's alpha (futility)


def decide_cell(cell: str, values: Sequence[float], reference: Sequence[float], plan: SearchPlan, alpha: float,
                collapsed: bool = False) -> CellDecision:  # fmt: skip
    """The group-sequential decision of one cell from its seeds' values so far (seed order) and full HSK's.
    A look needs its seeds and full HSK's `n_max`; until it has them the cell is PENDING."""
    if collapsed:
        return CellDecision(cell, COLLAPSED, 0, len(values), math.nan, math.nan)
    if len(reference) < plan.n_max:
        return CellDecision(cell, PENDING, 0, plan.looks()[0], math.nan, math.nan)
    looks, lower, upper = plan.looks(), math.nan, math.nan
    for look, (seeds, bound) in enumerate(zip(looks, plan.boundaries(alpha), strict=True), start=1):
        if len(values) < seeds:  # the bounds of the look before, if any
            return CellDecision(cell, PENDING, look - 1, seeds, lower, upper)
        diff, error, dof = welch_difference(values[:seeds], reference[: plan.n_max])
        lower = diff - bound * error
        upper = diff + (0.0 if error == 0 else float(special.stdtrit(dof, 1 - plan.alpha))) * error
        if lower > -plan.margin:
            return CellDecision(cell, SHOWN, look, seeds, lower, upper)
        if upper < -plan.margin:
            return CellDecision(cell, FUTILE, look, seeds, lower, upper)
    return CellDecision(cell, NOT_SHOWN, len(looks), looks[-1], lower, upper)


def decide_sequence(cells: Sequence[tuple[str, Sequence[float], bool]], reference: Sequence[float],
                    plan: SearchPlan, n_sequences: int = 1) -> list[CellDecision]:  # fmt: skip
    """Fixed-sequence testing down `cells` (name, seed values, collapsed), most HSK first, each cell at
    alpha / `n_sequences`: every cell gets a decision; those after the first cell not shown (or still
    pending) are UNTESTED."""
    alpha = plan.alpha / n_sequences
    decisions: list[CellDecision] = []
    for name, values, collapsed in cells:
        if decisions and decisions[-1].decision != SHOWN:
            decisions.append(CellDecision(name, UNTESTED, 0, 0, math.nan, math.nan))
            continue
        decisions.append(decide_cell(name, values, reference, plan, alpha, collapsed))
    return decisions


def minimum_of(decisions: Sequence[CellDecision]) -> str | None:
    """The sequence's answer: its last cell shown non-inferior (the least HSK shown enough), once no cell is
    pending; None while one is, or when none is shown."""
    if any(decision.decision == PENDING for decision in decisions):
        return None
    shown = [decision.cell for decision in decisions if decision.decision == SHOWN]
    return shown[-1] if shown else None
