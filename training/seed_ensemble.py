"""A seed ensemble of hybrids as ONE torch module, so it exports to ONE ONNX graph like a single hybrid.

Each member's ``forward`` is the complete served forecast (kW quantiles: monotone in the level, within
[0, capacity_ac_kw], zero while the sun is down); the mean of such forecasts keeps all three properties, so
the average needs no post-processing of its own. ``training.pipeline.as_one_module`` builds it for several
seeds (the GEFCom2014 harness trains three); ``pvcast train`` trains and serves one hybrid (training/model.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class MeanOfModels(nn.Module):
    """``forward(features, capacity_ac_kw)`` = the mean of the members' ``forward`` outputs."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("a mean of models needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, features: Tensor, capacity_ac_kw: Tensor) -> Tensor:
        return torch.stack([member(features, capacity_ac_kw) for member in self.members]).mean(dim=0)
