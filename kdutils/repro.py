"""Seeding and device choice."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["choose_device", "seed_everything"]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a ``torch.Generator`` seeded the same way.

    Call it right before building a model so its initial weights depend only on ``seed``.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def choose_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or the environment variable ``KDUTILS_DEVICE``) forces one, e.g. ``"cpu"`` for
    reproducible numbers in class.
    """
    prefer = prefer or os.environ.get("KDUTILS_DEVICE")
    if prefer:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("CUDA was asked for but is not available; use 'cpu'.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("MPS was asked for but is not available; use 'cpu'.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
