"""Hints for the exercises, one step at a time, never the answer: ``hint("precision")``, then ``hint("precision", 2)``.

The keys are the exercises' names: each check's name without ``check_``. The student edition's stubs say
how to ask for them; this module needs no torch, so the edition generator reads it directly.
"""

from __future__ import annotations

__all__ = ["HINTS", "hint"]

HINTS: dict[str, tuple[str, ...]] = {
    "parameter_count": (
        "A model keeps its learnable numbers in tensors, one per weight matrix and one per bias vector; "
        "model.parameters() hands them to you one by one.",
        "Each tensor can tell you how many numbers it holds (look up Tensor.numel). Add that up over every "
        "tensor the model hands you: a bias counts as much as a weight.",
    ),
    "precision": (
        "Precision looks at the images *predicted* as a class. In matrix[i, j] the row i is the true class "
        "and the column j the prediction: which of the two does precision hold fixed?",
        "The right answers of each class sit on the diagonal. Divide them by how many images were predicted "
        "as that class (a sum along one dimension), and make a class that is never predicted come out as 0, "
        "not 0 / 0.",
    ),
    "softmax_with_temperature": (
        "Three moves: scale the logits by the temperature, make them positive with exp, then make each row "
        "sum to 1. Which way must T scale the logits so that a higher T gives a flatter distribution?",
        "exp(1000) overflows to inf. A softmax does not change when the same number is subtracted from every "
        "logit of a row, so subtract one that makes the largest exponent exp(0) = 1 (keepdim=True keeps the "
        "shapes lined up).",
    ),
    "distillation_loss": (
        "Two terms, blended by alpha: a soft one that compares the student's and the teacher's distributions, "
        "both softened by T, with a KL divergence averaged over the examples; and the usual cross-entropy "
        "with the labels.",
        "F.kl_div(input, target) expects the student's *log*-probabilities as input and the teacher's "
        "probabilities as target; its reduction must average per example, not per number. Softening by T "
        "shrinks the soft gradient by 1/T**2: scale the soft term to undo it. The hard term uses the raw logits.",
    ),
    "distillation_step": (
        "Before the teacher predicts, think of two things it must not do: behave differently from call to "
        "call (dropout), and record a graph for backpropagation.",
        "Switch the teacher to evaluation mode and compute its logits where gradient tracking is off. Then a "
        "training step's four moves, in order: the loss (with the T and alpha you were given), clearing old "
        "gradients, backpropagation, the optimizer's update.",
    ),
    "gap_closed": (
        "The gap is the distance from the scratch student to the teacher. Distillation closes part of it: how "
        "far did it move the student from scratch, as a share of that gap?",
        "Measure both differences from the scratch score. Do not clip, round or turn it into a percentage: "
        "below 0 means distillation hurt, above 1 that the student beat its teacher.",
    ),
    "epoch_alignment": (
        "Shuffle once per epoch: draw a random order of the row numbers with the generator you were given, "
        "then walk through that order in slices of batch_size.",
        "Index every per-example tensor (images, labels and the cached teacher logits) with the same slice of "
        "the order. Each batch then gets its own loss, cleared gradients, backward pass and optimizer step.",
    ),
    "add_to_bias": (
        "Leave the model you were given untouched: work on a full, independent copy of it.",
        "The output layer is the model's last Linear layer. Add shift to the one entry of its bias that "
        "belongs to class cls, where gradient tracking is off.",
    ),
    "expected_calibration_error": (
        "Start from each prediction's confidence (its largest probability) and whether it was right, then "
        "sort the predictions into bins by confidence.",
        "Bin k holds confidences in (k/bins, (k+1)/bins]: mind where a confidence exactly on an edge goes, 1.0 "
        "included. Per non-empty bin take |accuracy - mean confidence| and weight it by the bin's share of all "
        "the examples.",
    ),
    "feature_loss": (
        "It is the plain mean squared error between the two feature tensors.",
        "Square the element-wise differences and average over every number, examples and features alike, so "
        "that the loss does not grow with the batch or the feature size. Return a tensor, so it backpropagates.",
    ),
    "ensemble_average": (
        "Turn each member's logits into probabilities at temperature T first; combine the members only after.",
        "Stack the members' probabilities along a new first dimension and average over that dimension. The "
        "softmax runs over the classes (dim=1), not over the examples.",
    ),
    "reverse_kl": (
        "Work with log-probabilities of both models, from a numerically stable log of the softmax, never the "
        "log of raw logits.",
        "KL(student || teacher) sums p_s * (log p_s - log p_t) over the vocabulary: the student's probabilities "
        "weight the sum. Sum over the vocabulary, average over the rows, and keep everything in the graph.",
    ),
    "our_alpha": (
        "Write the framework's loss as (soft weight) * (factor) * KL + (hard weight) * CE, and ours as "
        "a * T**2 * KL + (1 - a) * CE. Which of the two weights is the framework's alpha, and what is the factor "
        "in front of its KL: does it carry T**2, and does 'mean' divide by something more than the batch?",
        "Two losses blend their terms alike when the ratio soft : hard is the same. Count the framework's soft "
        "weight the way distillation_loss counts it, per T**2 * KL, then return its share of soft + hard.",
    ),
}


def hint(exercise: str, step: int = 1) -> None:
    """Print hint number ``step`` for an exercise, named like its check without ``check_`` (``hint("precision")``).

    The first hint points the way; each further step is more concrete; none is the answer.
    """
    if exercise not in HINTS:
        raise ValueError(f"no exercise named {exercise!r}; the exercises are: {', '.join(sorted(HINTS))}.")
    steps = HINTS[exercise]
    step = min(max(int(step), 1), len(steps))
    print(f"Hint {step} of {len(steps)}: {steps[step - 1]}")
    if step < len(steps):
        print(f"A stronger one: hint({exercise!r}, {step + 1})")
    else:
        print("That is the last hint: write what you can and run the check; it names the mistake it finds.")
