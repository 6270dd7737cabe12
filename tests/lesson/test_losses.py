import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from kdutils.losses import (
    IGNORE_LABEL,
    distillation_loss,
    distillation_loss_from_log_probs,
    feature_loss,
    hard_label_loss,
    sequence_cross_entropy,
    soft_targets,
    token_distillation_loss,
    token_kl,
)
from kdutils.words import VOCAB_SIZE, encode_words


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


def test_teacher_logits_that_carry_a_graph_receive_gradients_too():
    # The documented contract (notebook 04 shows it): the loss does not detach the teacher, so teacher logits
    # computed with autograd on make backward() compute gradients for the teacher as well, wasted work.
    torch.manual_seed(5)
    s = torch.randn(4, 10, requires_grad=True)
    t = torch.randn(4, 10, requires_grad=True)
    t_before = t.detach().clone()
    distillation_loss(s, torch.arange(4), t, T=2.0, alpha=0.5).backward()
    assert t.grad is not None and t.grad.abs().sum() > 0
    assert torch.equal(t.detach(), t_before)  # the logits themselves are not changed
    # the student's gradient is the same whether or not the teacher's logits carry a graph
    s2 = s.detach().clone().requires_grad_()
    distillation_loss(s2, torch.arange(4), t.detach(), T=2.0, alpha=0.5).backward()
    torch.testing.assert_close(s.grad, s2.grad)


def test_ignored_labels_only_contribute_the_soft_term():
    torch.manual_seed(4)
    s, t = torch.randn(6, 10), torch.randn(6, 10)
    y = torch.tensor([1, 2, IGNORE_LABEL, 3, IGNORE_LABEL, 4])
    got = distillation_loss(s, y, t, T=2.0, alpha=0.5)
    keep = y != IGNORE_LABEL
    expected = 0.5 * distillation_loss(s, y.clamp(min=0), t, T=2.0, alpha=1.0) + 0.5 * F.cross_entropy(s[keep], y[keep])
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    none_labelled = torch.full((6,), IGNORE_LABEL)
    soft_only = distillation_loss(s, none_labelled, t, T=2.0, alpha=0.5)
    kl = F.kl_div(F.log_softmax(s / 2, 1), F.log_softmax(t / 2, 1), reduction="batchmean", log_target=True)
    assert soft_only.item() == pytest.approx(0.5 * 4 * kl.item(), rel=1e-6)  # alpha * T**2 * KL, no hard term


@pytest.mark.parametrize("unlabelled", [0, 3])
def test_the_loops_unchecked_form_is_the_same_math(unlabelled):
    torch.manual_seed(6)
    s, t = torch.randn(8, 10), 3 * torch.randn(8, 10)
    y = torch.randint(0, 10, (8,))
    y[:unlabelled] = IGNORE_LABEL
    checked = distillation_loss(s, y, t, T=4.0, alpha=0.7)
    log_probs = F.log_softmax(t / 4.0, dim=1)
    assert torch.equal(distillation_loss_from_log_probs(s, y, log_probs, 4.0, 0.7), checked)
    if not unlabelled:
        assert torch.equal(distillation_loss_from_log_probs(s, y, log_probs, 4.0, 0.7, all_labelled=True), checked)


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


# --- feature losses (feature distillation) ---------------------------------------------------------


def test_feature_losses_on_hand_computed_examples():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, -2.0]])
    assert feature_loss(p, t, "mse").item() == pytest.approx(16 / 4)  # one difference of 4, squared, over 4 numbers
    assert feature_loss(p, t, "cosine").item() == pytest.approx((0 + 2) / 2)  # same direction, then opposite
    assert feature_loss(3 * t, t, "cosine").item() == pytest.approx(0.0, abs=1e-6)  # scale does not matter
    assert feature_loss(3 * t, t, "mse").item() > 0  # but it does for MSE


