"""Baselines and the degraded mode (pvcast/baselines.py): one implementation, checked on values worked by hand.

The service's degraded answer, the evaluation's smart-persistence baseline and the benchmark's physics-only
method all run this code, so these tests pin its behaviour directly: point forecasts from the tensor's
channels, residual quantiles per bin, the model's post-processing (sorted, within [0, capacity], zero at
night, dtype kept), and the degraded mode built from a model's metadata with and without stored baselines.
"""

from __future__ import annotations

import numpy as np
import pytest

from pvcast import baselines as bl
from pvcast.contract import FeatureSpec, ModelContract, ModelMetadata
from pvcast.pv.features import ELEVATION_CHANNEL, FEATURE_NAMES

CLEAR, CSI, HAS = (FEATURE_NAMES.index(n) for n in ("physics_power_clearsky", "measured_csi", "measured_available"))


def tensor(rows: list[dict[str, float]]) -> np.ndarray:
    """A (len(rows), 1, channels) tensor: one step per row, the named channels set, the sun up unless said."""
    features = np.zeros((len(rows), 1, len(FEATURE_NAMES)), dtype=np.float32)
    for i, row in enumerate(rows):
        features[i, 0, ELEVATION_CHANNEL] = row.get("elevation", 30.0)
        for name, value in row.items():
            if name != "elevation":
                features[i, 0, FEATURE_NAMES.index(name)] = value
    return features


def metadata(baselines: dict[str, object], levels: int = 3) -> ModelMetadata:
    contract = ModelContract.of(FEATURE_NAMES, [0.1, 0.5, 0.9][:levels], FeatureSpec())
    windows = {"start": "2026-01-01T00:00:00+00:00", "end": "2026-02-01T00:00:00+00:00"}
    return ModelMetadata(
        **contract.model_dump(),
        training_window=windows,
        test_window=windows,
        metrics={},
        parks=[],
        code_version="test",
        baselines=baselines,
    )


def test_persistence_point_uses_the_measured_index_or_the_fallback() -> None:
    """Clear-sky index of the latest measurement × clear-sky physics power; without a measurement, the fallback."""
    features = tensor(
        [
            {"physics_power_clearsky": 0.8, "measured_csi": 0.5, "measured_available": 1.0},
            {"physics_power_clearsky": 0.8, "measured_csi": 0.5, "measured_available": 0.0},
        ]
    )
    np.testing.assert_allclose(bl.persistence_point(features, 0.9)[:, 0], [0.4, 0.72], rtol=1e-6)
    assert bl.mean_measured_csi(features) == pytest.approx(0.5)
    assert bl.mean_measured_csi(features[1:]) == 1.0  # no measurement at all: a clear sky


def test_residual_quantiles_add_the_quantiles_of_their_bin() -> None:
    """Errors are binned by the point forecast; a forecast gets its bin's error quantiles added."""
    point = np.array([[0.1, 0.1, 0.1, 0.9, 0.9, 0.9]], dtype=np.float32)
    target = point + np.array([[-0.1, 0.0, 0.1, -0.3, 0.0, 0.3]], dtype=np.float32)
    fitted = bl.ResidualQuantiles.fit(point, target, np.ones_like(point, dtype=bool), [0.0, 0.5, 1.0], bins=2)
    low, high = fitted.predict(np.array([0.1], np.float32))[0], fitted.predict(np.array([0.9], np.float32))[0]
    np.testing.assert_allclose(low, [0.0, 0.1, 0.2], atol=1e-6)
    np.testing.assert_allclose(high, [0.6, 0.9, 1.2], atol=1e-6)
    again = bl.ResidualQuantiles.from_dict(fitted.to_dict())
    np.testing.assert_array_equal(again.edges, fitted.edges)
    np.testing.assert_array_equal(again.table, fitted.table)


def test_postprocess_sorts_scales_clips_and_zeroes_the_night() -> None:
    """Crossed levels are sorted, fractions become kW, values leave [0, capacity] clipped, night is 0."""
    features = tensor([{}, {"elevation": -5.0}])
    fractions = np.array([[[0.6, -0.2, 1.4]], [[0.3, 0.5, 0.7]]], dtype=np.float32)
    capacity = np.array([[1000.0], [1000.0]], dtype=np.float32)
    out = bl.postprocess(fractions, features, capacity)
    np.testing.assert_array_equal(out[0, 0], [0.0, 600.0, 1000.0])
    np.testing.assert_array_equal(out[1, 0], [0.0, 0.0, 0.0])
    assert out.dtype == np.float32


