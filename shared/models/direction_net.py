"""The BiLSTM over the last 60 sessions: one head with 3 classes for each horizon.

Weights are stored as safetensors; the architecture is rebuilt from its config (params.json).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

N_CLASSES = 3
# The net is small: one intra-op thread beats two, and does not collapse when other
# processes compete for the cores (OpenMP spin-waits made 2 threads ~5x slower under load).
TORCH_THREADS = 1


@dataclass(frozen=True)
class NetConfig:
    n_features: int
    n_horizons: int
    hidden: int = 32
    dropout: float = 0.1

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


class DirectionNet(nn.Module):
    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(config.n_features, config.hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * config.hidden, config.n_horizons * N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, rows, features) -> logits (batch, horizons, classes)."""
        out, _ = self.lstm(x)
        pooled = torch.cat([out[:, -1, : self.config.hidden], out[:, 0, self.config.hidden :]], 1)
        return self.head(self.dropout(pooled)).view(-1, self.config.n_horizons, N_CLASSES)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.use_deterministic_algorithms(True)


def fit(
    x: np.ndarray,
    y: np.ndarray,
    config: NetConfig,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
) -> DirectionNet:
    """Train on normalised sequences ``x`` (n, rows, features) and labels ``y`` (n, horizons)
    with -1 for an unknown label (masked out of the loss)."""
    seed_everything(seed)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    try:
        return _fit(
            x,
            y,
            config,
            epochs=epochs,
            seed=seed,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _fit(
    x: np.ndarray,
    y: np.ndarray,
    config: NetConfig,
    *,
    epochs: int,
    seed: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
) -> DirectionNet:
    net = DirectionNet(config)
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-1)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(xs), generator=generator)
        for start in range(0, len(xs), batch_size):
            idx = order[start : start + batch_size]
            logits = net(xs[idx])
            loss = loss_fn(logits.reshape(-1, N_CLASSES), ys[idx].reshape(-1))
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step()
    net.eval()
    return net


def predict_proba(net: DirectionNet, x: np.ndarray) -> np.ndarray:
    """(n, horizons, classes) softmax probabilities."""
    with torch.inference_mode():
        return torch.softmax(net(torch.from_numpy(np.ascontiguousarray(x))), dim=-1).numpy()


def save(net: DirectionNet, path: Path) -> None:
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))


def load(path: Path, config: NetConfig) -> DirectionNet:
    net = DirectionNet(config)
    net.load_state_dict(load_file(str(path)))
    net.eval()
    return net
