"""The LSTM/physics hybrid (training/model.py) against the physics it must respect.

Two kinds of model are checked:

* a freshly initialised network (fixed seed) on random and adversarial inputs, including a head scaled up so
  its raw outputs are in the thousands: the guarantees hold *by construction*, whatever the weights;
* the model trained by the default configuration on the demo data (session fixture ``trained``), on its
  held-out window: the same guarantees, plus behaviour that has to be learnt (monotone in irradiance).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from feature_repo.store import open_store, read_offline
from pvcast.contract import FeatureSpec
from pvcast.pv.features import ELEVATION_CHANNEL, FEATURE_NAMES, PHYSICS_CHANNEL, build_inputs
from training import metrics
from training.config import ModelConfig
from training.model import HybridQuantileLSTM, pinball_loss

N_FEATURES = len(FEATURE_NAMES)

LEVELS_3 = (0.1, 0.5, 0.9)
LEVELS_99 = tuple(round(i / 100, 2) for i in range(1, 100))


def fresh_model(levels: tuple[float, ...], seed: int = 0, head_scale: float = 1.0) -> HybridQuantileLSTM:
    """An untrained network; ``head_scale`` multiplies the last layer so raw outputs become large."""
    torch.manual_seed(seed)
    model = HybridQuantileLSTM(N_FEATURES, ModelConfig(quantiles=levels, hidden_size=16, num_layers=2)).eval()
    with torch.no_grad():
        model.head[-1].weight.mul_(head_scale)
        model.head[-1].bias.mul_(head_scale)
    return model


def adversarial_inputs(seed: int = 1, n: int = 6, steps: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """Wide random features (σ = 5), a physics channel far outside [0, 1], elevations of both signs with
    exact zeros, capacities from 1 kW to 5 MW."""
    gen = torch.Generator().manual_seed(seed)
    x = 5 * torch.randn(n, steps, N_FEATURES, generator=gen)
    x[..., PHYSICS_CHANNEL] = 3 * torch.randn(n, steps, generator=gen)
    x[:, ::7, ELEVATION_CHANNEL] = 0.0  # the boundary: sun exactly on the horizon counts as night
    capacity = torch.tensor([[1.0], [37.5], [400.0], [1200.0], [4000.0], [5000.0]])[:n]
    return x, capacity


def raw_head(model: HybridQuantileLSTM, x: torch.Tensor) -> torch.Tensor:
    """The unconstrained head output (before the monotone construction)."""
    encoded, _ = model.lstm(model.embed(x))
    return model.head(torch.cat([encoded, x], dim=-1))


def assert_monotone(q: torch.Tensor | np.ndarray) -> None:
    """p_i <= p_{i+1} along the last axis, every cell (no tolerance)."""
    q = torch.as_tensor(q)
    gaps = q[..., 1:] - q[..., :-1]
    assert bool((gaps >= 0).all()), f"quantiles cross: most negative gap {float(gaps.min())}"


# --- by construction: fresh networks ---------------------------------------------------------------------


@pytest.mark.parametrize("levels", [LEVELS_3, LEVELS_99], ids=["3-levels", "99-levels"])
@pytest.mark.parametrize("head_scale", [1.0, 1000.0], ids=["plain", "large-raw"])
def test_fresh_model_quantiles_are_monotone(levels: tuple[float, ...], head_scale: float) -> None:
    """Fractions and the served kW output are non-decreasing across levels everywhere, even though the raw
    head output itself is NOT ordered and (scaled) reaches thousands: monotone by construction, not by luck."""
    model = fresh_model(levels, head_scale=head_scale)
    x, capacity = adversarial_inputs()
    with torch.no_grad():
        raw = raw_head(model, x)
        fractions = model.fractions(x)
        power = model(x, capacity)
    assert fractions.shape == power.shape == (x.shape[0], x.shape[1], len(levels))
    assert bool((raw[..., 1:] < raw[..., :-1]).any()), "precondition: the raw head output is unordered"
    if head_scale > 1:
        assert float(raw.abs().max()) > 1000, "precondition: raw outputs are large"
    assert_monotone(fractions)
    assert_monotone(power)


@pytest.mark.parametrize("levels", [LEVELS_3, LEVELS_99], ids=["3-levels", "99-levels"])
def test_fresh_model_output_bounded_and_zero_at_night(levels: tuple[float, ...]) -> None:
    """Output in [0, capacity_ac_kw]; exactly 0 wherever solar_elevation <= 0 (including exactly 0). The
    unclipped fractions do leave [0, 1] on these inputs, so both clips are exercised."""
    model = fresh_model(levels, head_scale=1000.0)
    x, capacity = adversarial_inputs()
    with torch.no_grad():
        fractions = model.fractions(x)
        power = model(x, capacity)
    assert bool((fractions < 0).any()) and bool((fractions > 1).any()), "precondition: fractions outside [0, 1]"
    cap = capacity[:, None, :]  # (n, 1, 1) against (n, steps, q)
    assert bool((power >= 0).all())
    assert bool((power <= cap).all())
    night = x[..., ELEVATION_CHANNEL] <= 0
    assert bool(night.any()) and bool((~night).any())
    assert bool((power[night] == 0).all())
    # and during the day the clip is exact: min(max(f·c, 0), c)
    day_expected = torch.minimum(torch.clamp(fractions * cap, min=0.0), cap.expand_as(fractions))
    assert torch.equal(power[~night], day_expected[~night])


def test_fresh_model_linear_in_capacity() -> None:
    """Doubling capacity_ac_kw doubles the output exactly (the bounds scale with it too); where the fraction
    lies inside (0, 1) the output is fraction × capacity; tripling scales by 3 within float32 rounding."""
    model = fresh_model(LEVELS_3, head_scale=3.0)
    x, capacity = adversarial_inputs()
    with torch.no_grad():
        fractions = model.fractions(x)
        one, two, three = (model(x, k * capacity) for k in (1.0, 2.0, 3.0))
    assert torch.equal(two, 2 * one)
    torch.testing.assert_close(three, 3 * one, rtol=1e-6, atol=1e-4)
    day = (x[..., ELEVATION_CHANNEL] > 0)[..., None].expand_as(fractions)
    inside = day & (fractions > 0) & (fractions < 1)
    assert bool(inside.any())
    torch.testing.assert_close(one[inside], (fractions * capacity[:, None, :])[inside], rtol=1e-6, atol=0.0)


def test_central_quantile_is_anchored_on_physics() -> None:
    """Shifting the physics_power channel by δ with the network's correction held fixed moves the P50 fraction
    by exactly δ: the median is physics + learned residual."""
    model = fresh_model(LEVELS_3)
    x, _ = adversarial_inputs(n=2)
    assert model.anchor == 1
    with torch.no_grad():
        raw = raw_head(model, x)
        fractions = model.fractions(x)
    torch.testing.assert_close(fractions[..., 1], x[..., PHYSICS_CHANNEL] + raw[..., 1])


# --- pinball loss ---------------------------------------------------------------------------------------


def _reference_pinball(fractions: np.ndarray, target: np.ndarray, mask: np.ndarray, levels: tuple[float, ...]) -> float:
    """Mean over levels of metrics.pinball (equal cell counts per level, so this is the overall mean)."""
    return float(np.mean([metrics.pinball(fractions[..., i], target, q, mask) for i, q in enumerate(levels)]))


def test_pinball_loss_equals_metrics_pinball() -> None:
    """The training loss is the evaluation metric: same value on the same masked data (3 and 99 levels)."""
    rng = np.random.default_rng(3)
    for levels in (LEVELS_3, LEVELS_99):
        fractions = np.sort(rng.normal(0.4, 0.3, size=(5, 20, len(levels))), axis=-1)
        target = rng.uniform(0, 1, size=(5, 20))
        mask = rng.random((5, 20)) > 0.35
        loss = pinball_loss(
            torch.from_numpy(fractions),
            torch.from_numpy(target),
            torch.from_numpy(mask),
            torch.tensor(levels, dtype=torch.float64),
        )
        assert float(loss) == pytest.approx(_reference_pinball(fractions, target, mask, levels), rel=1e-12)


def test_pinball_loss_ignores_masked_cells() -> None:
    """Arbitrary values in masked-out cells (target and forecast ±1e6) leave the loss unchanged; an all-False
    mask gives 0, not NaN."""
    rng = np.random.default_rng(4)
    fractions = rng.normal(0.5, 0.2, size=(4, 12, 3))
    target = rng.uniform(0, 1, size=(4, 12))
    mask = rng.random((4, 12)) > 0.5
    levels = torch.tensor(LEVELS_3, dtype=torch.float64)

    def loss(f: np.ndarray, t: np.ndarray, m: np.ndarray) -> float:
        return float(pinball_loss(torch.from_numpy(f), torch.from_numpy(t), torch.from_numpy(m), levels))

    base = loss(fractions, target, mask)
    f2, t2 = fractions.copy(), target.copy()
    f2[~mask] = -1e6
    t2[~mask] = 1e6
    assert loss(f2, t2, mask) == pytest.approx(base, rel=1e-12)
    assert base == pytest.approx(_reference_pinball(fractions, target, mask, LEVELS_3), rel=1e-12)
    assert loss(fractions, target, np.zeros_like(mask)) == 0.0


TINY_EPOCH = """
import numpy as np
from training.config import ModelConfig, TrainConfig
from training.dataset import Dataset
from training.train import train_model

