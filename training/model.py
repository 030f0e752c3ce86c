"""The LSTM/physics hybrid quantile model.

A bidirectional LSTM reads the whole forecast horizon (weather, physics, time encodings, the latest
measurement) and corrects the physics power estimate: the central quantile is anchored on the pvlib power
estimate plus a learned residual, and the other quantiles are built outwards from it with positive
(softplus) gaps, so quantiles are monotone by construction.

``forward`` is the complete served forecast — the exported ONNX graph is exactly this function:
fractions of capacity → kW, clipped to [0, capacity_ac_kw], zero while the sun is below the horizon.
``fractions`` is the same network before clipping; training minimises the pinball loss on it (clipping a
quantile into [0, capacity] never increases the pinball loss of a target inside that range, so the served
output scores at least as well as what was trained, while gradients stay alive below zero).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pvcast.pv.features import ELEVATION_CHANNEL, PHYSICS_CHANNEL
from training.config import ModelConfig


class HybridQuantileLSTM(nn.Module):
    def __init__(self, n_features: int, config: ModelConfig) -> None:
        super().__init__()
        self.quantile_levels = tuple(config.quantiles)
        self.anchor = min(range(len(config.quantiles)), key=lambda i: abs(config.quantiles[i] - 0.5))
        hidden = config.hidden_size
        self.embed = nn.Sequential(nn.Linear(n_features, hidden), nn.GELU())
        self.lstm = nn.LSTM(
            hidden,
            hidden,
            num_layers=config.num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.head = nn.Sequential(
            nn.Linear(2 * hidden + n_features, hidden), nn.GELU(), nn.Linear(hidden, len(config.quantiles))
        )
        if config.initial_gap is not None:
            self._initialise_gaps(config.initial_gap)

    @torch.no_grad()
    def _initialise_gaps(self, gap: float) -> None:
        """Start adjacent quantiles ``gap`` apart: softplus(bias) = gap for every output but the anchor."""
        output = self.head[-1]
        assert isinstance(output, nn.Linear)
        output.bias.fill_(math.log(math.expm1(gap)))
        output.bias[self.anchor] = 0.0

    def fractions(self, features: Tensor) -> Tensor:
        """Monotone quantiles as fractions of AC capacity, before clipping: (batch, steps, quantiles)."""
        encoded, _ = self.lstm(self.embed(features))
        raw = self.head(torch.cat([encoded, features], dim=-1))
        center = features[..., PHYSICS_CHANNEL : PHYSICS_CHANNEL + 1] + raw[..., self.anchor : self.anchor + 1]
        below = nn.functional.softplus(raw[..., : self.anchor])
        above = nn.functional.softplus(raw[..., self.anchor + 1 :])
        lower = center - torch.flip(torch.cumsum(torch.flip(below, [-1]), -1), [-1])
        upper = center + torch.cumsum(above, -1)
        return torch.cat([lower, center, upper], dim=-1)

    def forward(self, features: Tensor, capacity_ac_kw: Tensor) -> Tensor:
        """The served forecast [kW]: (batch, steps, quantiles)."""
        return postprocess(self.fractions(features), features, capacity_ac_kw)


def postprocess(fractions: Tensor, features: Tensor, capacity_ac_kw: Tensor) -> Tensor:
    """Fractions → kW within [0, capacity_ac_kw], zero when the sun is down. Monotonicity is preserved."""
    capacity = capacity_ac_kw.unsqueeze(-1)
    power = torch.minimum(torch.clamp(fractions * capacity, min=0.0), capacity)
    sun_up = (features[..., ELEVATION_CHANNEL : ELEVATION_CHANNEL + 1] > 0).to(power.dtype)
    return power * sun_up


def pinball_loss(fractions: Tensor, target: Tensor, mask: Tensor, quantiles: Tensor) -> Tensor:
    """Mean pinball (quantile) loss over unmasked (sample, step) cells and all quantiles."""
    error = target.unsqueeze(-1) - fractions
    loss = torch.maximum(quantiles * error, (quantiles - 1) * error)
    weights = mask.unsqueeze(-1).to(loss.dtype)
    return (loss * weights).sum() / (weights.sum() * len(quantiles)).clamp(min=1.0)
