"""Ensembles of teachers: averaged probabilities, and the log-probabilities stand-in for logits."""

import math

import pytest
import torch

from kdutils.ensembles import average_probabilities, ensemble_logits
from kdutils.losses import distillation_loss, soft_targets

# Two members that disagree on row 0 and agree on row 1; member A's logits are much larger.
MEMBER_A = torch.tensor([[8.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
MEMBER_B = torch.tensor([[0.0, 2.0, 0.0], [2.0, 0.0, 0.0]])


# --- average_probabilities -----------------------------------------------------------------------------


def test_average_probabilities_is_the_mean_of_the_members_softmax():
    expected = (torch.softmax(MEMBER_A, dim=1) + torch.softmax(MEMBER_B, dim=1)) / 2
    assert torch.allclose(average_probabilities([MEMBER_A, MEMBER_B]), expected)
    softened = (torch.softmax(MEMBER_A / 4, dim=1) + torch.softmax(MEMBER_B / 4, dim=1)) / 2
    result = average_probabilities([MEMBER_A, MEMBER_B], T=4.0)
    assert torch.allclose(result, softened) and torch.allclose(result.sum(dim=1), torch.ones(2))
    assert result.dtype == MEMBER_A.dtype


def test_averaging_probabilities_differs_from_averaging_logits_where_members_disagree():
    probabilities = average_probabilities([MEMBER_A, MEMBER_B])
    from_logits = torch.softmax((MEMBER_A + MEMBER_B) / 2, dim=1)
    # Row 0: the probability average keeps the disagreement (class 1 gets a large share) ...
    assert 0.35 < probabilities[0, 1] < 0.45 and probabilities[0].max() < 0.6
    # ... while the logit average lets member A's large logits outvote member B: over 90% on class 0.
    assert from_logits[0, 0] > 0.9 and from_logits[0, 1] < 0.05


def test_an_ensemble_of_one_is_that_member():
    assert torch.allclose(average_probabilities([MEMBER_A], T=2.0), torch.softmax(MEMBER_A / 2, dim=1))


def test_the_members_order_does_not_matter():
    assert torch.allclose(average_probabilities([MEMBER_A, MEMBER_B]), average_probabilities([MEMBER_B, MEMBER_A]))


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([], "empty"),
        (MEMBER_A, "not a single tensor"),
        ([MEMBER_A, MEMBER_B[:1]], "member 1 has shape"),
        ([MEMBER_A, torch.zeros(2, 4)], "member 1 has shape"),
        ([torch.zeros(0, 3)], "no rows"),
        ([torch.zeros(3)], "2-D floating point"),
        ([torch.zeros(2, 3, dtype=torch.long)], "2-D floating point"),
        ([MEMBER_A, [[0.0, 1.0, 0.0]]], "member 1 must be"),
        ([torch.tensor([[0.0, math.nan, 1.0]])], "NaN"),
    ],
)
def test_average_probabilities_rejects_bad_members(members, message):
    with pytest.raises(ValueError, match=message):
        average_probabilities(members)
    with pytest.raises(ValueError, match=message):
        ensemble_logits(members, T=4.0)


@pytest.mark.parametrize("T", [0.0, -1.0, math.inf])
def test_average_probabilities_rejects_a_bad_temperature(T):
    with pytest.raises(ValueError, match="temperature"):
        average_probabilities([MEMBER_A], T=T)
    with pytest.raises(ValueError, match="temperature"):
        ensemble_logits([MEMBER_A], T=T)


# --- ensemble_logits -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1.0, 4.0, 20.0])
def test_ensemble_logits_give_back_the_averaged_distribution_at_their_temperature(T):
    stand_in = ensemble_logits([MEMBER_A, MEMBER_B], T)
    assert torch.allclose(soft_targets(stand_in, T), average_probabilities([MEMBER_A, MEMBER_B], T), atol=1e-6)


def test_distilling_from_ensemble_logits_is_distilling_towards_the_average():
    # The soft term of distillation_loss with the stand-in equals T^2 KL(average || student), written out.
    T, student = 4.0, torch.tensor([[1.0, 0.5, -1.0], [0.0, 0.2, 0.1]])
    labels = torch.tensor([0, 0])
    loss = distillation_loss(student, labels, ensemble_logits([MEMBER_A, MEMBER_B], T), T=T, alpha=1.0)
    target = average_probabilities([MEMBER_A, MEMBER_B], T).double()
    log_student = torch.log_softmax(student.double() / T, dim=1)
    expected = T * T * (target * (target.log() - log_student)).sum(dim=1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_ensemble_logits_stay_finite_when_a_probability_underflows():
    huge = torch.tensor([[2000.0, 0.0, -2000.0]], dtype=torch.float64)
    stand_in = ensemble_logits([huge, huge], T=1.0)
    floor = math.log(torch.finfo(torch.float64).tiny)  # where exp() underflowed, log p is this floor, not -inf
    assert stand_in[0, 0].item() == pytest.approx(0.0, abs=1e-12)  # p = 1
    assert stand_in[0, 1].item() == stand_in[0, 2].item() == floor  # exp(-2000) and exp(-4000) underflow to 0
    two_classes = ensemble_logits([torch.tensor([[0.0, -20.0]], dtype=torch.float64)] * 2, T=1.0)
    assert two_classes[0, 1].item() == pytest.approx(-20.0, rel=1e-9)  # no underflow: log p itself
    assert ensemble_logits([huge, huge], T=4.0)[0, 2].item() == 4.0 * floor  # the floor, scaled by T