def test_feature_loss_rejects_mismatched_shapes_and_unknown_kinds():
    with pytest.raises(ValueError, match=r"\(4, 64\) and teacher features \(4, 128\) must have the same shape"):
        feature_loss(torch.randn(4, 64), torch.randn(4, 128))
    with pytest.raises(ValueError, match="2-D floating point"):
        feature_loss(torch.randn(4, 8, 2), torch.randn(4, 16))
    with pytest.raises(ValueError, match="one of 'mse', 'cosine'"):
        feature_loss(torch.randn(4, 8), torch.randn(4, 8), kind="l1")


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


# --- sequence losses: (words, positions, vocabulary) logits; padded positions are left out ------------------


def random_logits(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def words():
    """Three words of different lengths, so two of them are padded (encoded as kdutils.words does)."""
    return encode_words(["cat", "tiger", "ox"])


def test_sequence_cross_entropy_averages_over_real_positions_only(words):
    logits = random_logits(3, 6, VOCAB_SIZE)
    mask = words.mask
    expected = F.cross_entropy(logits[mask], words.targets[mask])
    torch.testing.assert_close(sequence_cross_entropy(logits, words.targets), expected)
    scrambled = logits.clone()
    scrambled[~mask] = 100 * random_logits(int((~mask).sum()), VOCAB_SIZE, seed=1)
    torch.testing.assert_close(sequence_cross_entropy(scrambled, words.targets), expected)


def test_token_distillation_loss_ignores_padded_positions(words):
    student, teacher = random_logits(3, 6, VOCAB_SIZE, seed=2), random_logits(3, 6, VOCAB_SIZE, seed=3)
    loss = token_distillation_loss(student, words.targets, teacher, T=2.0, alpha=0.7)
    mask = words.mask
    expected = distillation_loss(student[mask], words.targets[mask], teacher[mask], T=2.0, alpha=0.7)
    torch.testing.assert_close(loss, expected)
    # anything at the padded positions, in either model, leaves the loss unchanged
    student_pad, teacher_pad = student.clone(), teacher.clone()
    student_pad[~mask] = random_logits(int((~mask).sum()), VOCAB_SIZE, seed=4) * 50
    teacher_pad[~mask] = 0.0
    torch.testing.assert_close(token_distillation_loss(student_pad, words.targets, teacher_pad, T=2.0, alpha=0.7), loss)
    # whereas flattening everything into distillation_loss averages the KL over the padding too
    padded_in = distillation_loss(student_pad.flatten(0, 1), words.targets.flatten(), teacher_pad.flatten(0, 1),
                                  T=2.0, alpha=0.7)
    assert not torch.isclose(padded_in, loss)


def test_token_distillation_loss_at_alpha_zero_is_cross_entropy(words):
    student, teacher = random_logits(3, 6, VOCAB_SIZE, seed=5), random_logits(3, 6, VOCAB_SIZE, seed=6)
    torch.testing.assert_close(token_distillation_loss(student, words.targets, teacher, T=4.0, alpha=0.0),
                               sequence_cross_entropy(student, words.targets))


def test_token_distillation_loss_is_zero_when_student_equals_teacher_and_alpha_is_one(words):
    logits = random_logits(3, 6, VOCAB_SIZE, seed=7)
    assert token_distillation_loss(logits, words.targets, logits.clone(), T=3.0, alpha=1.0).item() == pytest.approx(
        0.0, abs=1e-6)


def test_token_distillation_loss_gradient_reaches_only_real_positions(words):
    student = random_logits(3, 6, VOCAB_SIZE, seed=8).requires_grad_()
    token_distillation_loss(student, words.targets, random_logits(3, 6, VOCAB_SIZE, seed=9)).backward()
    assert torch.all(student.grad[~words.mask] == 0) and torch.all(student.grad[words.mask].abs().sum(-1) > 0)


# --- the sequence losses: forward and reverse KL -----------------------------------------------------


def kl_of(student_p, teacher_p, direction):
    student_p, teacher_p = torch.tensor(student_p), torch.tensor(teacher_p)
    one = torch.ones(1, 1, dtype=torch.bool)
    shape = (1, 1, len(student_p))
    return token_kl(student_p.log().view(shape), teacher_p.log().view(shape), one, direction).item()


def test_forward_and_reverse_kl_on_a_known_pair():
    p_teacher, p_student = [0.5, 0.5], [0.9, 0.1]
    forward = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)  # KL(teacher || student)
    reverse = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)  # KL(student || teacher)
    assert kl_of(p_student, p_teacher, "forward") == pytest.approx(forward, abs=1e-6)
    assert kl_of(p_student, p_teacher, "reverse") == pytest.approx(reverse, abs=1e-6)
    assert forward == pytest.approx(0.5108, abs=1e-4) and reverse == pytest.approx(0.3681, abs=1e-4)
    assert kl_of(p_teacher, p_teacher, "forward") == pytest.approx(0.0, abs=1e-7)
    assert kl_of(p_teacher, p_teacher, "reverse") == pytest.approx(0.0, abs=1e-7)


