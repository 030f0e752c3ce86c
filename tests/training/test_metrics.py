"""Forecast scores (training/metrics.py) against values computed by hand.

Every expected number below is worked out in the comment next to it, not by calling the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from training import metrics

# Four cells; the last one has no measurement (NaN) and is masked out.
PRED = np.array([1.0, 2.0, 3.0, 4.0])
TARGET = np.array([2.0, 2.0, 1.0, np.nan])
MASK = np.isfinite(TARGET)  # [T, T, T, F]
# errors target − pred on the masked cells: +1 (under-forecast), 0, −2 (over-forecast)


# --- pinball --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (0.5, (0.5 + 0.0 + 1.0) / 3),  # 0.5·|e|: 0.5, 0, 1.0
        (0.9, (0.9 + 0.0 + 0.2) / 3),  # under: 0.9·1 ; over: 0.1·2
        (0.1, (0.1 + 0.0 + 1.8) / 3),  # under: 0.1·1 ; over: 0.9·2
    ],
)
def test_pinball_hand_values_ignore_masked_nan(level: float, expected: float) -> None:
    """Pinball is the mean of max(q·e, (q−1)·e) over the masked cells; the NaN cell outside the mask is ignored."""
    assert metrics.pinball(PRED, TARGET, level, MASK) == pytest.approx(expected, rel=1e-12)


def test_pinball_level_asymmetry() -> None:
    """At level 0.9 an under-forecast costs 9× an over-forecast of the same size, and q ↔ 1−q mirrors the error."""
    one = np.array([True])
    under = metrics.pinball(np.array([0.0]), np.array([1.0]), 0.9, one)  # e = +1 → 0.9
    over = metrics.pinball(np.array([2.0]), np.array([1.0]), 0.9, one)  # e = −1 → 0.1
    assert under == pytest.approx(0.9)
    assert over == pytest.approx(0.1)
    assert under / over == pytest.approx(9.0)
    # the 0.1 level penalises the same two errors the other way round
    assert metrics.pinball(np.array([0.0]), np.array([1.0]), 0.1, one) == pytest.approx(0.1)
    assert metrics.pinball(np.array([2.0]), np.array([1.0]), 0.1, one) == pytest.approx(0.9)


def test_pinball_is_zero_for_perfect_forecast_and_nan_for_empty_mask() -> None:
    """A perfect forecast scores 0 at every level; an empty mask scores NaN (never a misleading 0)."""
    t = np.array([0.0, 3.5, 7.0])
    for level in (0.01, 0.5, 0.99):
        assert metrics.pinball(t, t, level, np.ones(3, bool)) == 0.0
    assert math.isnan(metrics.pinball(PRED, TARGET, 0.5, np.zeros(4, bool)))


def test_pinball_median_is_half_the_mae() -> None:
    """At level 0.5 the pinball loss is exactly half the mean absolute error."""
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=50), rng.normal(size=50)
    mask = rng.random(50) > 0.3
    assert metrics.pinball(pred, target, 0.5, mask) == pytest.approx(0.5 * metrics.mae(pred, target, mask), rel=1e-12)


# --- mae / rmse -----------------------------------------------------------------------------------------


def test_mae_rmse_hand_values_ignore_masked_nan() -> None:
    """|e| = 1, 0, 2 → MAE 1; e² = 1, 0, 4 → RMSE √(5/3); the masked NaN cell changes neither."""
    assert metrics.mae(PRED, TARGET, MASK) == pytest.approx(1.0, rel=1e-12)
    assert metrics.rmse(PRED, TARGET, MASK) == pytest.approx(math.sqrt(5 / 3), rel=1e-12)


def test_mae_rmse_nan_for_empty_mask() -> None:
    """No counted cell → NaN, not 0."""
    none = np.zeros(4, bool)
    assert math.isnan(metrics.mae(PRED, TARGET, none))
    assert math.isnan(metrics.rmse(PRED, TARGET, none))


def test_mask_selects_cells_not_values() -> None:
    """Only masked-in cells count: a huge error in a masked-out cell leaves MAE and RMSE unchanged."""
    pred = np.array([1.0, 2.0, 1e9])
    target = np.array([1.5, 1.0, 0.0])
    mask = np.array([True, True, False])
    assert metrics.mae(pred, target, mask) == pytest.approx(0.75)  # (0.5 + 1) / 2
    assert metrics.rmse(pred, target, mask) == pytest.approx(math.sqrt((0.25 + 1.0) / 2))


# --- coverage -------------------------------------------------------------------------------------------


def test_coverage_edges_are_inclusive() -> None:
    """A target equal to the lower or the upper bound is inside; just outside is not: 3 of 5 → 0.6."""
    lower = np.array([0.0, 1.0, 2.0, 3.0, 3.0])
    upper = np.array([1.0, 2.0, 3.0, 4.0, 4.0])
    target = np.array([0.0, 2.0, 2.5, 4.000001, 2.999999])  # lower edge, upper edge, inside, above, below
    assert metrics.coverage(lower, upper, target, np.ones(5, bool)) == pytest.approx(3 / 5)


def test_coverage_ignores_masked_nan_and_empty_mask_is_nan() -> None:
    """NaN targets outside the mask do not count as misses; an empty mask gives NaN."""
    lower, upper = np.zeros(4), np.ones(4)
    target = np.array([0.5, 2.0, np.nan, np.nan])
    mask = np.isfinite(target)
    assert metrics.coverage(lower, upper, target, mask) == pytest.approx(0.5)
    assert math.isnan(metrics.coverage(lower, upper, target, np.zeros(4, bool)))


# --- level helpers --------------------------------------------------------------------------------------


def test_central_and_interval_indices() -> None:
    """The P50 and P10/P90 columns are found among 3 and among 99 levels (closest level when absent)."""
    assert metrics.central_index((0.1, 0.5, 0.9)) == 1
    assert metrics.interval_indices((0.1, 0.5, 0.9)) == (0, 2)
    levels = tuple(np.round(np.arange(1, 100) / 100, 2))
    assert metrics.central_index(levels) == 49
    assert metrics.interval_indices(levels) == (9, 89)
    assert metrics.interval_indices((0.05, 0.5, 0.95)) == (0, 2)


# --- score ----------------------------------------------------------------------------------------------


def test_score_hand_computed_table() -> None:
    """The whole table for one park (capacity 10 kW), four steps, P10/P50/P90, worked out by hand.

    step 0: sun up, NO measurement   → counts nowhere
    step 1: night, measured 0 kW      → counts in the "measured" scores, not in the "day" scores
    step 2: day, measured 5 kW, P10/P50/P90 = 3/4/6   (inside the band)
    step 3: day, measured 8 kW, P10/P50/P90 = 8.5/9/10 (below P10: outside the band)
    """
    pred = np.array([[[1, 2, 3], [0, 0, 0], [3, 4, 6], [8.5, 9, 10]]], dtype=np.float64)
    target = np.array([[np.nan, 0.0, 5.0, 8.0]])
    capacity = np.array([[10.0]])
    sun_up = np.array([[True, False, True, True]])
    got = metrics.score(pred, target, capacity, sun_up, (0.1, 0.5, 0.9))

    # median errors on measured steps 1..3: 0, −1, +1 kW
    assert got["mae_kw"] == pytest.approx(2 / 3)
    assert got["nmae_pct"] == pytest.approx(100 * (2 / 3) / 10)
    assert got["nmae_day_pct"] == pytest.approx(100 * 1 / 10)  # steps 2, 3 only
    assert got["rmse_kw"] == pytest.approx(math.sqrt(2 / 3))
    assert got["nrmse_day_pct"] == pytest.approx(100 * math.sqrt((0.1**2 + 0.1**2) / 2))
    # pinball on fractions of capacity, steps 1..3:
    #  q0.1: e = 0, +0.2, −0.05 → 0, 0.02, 0.045 → 0.065/3
    #  q0.5: e = 0, +0.1, −0.1  → 0, 0.05, 0.05  → 0.1/3
    #  q0.9: e = 0, −0.1, −0.2  → 0, 0.01, 0.02  → 0.03/3
    assert got["pinball_q0.1_pct"] == pytest.approx(100 * 0.065 / 3)
    assert got["pinball_q0.5_pct"] == pytest.approx(100 * 0.1 / 3)
    assert got["pinball_q0.9_pct"] == pytest.approx(100 * 0.03 / 3)
    assert got["pinball_mean_pct"] == pytest.approx(100 * (0.065 + 0.1 + 0.03) / 9)
    # daytime measured steps 2, 3: one inside [P10, P90], one outside
    assert got["coverage_p10_p90_day_pct"] == pytest.approx(50.0)
    assert set(got) == {
        "mae_kw", "nmae_pct", "nmae_day_pct", "rmse_kw", "nrmse_day_pct",
        "pinball_q0.1_pct", "pinball_q0.5_pct", "pinball_q0.9_pct", "pinball_mean_pct", "coverage_p10_p90_day_pct",
    }  # fmt: skip


def test_score_normalises_per_park_capacity() -> None:
    """Normalised scores divide each park by its own capacity: the same 10 % error on a 10 kW and a 1000 kW park
    gives nMAE 10 %, while the kW MAE averages 1 kW and 100 kW."""
    pred = np.array([[[0, 6, 7]], [[0, 600, 700]]], dtype=np.float64)  # P50 = 6 and 600 kW
    target = np.array([[5.0], [500.0]])
    capacity = np.array([[10.0], [1000.0]])
    got = metrics.score(pred, target, capacity, np.ones((2, 1), bool), (0.1, 0.5, 0.9))
    assert got["mae_kw"] == pytest.approx((1 + 100) / 2)
    assert got["nmae_pct"] == pytest.approx(10.0)
    assert got["nmae_day_pct"] == pytest.approx(10.0)


def test_score_coverage_key_follows_levels() -> None:
    """With P5/P50/P95 the coverage row is named for the 5–95 band and uses those columns."""
    pred = np.array([[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]])
    target = np.array([[3.0, 3.5]])  # on the upper edge (inside), above (outside)
    got = metrics.score(pred, target, np.array([[10.0]]), np.ones((1, 2), bool), (0.05, 0.5, 0.95))
    assert got["coverage_p5_p95_day_pct"] == pytest.approx(50.0)
    assert "pinball_q0.05_pct" in got
    assert "pinball_q0.95_pct" in got