def tiny(seed, n=8):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 96, 25)).astype(np.float32)
    features[..., 8] = np.abs(features[..., 8])  # solar_elevation > 0: every cell counts
    return Dataset(np.array(["p"] * n, dtype=object), np.arange(n, dtype=np.int64) * 3600, features,
                   np.full((n, 1), 100.0, np.float32), np.zeros((n, 96), np.int64),
                   rng.uniform(0, 100, size=(n, 96)).astype(np.float32))

config = TrainConfig(model=ModelConfig(hidden_size=4, num_layers=1), max_epochs=1, batch_size=4, threads=1)
assert train_model(tiny(0), tiny(1), config).best_epoch == 1
"""


def test_training_loop_emits_no_warnings() -> None:
    """One epoch of the real training loop, in a FRESH interpreter with warnings as errors, raises no warning.
    (A subprocess, because torch emits this kind of warning once per process: an earlier training run in the
    session would hide it.)"""
    assert FEATURE_NAMES.index("solar_elevation") == 8 and N_FEATURES == 25  # the script's hard-coded layout
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", TINY_EPOCH],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


# --- the trained model ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_outputs(trained: Any) -> dict[str, torch.Tensor]:
    """The trained model's fractions and kW output on its held-out window."""
    model, test = trained.result.model, trained.test
    x, capacity = torch.from_numpy(test.features), torch.from_numpy(test.capacity_ac_kw)
    with torch.no_grad():
        return {"x": x, "capacity": capacity, "fractions": model.fractions(x), "power": model(x, capacity)}


