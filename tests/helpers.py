"""Helpers the tests share: IDX files made on the fly, the plain reference training loop, a widget's MIME type."""

from __future__ import annotations

import math
import struct

import torch

from kdutils.training import adam

#: The MIME type of a Jupyter widget in a notebook's outputs (a progress bar).
WIDGET = "application/vnd.jupyter.widget-view+json"
#: Five predictions over three classes, with their labels: right, unsure and wrong, very sure and wrong, ...
LOGITS = torch.tensor([
    [5.0, 0.0, 0.0],   # predicts 0, label 0: right
    [0.0, 1.0, 0.0],   # predicts 1, label 0: wrong, unsure
    [0.0, 0.0, 9.0],   # predicts 2, label 1: wrong, very sure
    [0.0, 7.0, 0.0],   # predicts 1, label 1: right
    [0.0, 4.0, 0.0],   # predicts 1, label 2: wrong, fairly sure
])
LABELS = torch.tensor([0, 0, 1, 1, 2])
#: Examples per split of the tiny IDX dataset of conftest.py's ``tiny_raw``.
SIZES = {"train": 60, "t10k": 20}


def idx_images(images: torch.Tensor) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", 0x0803, n, rows, cols) + images.to(torch.uint8).numpy().tobytes()


def idx_labels(labels: torch.Tensor) -> bytes:
    return struct.pack(">II", 0x0801, labels.shape[0]) + labels.to(torch.uint8).numpy().tobytes()


def reference_training(parameters, n: int, batch_loss, *, epochs: int, batch_size: int, seed: int,
                       lr: float = 1e-3, cosine: bool = False) -> list[float]:
    """A plain autograd loop over ``n`` examples with ``fit``'s batch order and optimizer; each epoch's mean loss.

    ``batch_loss(idx)`` returns the loss of the examples at ``idx``, to be back-propagated. ``cosine``
    decays the learning rate to zero over the run, one step per batch, as ``lr_schedule="cosine"``.
    """
    optimizer = adam(parameters, lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * math.ceil(n / batch_size))
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        order, total = torch.randperm(n, generator=generator), 0.0
        for begin in range(0, n, batch_size):
            idx = order[begin : begin + batch_size]
            loss = batch_loss(idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if cosine:
                scheduler.step()
            total += loss.item() * len(idx)
        losses.append(total / n)
    return losses
