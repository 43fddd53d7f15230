"""Small-sample statistics for seed-level results: t intervals, Welch differences, non-inferiority
tests with Holm's correction, and a bootstrap interval of the share of a gain. Pure functions of arrays."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import numpy as np
from scipy import special, stats

LEVEL = 0.95
BOOTSTRAP_SAMPLES = 4000
BOOTSTRAP_SEED = 0


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """Two-sided `level` t interval of the mean; (NaN, NaN) for fewer than two values."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1)) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()) - half, float(values.mean()) + half


def _welch(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int) -> tuple[float, float, float]:
    """(difference of means, its standard error, Welch-Satterthwaite degrees of freedom)."""
    var_a, var_b = std_a**2 / n_a, std_b**2 / n_b
    error = math.sqrt(var_a + var_b)
    dof = math.inf if error == 0 else (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    return mean_a - mean_b, error, dof


def welch_interval(
    mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int, level: float = LEVEL
) -> tuple[float, float]:
    """Two-sided `level` t interval of mean_a - mean_b with Welch-Satterthwaite degrees of freedom;
    (NaN, NaN) when either side has fewer than two values."""
    if not (n_a >= 2 and n_b >= 2):
        return math.nan, math.nan
    diff, error, dof = _welch(mean_a, std_a, n_a, mean_b, std_b, n_b)
    half = 0.0 if error == 0 else float(stats.t.ppf(0.5 + level / 2, dof)) * error
    return diff - half, diff + half


def welch_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """mean(a) - mean(b), its standard error and Welch-Satterthwaite degrees of freedom (two values each at
    least). Plain floats: seed-level samples are a handful of values, and the search's simulation calls this
    millions of times."""
    return _welch(statistics.fmean(a), statistics.stdev(a), len(a), statistics.fmean(b), statistics.stdev(b), len(b))


def noninferiority(
    cell: Sequence[float], reference: Sequence[float], margin: float, alpha: float
) -> tuple[float, float]:
    """Welch test of H0: mean(cell) - mean(reference) <= -margin against H1: the difference is above -margin.

    Returns (p-value, one-sided 1-alpha lower bound of the difference); (NaN, NaN) when either side has
    fewer than two values. With zero variance on both sides the difference itself decides (p 0 or 1)."""
    if len(cell) < 2 or len(reference) < 2:
        return math.nan, math.nan
    diff, error, dof = welch_difference(cell, reference)
    if error == 0:
        return (0.0 if diff > -margin else 1.0), float(diff)
    p_value = float(special.stdtr(dof, -(diff + margin) / error))  # the t distribution's sf, as a ufunc
    return p_value, float(diff - special.stdtrit(dof, 1 - alpha) * error)


def holm(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm's step-down rejections at family-wise level `alpha` (NaN p-values are never rejected and do
    not count in the family)."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    rejected = [False] * len(p_values)
    for rank, (p_value, index) in enumerate(tested):
        if p_value > alpha / (len(tested) - rank):
            break
        rejected[index] = True
    return rejected


def share_interval(
    cell: Sequence[float], none: Sequence[float], full: Sequence[float], level: float = LEVEL,
    samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:  # fmt: skip
    """Percentile bootstrap interval of (mean cell - mean none) / (mean full - mean none), resampling the
    seeds of each arm independently; (NaN, NaN) when an arm has fewer than two values. Resamples whose
    gain is 0 are dropped (their share is undefined)."""
    arms = [np.asarray(arm, dtype=float) for arm in (cell, none, full)]
    if min(len(arm) for arm in arms) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    cell_m, none_m, full_m = (rng.choice(arm, size=(samples, len(arm))).mean(1) for arm in arms)
    gain = full_m - none_m
    shares = (cell_m - none_m)[gain != 0] / gain[gain != 0]
    low, high = np.quantile(shares, [0.5 - level / 2, 0.5 + level / 2])
    return float(low), float(high)


def seeds_for_noninferiority(std: float, margin: float, alpha: float, power: float = 0.8) -> int:
    """Seeds per arm that give `power` to show non-inferiority at `margin` when the true difference is 0
    and both arms have seed std `std` (normal approximation: 2 (z_{1-alpha} + z_power)^2 std^2 / margin^2)."""
    if not std > 0:
        return 2
    z = stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)
    return max(2, math.ceil(2 * (z * std / margin) ** 2))
