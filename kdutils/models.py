"""The article's teacher and student networks, and helpers that measure their cost."""

from __future__ import annotations

import io

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["StudentModel", "TeacherModel", "count_parameters", "multiply_adds", "serialized_size_bytes"]

IMAGE_PIXELS = 28 * 28
NUM_CLASSES = 10


def _flatten_images(x: torch.Tensor) -> torch.Tensor:
    """Accept ``(N, 1, 28, 28)`` or ``(N, 784)``; anything else is a clear error, not a silent reshape."""
    if x.dim() == 4 and x.shape[1:] == (1, 28, 28):
        return x.reshape(x.shape[0], IMAGE_PIXELS)
    if x.dim() == 2 and x.shape[1] == IMAGE_PIXELS:
        return x
    raise ValueError(
        f"expected images of shape (N, 1, 28, 28) or (N, 784), got {tuple(x.shape)}; "
        "add a batch dimension with x.unsqueeze(0) for a single image."
    )


class TeacherModel(nn.Module):
    """784 -> 256 -> 128 -> 10 with ReLU (235,146 parameters), as in the article."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(IMAGE_PIXELS, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(_flatten_images(x)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class StudentModel(nn.Module):
    """784 -> 128 -> 10 with ReLU (101,770 parameters), as in the article."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(IMAGE_PIXELS, 128)
        self.fc2 = nn.Linear(128, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(_flatten_images(x))))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (weights and biases)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def serialized_size_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what the weights cost on disk."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def multiply_adds(model: nn.Module) -> int:
    """Multiply-adds for one image through the model's linear layers (activations are not counted)."""
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
