import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from kdutils.losses import IGNORE_LABEL, distillation_loss, hard_label_loss, hint_loss, soft_targets


def _softmax(row, T):
    exps = [math.exp(v / T) for v in row]
    return [e / sum(exps) for e in exps]


def test_loss_matches_a_hand_computation():
    student = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    teacher = [[2.0, 1.0, 0.0], [1.0, 0.0, 2.0]]
    labels = [1, 2]
    T, alpha = 2.0, 0.7
    kl = 0.0
    ce = 0.0
    for s, t, y in zip(student, teacher, labels):
        p_t, p_s = _softmax(t, T), _softmax(s, T)
        kl += sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s))
        ce += -math.log(_softmax(s, 1.0)[y])
    expected = alpha * T * T * kl / 2 + (1 - alpha) * ce / 2

    got = distillation_loss(torch.tensor(student), torch.tensor(labels), torch.tensor(teacher), T=T, alpha=alpha)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_alpha_extremes_reduce_to_each_term():
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    assert distillation_loss(s, y, t, T=3.0, alpha=0.0).item() == pytest.approx(F.cross_entropy(s, y).item())
    kl = nn.KLDivLoss(reduction="batchmean")(F.log_softmax(s / 3, 1), F.softmax(t / 3, 1))
    assert distillation_loss(s, y, t, T=3.0, alpha=1.0).item() == pytest.approx(9 * kl.item(), rel=1e-5)


def test_identical_logits_give_zero_soft_term():
    s = torch.randn(4, 10)
    assert distillation_loss(s, torch.zeros(4, dtype=torch.long), s.clone(), T=5.0, alpha=1.0).item() == \
        pytest.approx(0.0, abs=1e-6)


def test_mean_reduction_would_be_smaller_by_the_number_of_classes():
    torch.manual_seed(1)
    s, t = torch.randn(16, 10), torch.randn(16, 10)
    batchmean = distillation_loss(s, torch.zeros(16, dtype=torch.long), t, T=1.0, alpha=1.0)
    with pytest.warns(UserWarning, match="batchmean"):  # torch itself warns about 'mean'
        mean = nn.KLDivLoss(reduction="mean")(F.log_softmax(s, 1), F.softmax(t, 1))
    assert batchmean.item() == pytest.approx(10 * mean.item(), rel=1e-5)


@pytest.mark.parametrize("T", [8.0, 16.0, 32.0])
def test_t_squared_keeps_the_soft_gradient_scale(T):
    # For large T, d(KL)/d(student logits) ~ (z_s - z_t) / (C * N * T^2) with zero-mean logits,
    # so multiplying by T^2 leaves a gradient that no longer depends on T.
    torch.manual_seed(2)
    student = torch.randn(32, 10)
    student = (student - student.mean(1, keepdim=True)).requires_grad_()
    teacher = torch.randn(32, 10)
    teacher = teacher - teacher.mean(1, keepdim=True)
    distillation_loss(student, torch.zeros(32, dtype=torch.long), teacher, T=T, alpha=1.0).backward()
    limit = (student.detach() - teacher) / (10 * 32)
    relative_error = (student.grad - limit).norm() / limit.norm()
    assert relative_error < 2.0 / T  # the approximation improves as T grows


def test_gradient_without_t_squared_shrinks_as_one_over_t_squared():
    torch.manual_seed(3)
    s0, t = torch.randn(16, 10), torch.randn(16, 10)
    norms = {}
    for T in (5.0, 10.0):
        s = s0.clone().requires_grad_()
        (distillation_loss(s, torch.zeros(16, dtype=torch.long), t, T=T, alpha=1.0) / T**2).backward()
        norms[T] = s.grad.norm().item()
    assert norms[5.0] / norms[10.0] == pytest.approx(4.0, rel=0.15)


def test_only_the_student_receives_gradients_and_teacher_is_untouched():
    s = torch.randn(4, 10, requires_grad=True)
    t = torch.randn(4, 10)
    distillation_loss(s, torch.arange(4), t).backward()
    assert s.grad is not None and t.grad is None


def test_ignored_labels_only_contribute_the_soft_term():
    torch.manual_seed(4)
    s, t = torch.randn(6, 10), torch.randn(6, 10)
    y = torch.tensor([1, 2, IGNORE_LABEL, 3, IGNORE_LABEL, 4])
    got = distillation_loss(s, y, t, T=2.0, alpha=0.5)
    keep = y != IGNORE_LABEL
    expected = 0.5 * distillation_loss(s, y.clamp(min=0), t, T=2.0, alpha=1.0) + 0.5 * F.cross_entropy(s[keep], y[keep])
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    none_labelled = torch.full((6,), IGNORE_LABEL)
    assert torch.isfinite(distillation_loss(s, none_labelled, t, T=2.0, alpha=0.5))


