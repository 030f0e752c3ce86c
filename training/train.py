"""The training loop: pinball loss, Adam, early stopping on the validation window, fixed seeds."""

from __future__ import annotations

import copy
import logging
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from pvcast.pv.features import ELEVATION_CHANNEL
from training.config import TrainConfig
from training.dataset import Dataset
from training.model import HybridQuantileLSTM, pinball_loss

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: HybridQuantileLSTM
    best_epoch: int
    best_validation_loss: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def set_seeds(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def tensors(data: Dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features, target fraction (NaN → 0) and the loss mask (measured and sun up)."""
    target = data.target_fraction
    mask = np.isfinite(target) & (data.features[..., ELEVATION_CHANNEL] > 0)
    return (
        torch.from_numpy(np.ascontiguousarray(data.features)),
        torch.from_numpy(np.nan_to_num(target).astype(np.float32)),
        torch.from_numpy(mask),
    )


def train_model(train: Dataset, validation: Dataset, config: TrainConfig) -> TrainResult:
    set_seeds(config.seed)
    torch.set_num_threads(config.threads)
    model = HybridQuantileLSTM(train.features.shape[-1], config.model)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=1)
    levels = torch.tensor(config.model.quantiles, dtype=torch.float32)
    train_t, val_t = tensors(train), tensors(validation)
    result = TrainResult(model=model, best_epoch=0, best_validation_loss=float("inf"))
    best_state, started = copy.deepcopy(model.state_dict()), time.perf_counter()
    for epoch in range(1, config.max_epochs + 1):
        train_loss = _epoch(model, optimiser, train_t, levels, config, epoch)
        val_loss = evaluate_loss(model, val_t, levels)
        scheduler.step(val_loss)
        result.history.append({"epoch": epoch, "train_pinball": train_loss, "validation_pinball": val_loss})
        improved = val_loss < result.best_validation_loss - 1e-6
        logger.info(
            "epoch %d: train pinball %.5f, validation pinball %.5f%s",
            epoch,
            train_loss,
            val_loss,
            " *" if improved else "",
        )
        if improved:
            result.best_epoch, result.best_validation_loss = epoch, val_loss
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - result.best_epoch >= config.patience:
            logger.info("early stop: no improvement for %d epochs", config.patience)
            break
    model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - started
    return result.__class__(
        model.eval(), result.best_epoch, result.best_validation_loss, result.history, result.seconds
    )


def _epoch(
    model: HybridQuantileLSTM,
    optimiser: torch.optim.Optimizer,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    levels: torch.Tensor,
    config: TrainConfig,
    epoch: int,
) -> float:
    model.train()
    features, target, mask = data
    order = torch.randperm(len(features))
    batches = range(0, len(order), config.batch_size)
    total, progress = 0.0, tqdm(batches, desc=f"epoch {epoch}", unit="batch", leave=False, disable=None)
    for start in progress:
        idx = order[start : start + config.batch_size]
        loss = pinball_loss(model.fractions(features[idx]), target[idx], mask[idx], levels)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        value = loss.item()
        total += value * len(idx)
        progress.set_postfix(pinball=f"{value:.4f}")
    return total / len(order)


@torch.no_grad()
def evaluate_loss(
    model: HybridQuantileLSTM, data: tuple[torch.Tensor, torch.Tensor, torch.Tensor], levels: torch.Tensor
) -> float:
    model.eval()
    features, target, mask = data
    losses, weights = [], []
    for start in range(0, len(features), 1024):
        sl = slice(start, start + 1024)
        losses.append(float(pinball_loss(model.fractions(features[sl]), target[sl], mask[sl], levels)))
        weights.append(float(mask[sl].sum()))
    return float(np.average(losses, weights=weights)) if sum(weights) else float("nan")


@torch.no_grad()
def predict_torch(model: HybridQuantileLSTM, data: Dataset, batch: int = 1024) -> np.ndarray:
    """The served forecast [kW] computed by torch (for parity checks)."""
    model.eval()
    parts = []
    for start in range(0, len(data), batch):
        sl = slice(start, start + batch)
        parts.append(model(torch.from_numpy(data.features[sl]), torch.from_numpy(data.capacity_ac_kw[sl])).numpy())
    return np.concatenate(parts)
