"""The FCN of Wang et al. (2017) for time-series classification, in PyTorch, and its trainer.

Three Conv1d-BatchNorm-ReLU blocks (kernels 8, 5, 3; 'same' padding), global average pooling
and a linear layer. The paper's widths are 128/256/128; `WIDTHS` is a quarter of that, which
trains on GunPoint or BasicMotions in seconds on two CPU cores.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

PAPER_WIDTHS = (128, 256, 128)
WIDTHS = (32, 64, 32)
KERNELS = (8, 5, 3)
BN_EPS = 1e-5


class FCN(nn.Module):
    """(N, C, T) -> (N, classes) logits; `block3` is the layer to explain."""

    def __init__(self, channels: int, classes: int, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        cin = channels
        for i, (width, kernel) in enumerate(zip(widths, KERNELS, strict=True), start=1):
            block = nn.Sequential(
                nn.Conv1d(cin, width, kernel, padding="same"),
                nn.BatchNorm1d(width, eps=BN_EPS),
                nn.ReLU(),
            )
            self.add_module(f"block{i}", block)
            cin = width
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(x)))
        return self.fc(x.mean(dim=2))


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread for the duration: tiny batches gain nothing from more, and on a busy
    machine OpenMP's spinning threads made a Keras training step 75x slower (1.9 s vs 25 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train(
    x: np.ndarray,
    y: np.ndarray,
    classes: int,
    epochs: int = 200,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    widths: tuple[int, ...] = WIDTHS,
) -> FCN:
    """An FCN trained with Adam on (N, C, T) float32 series and integer labels, seeded."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = FCN(x.shape[1], classes, widths)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    with one_thread(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
        _fit(model, optimizer, inputs, labels, epochs, batch_size, generator)
    return model.eval()


def _fit(model, optimizer, inputs, labels, epochs, batch_size, generator) -> None:
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
            loss.backward()
            optimizer.step()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
