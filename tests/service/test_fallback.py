"""The degraded-mode forecast (service/fallback.py) equals the training baseline it stands for
(training/baselines.py: smart persistence + residual quantiles + the model's post-processing)."""

from __future__ import annotations

import numpy as np

from feature_repo.features import ELEVATION_CHANNEL, FEATURE_NAMES
from service.fallback import Fallback
from training import baselines as bl
from training.evaluate import Baselines


def _features(rng: np.random.Generator, n: int = 64, steps: int = 96) -> np.ndarray:
    features = rng.uniform(0, 1, (n, steps, len(FEATURE_NAMES))).astype(np.float32)
    features[..., FEATURE_NAMES.index("measured_available")] = rng.integers(0, 2, (n, 1))
    features[..., ELEVATION_CHANNEL] = rng.uniform(-0.5, 0.5, (n, steps))  # night and day
    return features


def test_fallback_equals_the_training_baseline() -> None:
    """Same point forecast, same quantiles, same kW after post-processing, for a fitted residual table."""
    rng = np.random.default_rng(3)
    train = _features(rng)
    target = rng.uniform(0, 1, train.shape[:2]).astype(np.float32)
    fitted = Baselines(
        physics=bl.ResidualQuantiles.fit(
            bl.physics_point(train), target, train[..., ELEVATION_CHANNEL] > 0, [0.1, 0.5, 0.9]
        ),
        persistence=bl.ResidualQuantiles.fit(
            bl.persistence_point(train, 0.7), target, train[..., ELEVATION_CHANNEL] > 0, [0.1, 0.5, 0.9]
        ),
        fallback_csi=0.7,
    )
    fallback = Fallback.from_metadata(fitted.to_dict(), 3)
    features, capacity = _features(rng), rng.uniform(100, 5000, (64, 1)).astype(np.float32)
    expected = bl.to_kw(fitted.persistence.predict(bl.persistence_point(features, 0.7)), features, capacity)
    np.testing.assert_array_equal(fallback.predict_kw(features, capacity), expected)
    assert (expected[features[..., ELEVATION_CHANNEL] <= 0] == 0).all()
    assert expected.max() > 0


def test_model_without_baselines_falls_back_to_the_point_forecast() -> None:
    """No stored baselines: every quantile is the clear-sky persistence point forecast (in kW)."""
    rng = np.random.default_rng(4)
    features, capacity = _features(rng), np.full((64, 1), 1000.0, dtype=np.float32)
    out = Fallback.from_metadata({}, 3).predict_kw(features, capacity)
    assert (out[..., 0] == out[..., 2]).all()
    day = features[..., ELEVATION_CHANNEL] > 0
    point = bl.persistence_point(features, 1.0)
    np.testing.assert_allclose(out[..., 1][day], np.clip(point * 1000, 0, 1000)[day], rtol=1e-6)