@pytest.mark.integration
def test_trained_model_monotone_bounded_zero_at_night(trained_outputs: dict[str, torch.Tensor]) -> None:
    """On the held-out window: P10 <= P50 <= P90 everywhere, within [0, capacity], exactly 0 at night, and not
    trivially zero in daylight."""
    x, capacity, power = trained_outputs["x"], trained_outputs["capacity"], trained_outputs["power"]
    assert_monotone(power)
    assert bool((power >= 0).all())
    assert bool((power <= capacity[:, None, :]).all())
    night = x[..., ELEVATION_CHANNEL] <= 0
    assert bool(night.any())
    assert bool((power[night] == 0).all())
    assert float(power[~night][..., 1].mean()) > 0.05 * float(capacity.min())


@pytest.mark.integration
def test_trained_model_linear_in_capacity(trained: Any, trained_outputs: dict[str, torch.Tensor]) -> None:
    """Doubling every park's capacity doubles the trained model's output exactly; halving halves it."""
    model, x, capacity, power = (
        trained.result.model,
        trained_outputs["x"],
        trained_outputs["capacity"],
        trained_outputs["power"],
    )
    with torch.no_grad():
        assert torch.equal(model(x, 2 * capacity), 2 * power)
        assert torch.equal(model(x, capacity / 2), power / 2)


