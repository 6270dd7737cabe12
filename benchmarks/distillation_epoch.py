"""What a distillation epoch costs: kdutils' loop against the same epoch written plainly, and the alternatives.

One StudentModel epoch on all 60,000 Fashion-MNIST training images at batch 128, every variant with the
optimizer ``train`` uses (``kdutils.training.adam``, fused Adam), the same initial weights and batch order:

* **plain CE**: a loop written plainly, cross-entropy only: the cost of an epoch without a teacher.
* **plain KD**: the same loop with the distillation loss written plainly, the teacher's log-probabilities
  ``log_softmax(cached_logits / T)`` computed once per epoch, then per batch
  ``alpha * T**2 * kl_div(log_softmax(z / T), teacher_log_probs[idx], log_target=True, reduction="batchmean")
  + (1 - alpha) * cross_entropy(z, y)``. Each loop totals its loss as a tensor (no ``.item()`` per step).
* **kdutils KD**: ``train(student, ds.train, epochs=1, teacher_logits=cached)``: the library's loop
  (``fit``), which also counts the training accuracy, over the same math.
* **kdutils CE**: ``train(student, ds.train, epochs=1)``, for the library's own overhead without a teacher.
* **closed-form gradient**: plain KD with the loss's gradient with respect to the logits written out by hand
  (Hinton et al., 2015, section 2) and pushed in with ``logits.backward(gradient)``. kdutils does *not*
  do this; it is measured so that the choice is a number, not an argument.
* **teacher every batch**: the usual tutorial loop, calling the teacher under ``no_grad`` for every batch.

The teacher's weights do not change its cost, so an untrained ``TeacherModel`` in ``eval()`` mode stands in
for the trained one. The variants run interleaved after a warm-up round; the ratios are medians of the
per-round ratios. The two targets (``TARGETS`` below, also in benchmarks/README.md):

* kdutils KD / plain KD <= 1.05: the library's loop costs no more than the same epoch written plainly;
* plain KD / plain CE <= 1.30: plain autograd over cached logits is cheap enough to keep (above it, a
  hand-derived gradient would be worth its complexity).

    python benchmarks/distillation_epoch.py --threads 2 [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy

import torch
from _common import add_thread_argument, apply_threads, interleaved, machine_info, median, paired_ratio, spread, table
from torch.nn import functional as F

from kdutils.data import load_dataset
from kdutils.models import StudentModel, TeacherModel
from kdutils.repro import seed_everything
from kdutils.training import adam, predict_logits, train

LR, T, ALPHA = 1e-3, 4.0, 0.9
#: (numerator, denominator, the largest ratio allowed)
TARGETS = {"library": ("kdutils KD", "plain KD", 1.05), "plain autograd": ("plain KD", "plain CE", 1.30)}


def plain_epoch(model, x, y, batch_size: int, step_loss) -> torch.Tensor:
    """One epoch as a student writes it: shuffle with the seed, then loss, zero_grad, backward, step per batch."""
    optimizer = adam(model.parameters(), lr=LR)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    total = torch.zeros(())
    model.train()
    for begin in range(0, len(y), batch_size):
        idx = order[begin : begin + batch_size]
        loss = step_loss(model, x[idx], y[idx], idx)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(idx)
    return total / len(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions per variant (default 5)")
    parser.add_argument("--batch-size", type=int, default=128)
    add_thread_argument(parser)
    args = parser.parse_args()
    apply_threads(args.threads)
    batch = args.batch_size

    ds = load_dataset("fashion-mnist")
    x, y = ds.train.x, ds.train.y
    seed_everything(0)
    teacher = TeacherModel().eval()
    initial = StudentModel()
    cached = predict_logits(teacher, x)

    def cross_entropy(model, xb, yb, idx):
        return F.cross_entropy(model(xb), yb)

    def plain_ce() -> None:
        plain_epoch(copy.deepcopy(initial), x, y, batch, cross_entropy)

    def plain_kd() -> None:
        teacher_log_probs = F.log_softmax(cached / T, dim=1)  # once per epoch, as kdutils does once per call

        def kd(model, xb, yb, idx):
            z = model(xb)
            soft = F.kl_div(F.log_softmax(z / T, dim=1), teacher_log_probs[idx], log_target=True, reduction="batchmean")
            return ALPHA * T * T * soft + (1 - ALPHA) * F.cross_entropy(z, yb)

        plain_epoch(copy.deepcopy(initial), x, y, batch, kd)

    def kdutils_kd() -> None:
        train(copy.deepcopy(initial), ds.train, epochs=1, batch_size=batch, lr=LR, seed=0, teacher_logits=cached,
              T=T, alpha=ALPHA, progress=False)

    def kdutils_ce() -> None:
        train(copy.deepcopy(initial), ds.train, epochs=1, batch_size=batch, lr=LR, seed=0, progress=False)

    def closed_form_gradient() -> None:
        # dL/dz = alpha * T * (softmax(z / T) - softmax(z_t / T)) / B + (1 - alpha) * (softmax(z) - onehot(y)) / B
        teacher_probs = F.softmax(cached / T, dim=1)
        model = copy.deepcopy(initial)
        optimizer = adam(model.parameters(), lr=LR)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
        model.train()
        for begin in range(0, len(y), batch):
            idx = order[begin : begin + batch]
            logits = model(x[idx])
            with torch.no_grad():
                soft = F.softmax(logits / T, dim=1) - teacher_probs[idx]
                hard = F.softmax(logits, dim=1) - F.one_hot(y[idx], logits.shape[1])
                gradient = (ALPHA * T * soft + (1 - ALPHA) * hard) / len(idx)
            optimizer.zero_grad()
            logits.backward(gradient)
            optimizer.step()

    def teacher_every_batch() -> None:
        def kd_with_teacher(model, xb, yb, idx):
            with torch.no_grad():
                teacher_log_probs = F.log_softmax(teacher(xb) / T, dim=1)
            z = model(xb)
            soft = F.kl_div(F.log_softmax(z / T, dim=1), teacher_log_probs, log_target=True, reduction="batchmean")
            return ALPHA * T * T * soft + (1 - ALPHA) * F.cross_entropy(z, yb)

        plain_epoch(copy.deepcopy(initial), x, y, batch, kd_with_teacher)

    variants = {
        "plain CE": plain_ce,
        "plain KD": plain_kd,
        "kdutils KD": kdutils_kd,
        "kdutils CE": kdutils_ce,
        "closed form": closed_form_gradient,
        "teacher every batch": teacher_every_batch,
    }
    times, cpu = interleaved(variants, repeats=args.repeats)

    print(f"## Distillation epoch: one StudentModel epoch, {len(ds.train):,} images, batch {batch}, "
          f"T={T}, alpha={ALPHA}\n")
    print(machine_info())
    print(f"- {args.repeats} interleaved repetitions after 1 warm-up round; medians; ratios are medians of "
          "per-round ratios\n")
    rows = [[name, f"{median(times[name]):.2f}", spread(times[name]), f"{median(cpu[name]):.2f}",
             *(f"{paired_ratio(times[name], times[base]):.2f}x" for base in ("plain CE", "plain KD"))]
            for name in variants]
    print(table(["variant", "wall s/epoch (median)", "wall range", "CPU s/epoch", "vs plain CE", "vs plain KD"], rows))
    print()
    for what, (numerator, denominator, limit) in TARGETS.items():
        ratio = paired_ratio(times[numerator], times[denominator])
        cpu_ratio = paired_ratio(cpu[numerator], cpu[denominator])
        verdict = "met" if ratio <= limit else "NOT met"
        print(f"{what}: {numerator} / {denominator} = {ratio:.3f}x (CPU time {cpu_ratio:.3f}x); "
              f"target <= {limit:.2f}x: {verdict}")


if __name__ == "__main__":
    main()
