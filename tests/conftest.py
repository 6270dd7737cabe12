"""Shared fixtures: tiny IDX datasets made on the fly, so no test needs the real data or a network."""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import replace

import pytest
import torch

from kdutils import data as kd_data
from kdutils.data import Split

from .helpers import SIZES, idx_images, idx_labels


@pytest.fixture
def tiny_raw(tmp_path, monkeypatch):
    """A folder of four gzipped IDX files and a 'fashion-mnist' spec whose checksums match them.

    The system folders are cleared and the env var unset, so only what a test provides is found.
    """
    generator = torch.Generator().manual_seed(123)
    source = tmp_path / "usb-stick"
    source.mkdir()
    contents = {}
    for split, n in SIZES.items():
        images = torch.randint(0, 256, (n, 28, 28), generator=generator)
        labels = torch.arange(n) % 10
        contents[f"{split}-images-idx3-ubyte"] = idx_images(images)
        contents[f"{split}-labels-idx1-ubyte"] = idx_labels(labels)
    for name, payload in contents.items():
        (source / f"{name}.gz").write_bytes(gzip.compress(payload))
    sums = {name: hashlib.sha256(payload).hexdigest() for name, payload in contents.items()}
    spec = replace(kd_data.DATASETS["fashion-mnist"], sha256=sums, system_dirs=())
    monkeypatch.setitem(kd_data.DATASETS, "fashion-mnist", spec)
    monkeypatch.delenv(kd_data.RAW_DIR_ENV, raising=False)
    return source, contents


@pytest.fixture
def toy_split():
    """A small, learnable 10-class problem shaped like the real data."""
    generator = torch.Generator().manual_seed(0)
    prototypes = torch.randn(10, 784, generator=generator)
    y = torch.arange(400) % 10
    x = prototypes[y] + 0.8 * torch.randn(400, 784, generator=generator)
    return Split(x.reshape(-1, 1, 28, 28), y)


@pytest.fixture
def real_fashion_mnist():
    """The real dataset's raw folder. Skips when it is not installed, except in CI, where it must be.

    Looked up when a test runs, never while the tests are collected (hashing 60 MB is not free).
    """
    try:
        return kd_data.ensure_dataset("fashion-mnist", download=False)
    except (kd_data.DataError, OSError) as error:
        if os.environ.get("CI", "").lower() in ("1", "true"):
            raise
        pytest.skip(f"Fashion-MNIST is not installed locally (.ci/run installs it): {error}")


@pytest.fixture
def torchvision():
    """torchvision, for tests that compare with it; skipped only where its build cannot load beside torch.

    PyPI's torchvision wheels for Linux are CUDA builds: beside a CPU-only torch (``2.13.0+cpu``, the oldest
    pair CI tests, whose matching CPU torchvision lives on PyTorch's own index) importing it fails with
    "operator torchvision::nms does not exist". kdutils imports torchvision only to download, so the rest
    of the tests still run there; anywhere else a failed import fails the test.
    """
    try:
        import torchvision
    except (ImportError, RuntimeError) as error:
        if torch.__version__.endswith("+cpu"):
            pytest.skip(f"torchvision cannot load beside the CPU-only torch {torch.__version__}: {error}")
        raise
    return torchvision