@pytest.mark.integration
def test_trained_pinball_loss_equals_metrics_pinball(trained: Any, trained_outputs: dict[str, torch.Tensor]) -> None:
    """On the real held-out data (NaN labels masked as in training) the loss equals the metric."""
    test = trained.test
    target = test.target_fraction
    mask = np.isfinite(target) & (test.features[..., ELEVATION_CHANNEL] > 0)
    assert 0 < mask.mean() < 1
    levels = tuple(trained.result.model.quantile_levels)
    fractions = trained_outputs["fractions"]
    loss = pinball_loss(
        fractions, torch.from_numpy(np.nan_to_num(target)), torch.from_numpy(mask), torch.tensor(levels)
    )
    reference = _reference_pinball(
        fractions.numpy().astype(np.float64), np.nan_to_num(target).astype(np.float64), mask, levels
    )
    assert float(loss) == pytest.approx(reference, rel=1e-5)


# --- monotone in irradiance (learnt, not constructed) -----------------------------------------------------

IRRADIANCE_SCALES = (0.25, 0.5, 0.75, 1.0)
ENERGY_TOLERANCE_H = 0.01
"""Allowed decrease of daily P50 energy between consecutive scale factors: 1 % of one full-capacity hour
(capacity_ac_kw × 0.01 h), i.e. numerical noise, far below a real reversal."""


def _rows(frame: pd.DataFrame, scale: float) -> dict[str, list[Any]]:
    """Feature-service values as build_inputs takes them (missing → None), irradiance arrays × ``scale``."""
    rows = {
        c: [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in frame[c].tolist()]
        for c in frame.columns
    }
    for name in ("ghi", "dni", "dhi"):
        rows[name] = [np.asarray(a, dtype=np.float32) * np.float32(scale) for a in rows[name]]
    return rows


def _sample_pairs(test: Any) -> list[tuple[str, int]]:
    """Per park, forecasts issued at 00 and 12 UTC on four days spread over the held-out window."""
    pairs = []
    for park in sorted(set(test.park_id)):
        times = np.unique(test.issued_at[(test.park_id == park) & (test.issued_at % 43200 == 0)])
        pairs += [(park, int(t)) for t in times[np.linspace(0, len(times) - 1, 4).astype(int)]]
    return pairs


@pytest.mark.integration
def test_trained_model_monotone_in_irradiance(trained: Any, demo_store: Any) -> None:
    """Rebuilding the inputs (through the shared build_inputs) from point-in-time rows whose forecast ghi, dni and
    dhi are scaled by 0.25/0.5/0.75/1 never lowers the daily (24 h) P50 energy, for any sample (tolerance:
    ENERGY_TOLERANCE_H of capacity). At scale 1 the rebuilt inputs are the held-out inputs themselves."""
    test, model = trained.test, trained.result.model
    pairs = _sample_pairs(test)
    assert len(pairs) >= 9
    frame = read_offline(
        open_store(demo_store.config), [p for p, _ in pairs], [pd.Timestamp(t, unit="s", tz="UTC") for _, t in pairs]
    )
    issued = np.array([t for _, t in pairs], dtype=np.int64)
    spec = FeatureSpec(step_seconds=900, horizon_steps=test.features.shape[1])
    energy = []
    for scale in IRRADIANCE_SCALES:
        inputs = build_inputs(_rows(frame, scale), issued, spec)
        assert inputs.weather_ok.all() and inputs.park_known.all()
        if scale == 1.0:
            index = {(p, int(t)): i for i, (p, t) in enumerate(zip(test.park_id, test.issued_at, strict=True))}
            rows = [index[pair] for pair in pairs]
            np.testing.assert_allclose(inputs.features, test.features[rows], rtol=1e-6, atol=1e-6)
        with torch.no_grad():
            power = model(torch.from_numpy(inputs.features), torch.from_numpy(inputs.capacity_ac_kw)).numpy()
        energy.append(power[..., model.anchor].sum(axis=1) * spec.step_seconds / 3600)  # kWh per sample
    energy_kwh = np.stack(energy, axis=1)  # (samples, scales)
    capacity = inputs.capacity_ac_kw[:, 0]
    assert (energy_kwh[:, -1] > 0).all(), "precondition: every sample has daylight energy at scale 1"
    drops = np.diff(energy_kwh, axis=1) / capacity[:, None]  # [h] of full capacity
    assert drops.min() >= -ENERGY_TOLERANCE_H, f"P50 energy falls with more irradiance: {drops.min():.4f} h of capacity"
    # and the response is material, not flat: a quarter of the irradiance gives clearly less energy
    assert (energy_kwh[:, 0] < 0.8 * energy_kwh[:, -1]).all()