@pytest.mark.parametrize("T", [0, -1.0, float("nan"), float("inf"), "4"])
def test_bad_temperature(T):
    s = torch.randn(2, 10)
    with pytest.raises(ValueError, match="temperature T must be a finite number > 0"):
        distillation_loss(s, torch.tensor([0, 1]), s, T=T)
    with pytest.raises(ValueError, match="temperature"):
        soft_targets(s, T)


@pytest.mark.parametrize("alpha", [-0.1, 1.01, float("nan")])
def test_bad_alpha(alpha):
    s = torch.randn(2, 10)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        distillation_loss(s, torch.tensor([0, 1]), s, alpha=alpha)


def test_shape_and_label_errors():
    s = torch.randn(4, 10)
    y = torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="same shape"):
        distillation_loss(s, y, torch.randn(4, 9))
    with pytest.raises(ValueError, match="2-D tensor"):
        distillation_loss(torch.randn(10), y, torch.randn(10))
    with pytest.raises(ValueError, match="1-D tensor of 4 class indices"):
        distillation_loss(s, torch.tensor([0, 1]), s)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        distillation_loss(s, torch.tensor([0, 1, 2, 10]), s)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        distillation_loss(s, torch.tensor([0, -3, 2, 1]), s)
    with pytest.raises(ValueError, match="int64"):
        distillation_loss(s, y.float(), s)
    with pytest.raises(ValueError, match="floating point"):
        distillation_loss(s.long(), y, s.long())


def test_soft_targets_are_distributions_that_flatten_with_temperature():
    logits = torch.tensor([[4.0, 1.0, 0.0, -2.0]])
    entropies = []
    for T in (1, 2, 4, 8, 20):
        p = soft_targets(logits, T)
        assert p.sum().item() == pytest.approx(1.0)
        assert p.argmax().item() == 0  # the ranking never changes
        entropies.append(-(p * p.log()).sum().item())
    assert entropies == sorted(entropies)
    assert entropies[-1] < math.log(4)
    with pytest.raises(ValueError, match="floating point"):
        soft_targets(torch.tensor([1, 2]), 2.0)


# --- hint losses (feature distillation) ------------------------------------------------------------


def test_hint_losses_on_hand_computed_examples():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, -2.0]])
    assert hint_loss(p, t, "mse").item() == pytest.approx(16 / 4)  # one difference of 4, squared, over 4 numbers
    assert hint_loss(p, t, "cosine").item() == pytest.approx((0 + 2) / 2)  # same direction, then opposite
    assert hint_loss(3 * t, t, "cosine").item() == pytest.approx(0.0, abs=1e-6)  # scale does not matter
    assert hint_loss(3 * t, t, "mse").item() > 0  # but it does for MSE


def test_hint_loss_rejects_mismatched_shapes_and_unknown_kinds():
    with pytest.raises(ValueError, match=r"\(4, 64\) and teacher features \(4, 128\) must have the same shape"):
        hint_loss(torch.randn(4, 64), torch.randn(4, 128))
    with pytest.raises(ValueError, match="2-D floating point"):
        hint_loss(torch.randn(4, 8, 2), torch.randn(4, 16))
    with pytest.raises(ValueError, match="one of 'mse', 'cosine'"):
        hint_loss(torch.randn(4, 8), torch.randn(4, 8), kind="l1")


def test_hard_label_loss_averages_over_the_labelled_rows_only():
    torch.manual_seed(0)
    logits = torch.randn(6, 10)
    labels = torch.tensor([0, 1, 2, IGNORE_LABEL, IGNORE_LABEL, 5])
    labelled = labels != IGNORE_LABEL
    expected = F.cross_entropy(logits[labelled], labels[labelled])
    assert hard_label_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    assert hard_label_loss(logits, torch.arange(6)).item() == pytest.approx(
        F.cross_entropy(logits, torch.arange(6)).item(), rel=1e-6)
    # a batch with no label at all contributes nothing (plain cross_entropy would give NaN)
    none = torch.full((6,), IGNORE_LABEL)
    assert torch.isnan(F.cross_entropy(logits, none))
    assert hard_label_loss(logits, none).item() == 0.0
