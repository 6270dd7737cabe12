"""One TeacherModel epoch on all 60,000 Fashion-MNIST training images at batch 128, three ways.

* **kdutils**: ``kdutils.training.train(model, ds.train, epochs=1, batch_size=128)``: whole tensors in
  memory, mini-batches sliced by a shuffled index.
* **DataLoader**: the way most tutorials (and the article's readers) write it:
  ``torchvision.datasets.FashionMNIST(root="data/", transform=Compose([ToTensor(), Normalize(...)]))``
  through ``torch.utils.data.DataLoader(batch_size=128, shuffle=True)`` with its defaults
  (``num_workers=0``, ``pin_memory=False``, ``drop_last=False``), and the same Adam step.
* **compute floor**: the same number of forward/backward/Adam steps, with the same batch sizes
  (468 of 128 and one of 96), on one pre-made batch: no data handling at all.

All three start every repetition from the same initial weights and use the same optimizer as
``train`` (``kdutils.training.adam``: ``torch.optim.Adam`` with PyTorch's fused kernel, lr 1e-3,
cross-entropy), so the comparison is of data handling alone. They run interleaved (kdutils, DataLoader, floor,
kdutils, ...) after a warm-up round; the table gives the median of the repetitions and the median
of the per-round ratios, in wall-clock and in CPU time, so the ratios hold on a busy machine.

    python benchmarks/training_loop.py                       # 5 repetitions, full epochs
    python benchmarks/training_loop.py --threads 1 --dataloader-steps 100 --repeats 7
"""

from __future__ import annotations

import argparse
import copy
import math

import torch
from _common import (
    REPO,
    Clock,
    add_thread_argument,
    apply_threads,
    interleaved,
    machine_info,
    median,
    paired_ratio,
    spread,
    table,
)
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from kdutils.data import load_dataset
from kdutils.models import TeacherModel
from kdutils.repro import seed_everything
from kdutils.training import adam, train

LR = 1e-3


def adam_step(model, optimizer, xb, yb) -> None:
    loss = F.cross_entropy(model(xb), yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per variant (default 5)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--dataloader-steps", type=int, default=0,
        help="time only this many DataLoader steps per repetition and scale to an epoch (default: full epoch)",
    )
    add_thread_argument(parser)
    args = parser.parse_args()
    apply_threads(args.threads)

    ds = load_dataset("fashion-mnist")
    n, batch = len(ds.train), args.batch_size
    steps = math.ceil(n / batch)
    seed_everything(0)
    initial = TeacherModel()

    def kdutils_epoch() -> None:
        model = copy.deepcopy(initial)
        train(model, ds.train, epochs=1, batch_size=batch, lr=LR, seed=0, progress=False)

    # The tutorial way: PIL image -> ToTensor -> Normalize, per sample, collated by the DataLoader.
    tv_train = datasets.FashionMNIST(
        root=str(REPO / "data"), train=True, download=False,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((ds.mean,), (ds.std,))]),
    )
    loader = DataLoader(tv_train, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(0))
    loader_steps = min(args.dataloader_steps or steps, steps)

    def dataloader_epoch() -> tuple[float, float]:
        clock = Clock()
        model = copy.deepcopy(initial)
        optimizer = adam(model.parameters(), lr=LR)
        model.train()
        for step, (xb, yb) in enumerate(loader, start=1):
            adam_step(model, optimizer, xb, yb)
            if step == loader_steps:
                break
        wall, cpu = clock.read()
        return wall * steps / loader_steps, cpu * steps / loader_steps  # per-epoch equivalents

    # The floor: identical steps on a batch that already exists.
    full_xb, full_yb = ds.train.x[:batch].clone(), ds.train.y[:batch].clone()
    sizes = [min(batch, n - begin) for begin in range(0, n, batch)]

    def floor_epoch() -> None:
        model = copy.deepcopy(initial)
        optimizer = adam(model.parameters(), lr=LR)
        model.train()
        for size in sizes:
            adam_step(model, optimizer, full_xb[:size], full_yb[:size])

    variants = {"kdutils": kdutils_epoch, "DataLoader": dataloader_epoch, "floor": floor_epoch}
    wall, cpu = interleaved(variants, repeats=args.repeats)
    speedup = {t: paired_ratio(times["DataLoader"], times["kdutils"]) for t, times in (("wall", wall), ("cpu", cpu))}
    floor_speed = {t: paired_ratio(times["floor"], times["kdutils"]) for t, times in (("wall", wall), ("cpu", cpu))}

    scope = "full epochs" if loader_steps == steps else f"{loader_steps} of {steps} steps timed, scaled to an epoch"
    print(f"## Training loop: one TeacherModel epoch, {n:,} images, batch {batch}, Adam\n")
    print(machine_info())
    print(f"- {args.repeats} interleaved repetitions after 1 warm-up round; medians; ratios are medians of "
          "per-round ratios")
    print(f"- DataLoader: {scope}; num_workers=0, shuffle=True, other arguments default\n")
    rows = [
        ["kdutils `train` (in-memory tensors)", f"{median(wall['kdutils']):.2f}", spread(wall["kdutils"]),
         f"{median(cpu['kdutils']):.2f}", "1", "-"],
        ["torchvision DataLoader, ToTensor()+Normalize", f"{median(wall['DataLoader']):.2f}",
         spread(wall["DataLoader"]), f"{median(cpu['DataLoader']):.2f}",
         f"{speedup['wall']:.2f}x slower (CPU: {speedup['cpu']:.2f}x)", "kdutils >= 4x faster"],
        ["compute floor (one pre-made batch)", f"{median(wall['floor']):.2f}", spread(wall["floor"]),
         f"{median(cpu['floor']):.2f}",
         f"kdutils at {floor_speed['wall']:.0%} of its speed (CPU: {floor_speed['cpu']:.0%})",
         "kdutils >= 90% of its speed"],
    ]
    print(table(["variant", "wall s/epoch (median)", "wall range", "CPU s/epoch", "vs kdutils", "target"], rows))
    met = speedup["wall"] >= 4 and floor_speed["wall"] >= 0.9
    print(f"\nkdutils is {speedup['wall']:.1f}x faster than the DataLoader and runs at {floor_speed['wall']:.0%} "
          f"of the compute floor's speed (wall clock): targets {'met' if met else 'NOT met'}.")


if __name__ == "__main__":
    main()
