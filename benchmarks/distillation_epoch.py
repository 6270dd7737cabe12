"""What distillation costs per student epoch: cached teacher logits against the alternatives.

One StudentModel epoch on all 60,000 Fashion-MNIST training images at batch 128, four ways, all with
the optimizer ``train`` uses (``kdutils.training.adam``, fused Adam):

* **plain**: ``train(student, ds.train, epochs=1)``, cross-entropy only: the reference.
* **cached logits**: ``train(..., teacher_logits=cached)`` with the teacher's logits for the whole
  training set computed once beforehand (``predict_logits``), sliced per batch.
* **teacher= (one pass per call)**: ``train(..., teacher=teacher)``: kdutils computes the cached
  logits itself at the start of the call, so a one-epoch call pays for one inference pass.
* **teacher on every batch**: the usual tutorial loop, calling ``teacher(xb)`` under ``no_grad``
  for every mini-batch of every epoch (same in-memory batches and the same loss as kdutils).

The teacher's weights do not change its cost, so an untrained ``TeacherModel`` in ``eval()`` mode
stands in for the trained one. The variants run interleaved after a warm-up round; the table gives
medians and the median of the per-round ratios to the plain epoch.

    python benchmarks/distillation_epoch.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy

import torch
from _common import add_thread_argument, apply_threads, interleaved, machine_info, median, paired_ratio, spread, table

from kdutils.data import load_dataset
from kdutils.losses import _distillation_loss
from kdutils.models import StudentModel, TeacherModel
from kdutils.repro import seed_everything
from kdutils.training import adam, predict_logits, train

LR, T, ALPHA = 1e-3, 4.0, 0.9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per variant (default 5)")
    parser.add_argument("--batch-size", type=int, default=128)
    add_thread_argument(parser)
    args = parser.parse_args()
    apply_threads(args.threads)
    batch = args.batch_size

    ds = load_dataset("fashion-mnist")
    seed_everything(0)
    teacher = TeacherModel().eval()
    initial = StudentModel()
    cached = predict_logits(teacher, ds.train.x)

    def plain() -> None:
        train(copy.deepcopy(initial), ds.train, epochs=1, batch_size=batch, lr=LR, seed=0, progress=False)

    def with_cached_logits() -> None:
        train(copy.deepcopy(initial), ds.train, epochs=1, batch_size=batch, lr=LR, seed=0,
              teacher_logits=cached, T=T, alpha=ALPHA, progress=False)

    def with_teacher() -> None:
        train(copy.deepcopy(initial), ds.train, epochs=1, batch_size=batch, lr=LR, seed=0,
              teacher=teacher, T=T, alpha=ALPHA, progress=False)

    def teacher_every_batch() -> None:
        model = copy.deepcopy(initial)
        optimizer = adam(model.parameters(), lr=LR)
        x, y = ds.train.x, ds.train.y
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
        model.train()
        for begin in range(0, len(y), batch):
            idx = order[begin : begin + batch]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            with torch.no_grad():
                teacher_logits = teacher(xb)
            loss = _distillation_loss(model(xb), yb, teacher_logits, T, ALPHA)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    variants = {
        "plain": plain,
        "cached": with_cached_logits,
        "teacher=": with_teacher,
        "every batch": teacher_every_batch,
    }
    times, cpu = interleaved(variants, repeats=args.repeats)
    ratio = {name: paired_ratio(times[name], times["plain"]) for name in variants}
    cpu_ratio = {name: paired_ratio(cpu[name], cpu["plain"]) for name in variants}

    print(f"## Distillation epoch: one StudentModel epoch, {len(ds.train):,} images, batch {batch}, "
          f"T={T}, alpha={ALPHA}\n")
    print(machine_info())
    print(f"- {args.repeats} interleaved repetitions after 1 warm-up round; medians; ratios are medians of "
          "per-round ratios to the plain epoch\n")
    labels = {
        "plain": "plain epoch (cross-entropy only)",
        "cached": "distillation, cached teacher logits",
        "teacher=": "distillation, `teacher=` (one teacher pass per call, then cached)",
        "every batch": "distillation, teacher called on every batch",
    }
    rows = [
        [labels[name], f"{median(times[name]):.2f}", spread(times[name]), f"{median(cpu[name]):.2f}",
         f"{ratio[name]:.2f}x (CPU: {cpu_ratio[name]:.2f}x)", "<= 1.15x" if name == "cached" else ""]
        for name in variants
    ]
    print(table(["variant", "wall s/epoch (median)", "wall range", "CPU s/epoch", "vs plain", "target"], rows))
    verdict = "met" if ratio["cached"] <= 1.15 else "NOT met"
    print(f"\nA distillation epoch with cached logits costs {ratio['cached']:.2f}x a plain epoch "
          f"(target <= 1.15x: {verdict}); calling the teacher on every batch costs {ratio['every batch']:.2f}x.")


if __name__ == "__main__":
    main()
