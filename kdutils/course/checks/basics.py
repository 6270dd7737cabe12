"""Checks of notebooks 01 and 02: counting a model's parameters, precision from a confusion matrix."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ...models import StudentModel, TeacherModel, count_parameters
from .harness import Diagnosis, check_finite, run_check, same, to_number, to_tensor
from .verdicts import CheckResult

__all__ = ["check_parameter_count", "check_precision"]


# --- notebook 01: counting parameters -------------------------------------------------------------------


def check_parameter_count(count: Callable[[nn.Module], int]) -> CheckResult:
    """``count(model)`` must return the number of parameters: every weight and every bias, of any layer."""

    def body(call) -> str:
        frozen = nn.Sequential(nn.Linear(5, 3), nn.Linear(3, 2))
        frozen[0].requires_grad_(False)  # a frozen layer still has its parameters
        tied = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 7))
        tied[1].weight = tied[0].weight  # one tensor used twice (tied weights) is one set of parameters
        cases = [nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10)),
                 nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.Linear(4, 2, bias=False)),
                 nn.Sequential(nn.Sequential(nn.Linear(3, 3), nn.ReLU()), nn.Linear(3, 2)),  # nested
                 frozen, tied, TeacherModel(), StudentModel()]
        for model in cases:
            got = to_number(call(count, model), "the count")
            expected = count_parameters(model)
            if got == expected:
                continue
            weights = sum(p.numel() for name, p in model.named_parameters() if name.endswith("weight"))
            linear = sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters())
            stored = sum(v.numel() for v in model.state_dict().values())
            tensors = len(list(model.parameters()))
            layers = sum(1 for m in model.modules() if next(m.parameters(recurse=False), None) is not None)
            name = type(model).__name__
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            top_level = sum(p.numel() for m in model.children() for p in m.parameters(recurse=False))
            with_repeats = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
            if got == trainable and trainable != expected:
                raise Diagnosis(f"you counted only the parameters that train ({trainable:,} of {expected:,}): a "
                                "frozen layer (requires_grad=False) still has parameters. Count them all.")
            if got == top_level and top_level < expected:
                raise Diagnosis(f"you counted only the layers directly inside the model ({top_level:,} of "
                                f"{expected:,}): a block nested inside another holds parameters too; "
                                "model.parameters() visits every level.")
            if got == with_repeats and with_repeats != expected:
                raise Diagnosis(f"you counted a shared (tied) weight twice ({with_repeats:,} for {expected:,}): "
                                "one tensor used by two layers is one set of parameters; model.parameters() "
                                "lists it once.")
            if got == weights:
                raise Diagnosis(f"you counted the weights ({weights:,}) but not the biases: a layer also has one "
                                "bias per output. Count every tensor the model's parameters() hands you.")
            if got == linear:
                raise Diagnosis(f"you counted only the nn.Linear layers ({linear:,} for a {name} that has "
                                f"{expected:,} parameters): a convolution or a batch norm has parameters too.")
            if got == stored:
                raise Diagnosis(f"you counted the state_dict ({stored:,}): it also holds buffers, such as batch "
                                "norm's running statistics, that are stored but not learned. Count parameters().")
            if got in (tensors, layers):
                raise Diagnosis(f"you counted tensors or layers ({got:.0f}), not numbers: each parameter tensor "
                                "holds many numbers.")
            raise Diagnosis(f"for a {name} you returned {got:,.0f}, expected {expected:,}.")
        return ("weights and biases counted for seven models (a frozen layer, a nested block and tied weights "
                "among them), the teacher's 235,146 and the student's 101,770.")

    return run_check(count, body, library=("count_parameters",))


# --- notebook 02: precision from a confusion matrix ------------------------------------------------------


def _confusion_matrices() -> list[torch.Tensor]:
    """Confusion matrices to test precision on: a small one by hand, random ones, one with a class never predicted."""
    generator = torch.Generator().manual_seed(2)
    matrices = [torch.tensor([[8, 2, 0], [4, 6, 0], [0, 5, 5]])]
    for classes in (5, 10):
        noise = torch.randint(0, 6, (classes, classes), generator=generator)
        matrices.append(noise + torch.diag(torch.randint(10, 40, (classes,), generator=generator)))
    never = torch.randint(1, 9, (4, 4), generator=generator)
    never[:, 2] = 0  # class 2 is never predicted: its column sums to 0
    matrices.append(never)
    return matrices


def check_precision(precision: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """``precision(matrix)`` must give, per class, the fraction of the images *predicted* as it that are it.

    ``matrix[i, j]`` counts images of true class ``i`` predicted as ``j``. A class never predicted
    has precision 0.
    """

    def body(call) -> str:
        for matrix in _confusion_matrices():
            classes = matrix.shape[0]
            got = to_tensor(call(precision, matrix.clone()), "the precision")
            if got.shape != (classes,):
                raise Diagnosis(f"return one precision per class, shape ({classes},), got shape {tuple(got.shape)}.")
            predicted = matrix.sum(dim=0)
            expected = matrix.diag() / predicted.clamp(min=1)
            if bool(torch.isnan(got).any()) and bool((predicted == 0).any()):
                never = int((predicted == 0).nonzero()[0])
                raise Diagnosis(f"your function returned NaN for class {never}, which is never predicted (its "
                                "column sums to 0, so you computed 0 / 0): its precision is 0.")
            check_finite(got, f"the matrix {matrix.tolist()}")
            if same(got, expected):
                continue
            if same(got, matrix.diag() / matrix.sum(dim=1).clamp(min=1)):
                raise Diagnosis("you divided by the row sums (the true classes): that is recall. Precision divides "
                                "the diagonal by the number of images *predicted* as each class.")
            if same(got, 100 * expected, atol=1e-3):
                raise Diagnosis("your values are percentages; return fractions between 0 and 1.")
            if same(got, matrix.diag() // predicted.clamp(min=1)):
                raise Diagnosis("you divided integers with //, which rounds down to 0 or 1: use / for fractions.")
            raise Diagnosis(f"expected {[round(v, 3) for v in expected.tolist()]}, got "
                            f"{[round(v, 3) for v in got.tolist()]} for the matrix {matrix.tolist()}.")
        return "the diagonal over the predictions per class, on four matrices, and 0 for a class never predicted."

    return run_check(precision, body)