def test_postprocess_without_capacity_keeps_fractions_and_float64() -> None:
    """The benchmarks score fractions in float64: the default capacity 1 keeps both."""
    features = tensor([{}])
    out = bl.postprocess(np.array([[[1.2, 0.25, -0.1]]]), features)
    np.testing.assert_array_equal(out[0, 0], [0.0, 0.25, 1.0])
    assert out.dtype == np.float64


def test_baselines_forecast_in_kw_through_the_models_post_processing() -> None:
    """The physics-only baseline is the physics channel plus its errors; both baselines come back in kW."""
    errors = bl.ResidualQuantiles(np.array([0.0, 1.0]), np.array([[-0.1, 0.0, 0.1]]))
    baselines = bl.Baselines(physics=errors, persistence=errors, fallback_csi=1.0)
    features = tensor([{"physics_power": 0.5, "physics_power_clearsky": 0.95}])
    capacity = np.array([[200.0]], dtype=np.float32)
    np.testing.assert_allclose(baselines.physics_kw(features, capacity)[0, 0], [80.0, 100.0, 120.0], rtol=1e-6)
    np.testing.assert_allclose(baselines.persistence_kw(features, capacity)[0, 0], [170.0, 190.0, 200.0], rtol=1e-6)
    again = bl.Baselines.from_dict(baselines.to_dict())
    np.testing.assert_array_equal(again.physics_kw(features, capacity), baselines.physics_kw(features, capacity))


def test_degraded_mode_is_smart_persistence_with_the_models_fitted_errors() -> None:
    """Built from a model's metadata, the degraded mode answers smart persistence with the stored error
    quantiles and fallback index: the worked example, and zero at night."""
    errors = bl.ResidualQuantiles(np.array([0.0, 0.5, 1.0]), np.array([[-0.05, 0.0, 0.05], [-0.2, 0.0, 0.1]]))
    stored = bl.Baselines(physics=errors, persistence=errors, fallback_csi=0.5).to_dict()
    degraded = bl.DegradedMode.of(metadata(stored))
    features = tensor(
        [
            {"physics_power_clearsky": 0.8},  # no measurement: 0.5 × 0.8 = 0.4, first bin
            {"physics_power_clearsky": 0.8, "measured_csi": 1.0, "measured_available": 1.0},  # 0.8, second bin
            {"physics_power_clearsky": 0.8, "elevation": -1.0},
        ]
    )
    out = degraded.predict_kw(features, np.full((3, 1), 100.0, dtype=np.float32))
    np.testing.assert_allclose(out[:, 0], [[35.0, 40.0, 45.0], [60.0, 80.0, 90.0], [0.0, 0.0, 0.0]], rtol=1e-6)


def test_a_model_stored_without_baselines_degrades_to_the_point_forecast() -> None:
    """No stored baselines: every level is the clear-sky persistence point forecast at the index 1."""
    degraded = bl.DegradedMode.of(metadata({}))
    features = tensor([{"physics_power_clearsky": 0.6}, {"physics_power_clearsky": 0.6, "elevation": -1.0}])
    out = degraded.predict_kw(features, np.full((2, 1), 1000.0, dtype=np.float32))
    np.testing.assert_allclose(out[0, 0], [600.0, 600.0, 600.0], rtol=1e-6)
    np.testing.assert_array_equal(out[1, 0], [0.0, 0.0, 0.0])


def test_physics_baseline_fit_uses_daylight_cells_only() -> None:
    """fit_physics (the benchmarks' physics method) ignores night cells: a huge night error changes nothing."""
    day = tensor([{"physics_power": p} for p in (0.2, 0.4, 0.6, 0.8)])
    night = tensor([{"physics_power": 0.5, "elevation": -3.0}])
    target = np.array([[0.25], [0.35], [0.65], [0.7]], dtype=np.float32)
    alone = bl.fit_physics(day, target, [0.5])
    with_night = bl.fit_physics(
        np.concatenate([day, night]), np.concatenate([target, [[9.0]]]).astype(np.float32), [0.5]
    )
    np.testing.assert_array_equal(alone.edges, with_night.edges)
    np.testing.assert_array_equal(alone.table, with_night.table)
    assert np.abs(alone.table).max() < 0.2  # the night's error of 8.5 is nowhere
