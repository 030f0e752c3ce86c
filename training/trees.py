"""Quantile gradient-boosted trees on a model tensor: generic over the asset kind, pure numpy in, arrays out.

A :class:`TensorDesign` says how a per-step design matrix is built from the model's input tensor ``features``
[n, steps, channels] (any kind's ``FEATURE_NAMES``) and ``capacity_ac_kw`` [n, 1] — the graph's inputs, so the
same matrix can be rebuilt by ONNX operators (``training/onnx_trees.py``):

* the tensor's channels ``channels`` as they are;
* for each offset of ``offsets`` [steps], the ``context`` channels at step t + offset (edge-padded): the
  neighbouring hours of the weather (NWP timing errors);
* the ``context`` channels' mean over the horizon (over the steps where channel ``mean_mask`` > 0, or all
  steps), computed in float64 and rounded once (the graph does the same: a 1-ulp difference would flip a split);
* the capacity [kW], the one per-asset descriptor among the graph inputs.

:class:`QuantileTrees` fits one LightGBM booster with the quantile objective per fitted level on the rows a
method chooses, and predicts the fitted levels sorted (no crossing), interpolated linearly to any levels
(:func:`interpolation_matrix`: a constant non-negative matrix, so monotone). Thresholds are made float32-exact
(:func:`float32_thresholds`) so that an ONNX tree ensemble, which stores float32 thresholds, decides every row
as LightGBM does. Clipping, gating and kW are the method's business, not this module's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import lightgbm as lgb
import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

LEVELS_9: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
"""Fitted levels when more than :data:`MAX_FITTED_LEVELS` are served (23 fitted levels scored the same)."""
MAX_FITTED_LEVELS: Final = 9


def fitted_levels(levels: Sequence[float]) -> tuple[float, ...]:
    """The served levels when there are at most 9 (P10/P50/P90 → exactly those), else :data:`LEVELS_9`."""
    return tuple(float(q) for q in levels) if len(levels) <= MAX_FITTED_LEVELS else LEVELS_9


@dataclass(frozen=True)
class TensorDesign:
    """How the per-step design matrix is built from a model tensor (see the module docstring)."""

    feature_names: tuple[str, ...]
    channels: tuple[str, ...]
    context: tuple[str, ...] = ()
    offsets: tuple[int, ...] = ()
    horizon_mean: bool = True
    mean_mask: str | None = None
    capacity: bool = True

    def __post_init__(self) -> None:
        unknown = [c for c in (*self.channels, *self.context, *([self.mean_mask] if self.mean_mask else [])) if
                   c not in self.feature_names]  # fmt: skip
        if unknown:
            raise ValueError(f"channels not in the tensor: {unknown}")

    def index(self, names: Sequence[str]) -> list[int]:
        return [self.feature_names.index(n) for n in names]

    @property
    def n_columns(self) -> int:
        mean = len(self.context) if self.horizon_mean else 0
        return len(self.channels) + len(self.context) * len(self.offsets) + mean + int(self.capacity)

    def as_dict(self) -> dict[str, Any]:
        """For model metadata (without the tensor's channel list, which the contract already carries)."""
        return {k: v for k, v in asdict(self).items() if k != "feature_names"}

    def matrix(self, features: F32, capacity_ac_kw: F32) -> F32:
        """(n · steps, :attr:`n_columns`) float32."""
        n, steps, _ = features.shape
        context = features[..., self.index(self.context)]
        columns = [features[..., self.index(self.channels)]]
        columns += [shift_steps(context, offset) for offset in self.offsets]
        if self.horizon_mean:
            columns.append(np.broadcast_to(self.context_mean(features, context), context.shape))
        if self.capacity:
            columns.append(np.broadcast_to(capacity_ac_kw[:, None, :], (n, steps, 1)))
        return np.concatenate(columns, axis=-1).astype(np.float32).reshape(n * steps, self.n_columns)

    def context_mean(self, features: F32, context: F32) -> F32:
        """(n, 1, context) mean over the horizon (masked steps only), in float64, rounded once to float32."""
        if self.mean_mask is None:
            mask = np.ones((*features.shape[:2], 1))
        else:
            mask = (features[..., self.index([self.mean_mask])] > 0).astype(np.float64)
        total = (context.astype(np.float64) * mask).sum(axis=1, keepdims=True)
        return (total / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)).astype(np.float32)


def shift_steps(x: F32, offset: int) -> F32:
    """``x[:, t + offset]`` along axis 1, the first/last step repeated beyond the horizon's ends."""
    steps = x.shape[1]
    return x[:, np.clip(np.arange(steps) + offset, 0, steps - 1)]


