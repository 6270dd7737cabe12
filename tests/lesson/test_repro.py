"""kdutils.repro: seeds that repeat a run, and the device choice (CUDA, then MPS, then the CPU; or what is asked)."""

import random

import numpy as np
import pytest
import torch

from kdutils import repro
from kdutils.repro import choose_device, seed_everything


def test_a_seed_repeats_python_numpy_and_torch_draws_and_its_generator():
    def draws(generator):
        return random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=generator)

    first = draws(seed_everything(5))
    again = draws(seed_everything(5))
    other = draws(seed_everything(6))
    assert first[:2] == again[:2] and all(torch.equal(a, b) for a, b in zip(first[2:], again[2:]))
    assert first[0] != other[0] and not torch.equal(first[2], other[2])


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_a_bad_seed_is_refused(seed):
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(seed)


@pytest.fixture
def machine(monkeypatch):
    """Pretend which accelerators exist: set ``machine["cuda"]`` and ``machine["mps"]``."""
    present = {"cuda": False, "mps": False}
    monkeypatch.setattr(repro.torch.cuda, "is_available", lambda: present["cuda"])
    monkeypatch.setattr(repro.torch.backends.mps, "is_available", lambda: present["mps"])
    monkeypatch.delenv("KDUTILS_DEVICE", raising=False)
    return present


@pytest.mark.parametrize(("cuda", "mps", "expected"),
                         [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_the_best_device_is_cuda_then_mps_then_the_cpu(machine, cuda, mps, expected):
    machine.update(cuda=cuda, mps=mps)
    assert choose_device().type == expected


def test_the_environment_or_the_argument_forces_a_device(machine, monkeypatch):
    machine.update(cuda=True, mps=True)
    monkeypatch.setenv("KDUTILS_DEVICE", "cpu")
    assert choose_device().type == "cpu"  # e.g. for the reference machine's numbers on a laptop with a GPU
    monkeypatch.delenv("KDUTILS_DEVICE")
    assert choose_device("mps").type == "mps"


@pytest.mark.parametrize("asked", ["cuda", "mps"])
def test_asking_for_a_missing_accelerator_is_a_clear_error(machine, asked):
    with pytest.raises(ValueError, match=f"{asked.upper()} was asked for but is not available; use 'cpu'"):
        choose_device(asked)