def test_forward_kl_prefers_covering_and_reverse_kl_prefers_one_mode():
    teacher = [0.49, 0.49, 0.02]  # two modes
    covering, seeking = [0.34, 0.33, 0.33], [0.96, 0.02, 0.02]
    assert kl_of(covering, teacher, "forward") < kl_of(seeking, teacher, "forward")
    assert kl_of(seeking, teacher, "reverse") < kl_of(covering, teacher, "reverse")


def test_token_kl_averages_over_the_masked_positions_only(words):
    student, teacher = random_logits(3, 6, VOCAB_SIZE, seed=10), random_logits(3, 6, VOCAB_SIZE, seed=11)
    mask = words.mask
    for direction in ("forward", "reverse"):
        expected = torch.stack([
            token_kl(student[i : i + 1, t : t + 1], teacher[i : i + 1, t : t + 1], torch.ones(1, 1, dtype=torch.bool),
                     direction)
            for i, t in mask.nonzero().tolist()
        ]).mean()
        torch.testing.assert_close(token_kl(student, teacher, mask, direction), expected)
    # the mean of the forward KL is the KL term of token_distillation_loss at T = 1, alpha = 1
    torch.testing.assert_close(token_kl(student, teacher, mask, "forward"),
                               token_distillation_loss(student, words.targets, teacher, T=1.0, alpha=1.0))


def test_token_kl_rejects_bad_arguments(words):
    logits = random_logits(3, 6, VOCAB_SIZE)
    with pytest.raises(ValueError, match="direction"):
        token_kl(logits, logits, words.mask, "sideways")
    with pytest.raises(ValueError, match="no position"):
        token_kl(logits, logits, torch.zeros(3, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool tensor"):
        token_kl(logits, logits, words.targets)


def test_the_sequence_losses_take_any_vocabulary_but_check_the_targets_against_it(words):
    small = random_logits(3, 6, 26)
    # the vocabulary belongs to the model (kdutils.text checks it); a loss only checks the targets fit the logits
    assert torch.isfinite(sequence_cross_entropy(small, words.targets))  # no target here is "z" (26)
    bad_targets = words.targets.clone()
    bad_targets[0, 0] = 26
    with pytest.raises(ValueError, match=r"outside the vocabulary \(0 to 25\)"):
        sequence_cross_entropy(small, bad_targets)
    with pytest.raises(ValueError, match="same words, positions and vocabulary"):
        token_kl(small, random_logits(3, 6, 27), words.mask)
    with pytest.raises(ValueError, match="same words, positions and vocabulary"):
        token_distillation_loss(random_logits(3, 6, 27), words.targets, random_logits(3, 6, 30))


def test_sequence_losses_reject_wrong_shapes_and_all_padding(words):
    with pytest.raises(ValueError, match="3-D"):
        sequence_cross_entropy(random_logits(18, 27), words.targets)
    with pytest.raises(ValueError, match="targets must be int64 of shape"):
        sequence_cross_entropy(random_logits(3, 5, 27), words.targets)
    with pytest.raises(ValueError, match="same shape"):
        token_kl(random_logits(3, 6, 27), random_logits(3, 5, 27), words.mask)
    with pytest.raises(ValueError, match="no real position"):
        sequence_cross_entropy(random_logits(3, 6, 27), torch.full((3, 6), IGNORE_LABEL))