@dataclass(frozen=True)
class TreeSettings:
    """LightGBM's settings (quantile objective, one booster per fitted level), the row budget and the seed."""

    levels: tuple[float, ...] = LEVELS_9
    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    feature_fraction: float = 0.7
    max_rows: int = 150_000
    """Training-row budget (0: all): a seeded uniform sample. Overlapping issue times repeat each valid time
    many times, so a sample loses little."""
    seed: int = 42
    threads: int = 1

    def params(self, level: float) -> dict[str, Any]:
        return {
            "objective": "quantile",
            "alpha": level,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "colsample_bytree": self.feature_fraction,
            "seed": self.seed,
            "num_threads": self.threads,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }


@dataclass
class QuantileTrees:
    """One float32-exact LightGBM booster per fitted level of ``settings.levels``."""

    design: TensorDesign
    settings: TreeSettings
    boosters: list[lgb.Booster] = field(default_factory=list)
    n_rows: int = 0

    def fit(self, features: F32, capacity_ac_kw: F32, target: F32, rows: NDArray[np.bool_]) -> QuantileTrees:
        """Fit on the cells (n, steps) where ``rows`` is true and ``target`` (n, steps) is finite."""
        x = self.design.matrix(features, capacity_ac_kw)
        y = target.reshape(-1)
        idx = np.flatnonzero(rows.reshape(-1) & np.isfinite(y))
        budget = self.settings.max_rows
        if 0 < budget < idx.size:
            idx = np.sort(np.random.default_rng(self.settings.seed).choice(idx, budget, replace=False))
        if idx.size == 0:
            raise ValueError("no training row: every target is missing or outside the rows to fit")
        self.n_rows = int(idx.size)
        xs, ys = x[idx], y[idx]
        self.boosters = [self._fit_level(xs, ys, q) for q in self.settings.levels]
        logger.info(
            "quantile trees: %d levels fitted on %d rows × %d columns", len(self.boosters), idx.size, x.shape[1]
        )
        return self

    def _fit_level(self, x: F32, y: F32, level: float) -> lgb.Booster:
        data = lgb.Dataset(x, y, params={"verbose": -1}, free_raw_data=True)
        booster = lgb.train(self.settings.params(level), data, num_boost_round=self.settings.n_estimators)
        return float32_thresholds(booster)

    def fitted(self, features: F32, capacity_ac_kw: F32) -> F64:
        """The fitted levels, sorted along the last axis: (n, steps, fitted levels)."""
        x = self.design.matrix(features, capacity_ac_kw)
        raw = np.stack([b.predict(x, num_threads=self.settings.threads) for b in self.boosters], axis=-1)
        return np.sort(raw.astype(np.float64), axis=-1).reshape((*features.shape[:2], len(self.boosters)))

    def predict(self, features: F32, capacity_ac_kw: F32, levels: Sequence[float]) -> F64:
        """``levels`` interpolated linearly from the sorted fitted levels: (n, steps, levels), monotone."""
        return self.fitted(features, capacity_ac_kw) @ interpolation_matrix(self.settings.levels, levels)

    def describe(self) -> dict[str, Any]:
        """Settings, fitted levels and design, for model metadata."""
        settings = asdict(self.settings) | {"levels": list(self.settings.levels)}
        return settings | {
            "library": f"lightgbm {lgb.__version__}",
            "rows": self.n_rows,
            "design": self.design.as_dict(),
        }


def interpolation_matrix(fitted: Sequence[float], wanted: Sequence[float]) -> F64:
    """(fitted, wanted) weights of linear interpolation between fitted levels (constant beyond the ends); one
    matrix product, with non-negative weights, so sorted fitted levels give sorted wanted levels."""
    eye = np.eye(len(fitted))
    return np.stack([np.interp(wanted, fitted, eye[i]) for i in range(len(fitted))])


def float32_thresholds(booster: lgb.Booster) -> lgb.Booster:
    """The same model with every split threshold t replaced by the largest float32 ≤ t.

    Inputs are float32, and for a float32 x, ``x <= t`` ⟺ ``x <= round_down_f32(t)``: no prediction changes.
    ONNX-ML's TreeEnsembleRegressor stores thresholds as float32 (the converter rounds to nearest), which
    otherwise sends ~1 % of rows down the other branch. Only public API: LightGBM's model text
    (``Booster.model_to_string``) is edited and read back with ``Booster(model_str=...)``.
    """
    lines = booster.model_to_string().split("\n")
    for i, line in enumerate(lines):
        if line.startswith("threshold="):
            exact = np.array(line.removeprefix("threshold=").split(" "), dtype=np.float64)
            single = exact.astype(np.float32)
            single = np.where(single.astype(np.float64) > exact, np.nextafter(single, np.float32(-np.inf)), single)
            lines[i] = "threshold=" + " ".join(repr(float(v)) for v in single)
    # the header's byte sizes of the tree blocks no longer hold: without them LightGBM parses sequentially
    return lgb.Booster(model_str="\n".join(line for line in lines if not line.startswith("tree_sizes=")))
