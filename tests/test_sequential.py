"""The adaptive search's decision rule (hskd.report.sequential) on hand-made seed values, its calibrated
boundaries, and scripts/simulate_search.py at a small size."""

from __future__ import annotations

import pytest
from conftest import load_script
from scipy import stats

from hskd.report.sequential import (
    COLLAPSED,
    FUTILE,
    NOT_SHOWN,
    PENDING,
    SHOWN,
    UNTESTED,
    SearchPlan,
    calibrated_boundaries,
    decide_cell,
    decide_sequence,
    minimum_of,
    obrien_fleming_spent,
)

PLAN = SearchPlan(n_min=3, n_max=5, step=1, margin=0.01, alpha=0.05)  # looks at 3, 4, 5 seeds
FULL = [0.80, 0.81, 0.82, 0.81, 0.80]  # full HSK: mean 0.808, sample variance 7e-5
# mean 0.8096 (variance 3.23e-5): at 5 seeds (0.0016 + 0.01) / sqrt(3.23e-5/5 + 7e-5/5) = 2.565 > 1.980; at 4 seeds
# (mean 0.80925, variance 4.225e-5) 0.01125 / 0.004956 = 2.270 < 2.393; at 3 seeds below 3.233
LATE = [0.81, 0.80, 0.815, 0.812, 0.811]


def test_one_look_is_the_plain_welch_test_and_later_looks_spend_obrien_fleming():
    # one look at 5 + 5 seeds with equal spread: the boundary is t_{0.95} with Welch's 8 degrees of freedom
    assert calibrated_boundaries((5,), 0.05)[0] == pytest.approx(stats.t.ppf(0.95, 8), abs=0.02)
    bounds = PLAN.boundaries(0.05)
    assert bounds[0] > bounds[1] > bounds[2] > stats.t.ppf(0.95, 8)  # early looks ask for more
    assert obrien_fleming_spent(1.0, 0.05) == pytest.approx(0.05)
    assert obrien_fleming_spent(0.6, 0.05) == pytest.approx(2 - 2 * stats.norm.cdf(stats.norm.ppf(0.975) / 0.6**0.5))
    assert PLAN.looks() == [3, 4, 5] and SearchPlan(2, 6, 2).looks() == [2, 4, 6] and SearchPlan(2, 5, 2).looks() == [
        2, 4, 5]  # fmt: skip
    with pytest.raises(ValueError, match="n_min"):
        SearchPlan(n_min=1)


def test_a_cell_shown_at_its_first_look():
    decision = decide_cell("c", [0.81, 0.81, 0.815], FULL, PLAN, 0.05)
    assert (decision.decision, decision.looks, decision.seeds) == (SHOWN, 1, 3)
    assert decision.lower_bound > -0.01


def test_a_cell_shown_only_at_its_last_look_waits_for_its_seeds():
    assert (decide_cell("c", LATE[:3], FULL, PLAN, 0.05).decision, decide_cell("c", LATE[:3], FULL, PLAN, 0.05).seeds) \
        == (PENDING, 4)  # fmt: skip
    assert decide_cell("c", LATE[:4], FULL, PLAN, 0.05).seeds == 5
    decision = decide_cell("c", LATE, FULL, PLAN, 0.05)
    assert (decision.decision, decision.looks, decision.seeds) == (SHOWN, 3, 5)
    assert decision.lower_bound == pytest.approx(0.0016 - 1.9797 * (3.23e-5 / 5 + 7e-5 / 5) ** 0.5, abs=1e-4)


def test_a_clearly_worse_cell_stops_for_futility_and_an_unclear_one_is_not_shown():
    futile = decide_cell("c", [0.70, 0.71, 0.72], FULL, PLAN, 0.05)
    assert (futile.decision, futile.looks, futile.seeds) == (FUTILE, 1, 3) and futile.upper_bound < -0.01
    unclear = decide_cell("c", [0.800, 0.812, 0.805, 0.808, 0.803], FULL, PLAN, 0.05)
    assert (unclear.decision, unclear.seeds) == (NOT_SHOWN, 5)


def test_a_sequence_stops_at_its_first_cell_not_shown():
    cells = [("1l", [0.81, 0.81, 0.815], False), ("worse", [0.70, 0.71, 0.72], False), ("good", [0.81] * 3, False)]
    decisions = decide_sequence(cells, FULL, PLAN)
    assert [d.decision for d in decisions] == [SHOWN, FUTILE, UNTESTED]
    assert minimum_of(decisions) == "1l" and sum(d.seeds for d in decisions) == 6


def test_a_collapsed_run_ends_its_sequence_and_a_pending_one_leaves_no_answer():
    collapsed = decide_sequence([("a", [0.81] * 3, True), ("b", [0.81] * 3, False)], FULL, PLAN)
    assert [d.decision for d in collapsed] == [COLLAPSED, UNTESTED] and minimum_of(collapsed) is None
    pending = decide_sequence([("a", [0.81, 0.81, 0.815], False), ("b", LATE[:3], False)], FULL, PLAN)
    assert [d.decision for d in pending] == [SHOWN, PENDING] and minimum_of(pending) is None
    assert decide_cell("c", [0.81] * 3, FULL[:4], PLAN, 0.05).decision == PENDING  # full HSK needs its n_max


def test_sequences_share_alpha():
    # shown at alpha 0.05 in one sequence; at 0.05 / 9 (nine sequences) the same seeds are not enough yet
    assert decide_sequence([("c", LATE, False)], FULL, PLAN)[0].decision == SHOWN
    assert decide_sequence([("c", LATE, False)], FULL, PLAN, n_sequences=9)[0].decision == NOT_SHOWN


def test_the_simulation_keeps_the_error_at_the_margin_and_spends_fewer_runs():
    module = load_script("simulate_search")
    at_margin = module.simulate([-1.0] * 5, PLAN, sequences=1, studies=400, noise=0.007, cell_noise=0.007, seed=1)
    # one sequence, first cell exactly at the margin: an error is showing it; at most alpha (+ Monte Carlo error)
    assert at_margin["family_error_adaptive"] <= 0.05 + module.monte_carlo_error(0.05, 400)
    assert at_margin["runs_adaptive"] < 0.5 * at_margin["runs_grid"] == 0.5 * 5 * 6
    clear = module.simulate([0.0, 0.0, -5.0, -5.0, -5.0], PLAN, sequences=1, studies=100, noise=0.002,
                            cell_noise=0.002, seed=2)  # fmt: skip
    assert clear["found_minimum_adaptive"] > 0.9 and clear["true_minimum"] == 1
