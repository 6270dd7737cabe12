"""Character-level language models of words, for distilling a language model (notebook 10).

The words themselves (the word list, splits, ``EncodedWords``) are in ``kdutils.words``; the sequence
losses (``sequence_cross_entropy``, ``token_distillation_loss``, ``token_kl``) in ``kdutils.losses``; a
language model trains with the series' one loop, ``kdutils.training.fit``, over ``EncodedWords``. Here:

* the model: ``CharGRU``, a one-layer GRU language model (teacher and student differ only in size);
* sampling: ``sample_words`` (seeded, one character at a time, until the end-of-word token);
* on-policy distillation: ``distil_on_policy``, whose data the student writes anew at every step;
* measures: ``bits_per_character``, ``predict_sequence_logits`` and ``sample_statistics``.

Everything follows the model's device: the words are moved to it, the results come back to the CPU.

References: Y. Kim and A. M. Rush, "Sequence-Level Knowledge Distillation", EMNLP 2016
(https://arxiv.org/abs/1606.07947); R. Agarwal et al., "On-Policy Distillation of Language Models:
Learning from Self-Generated Mistakes" (GKD), ICLR 2024 (https://arxiv.org/abs/2306.13649); Y. Gu et
al., "MiniLLM: Knowledge Distillation of Large Language Models", ICLR 2024 (https://arxiv.org/abs/2306.08543).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .losses import DIRECTIONS, IGNORE_LABEL, token_kl
from .progress import tqdm
from .training import adam, evaluating
from .words import VOCAB_SIZE, EncodedWords, decode

__all__ = [
    "CharGRU",
    "SampleStatistics",
    "bits_per_character",
    "distil_on_policy",
    "predict_sequence_logits",
    "sample_statistics",
    "sample_words",
]


# --- the model -----------------------------------------------------------------------------------


class CharGRU(nn.Module):
    """A character-level language model: embedding, one GRU layer, a linear layer to the vocabulary.

    ``forward(tokens)`` maps ``(N, L)`` token ids to ``(N, L, vocab_size)`` logits: position ``t``
    scores the character that follows ``tokens[:, :t + 1]``. ``forward_with_state`` also takes and
    returns the GRU's hidden state, to sample one character at a time.
    """

    def __init__(self, hidden_size: int = 128, embedding_size: int = 32, vocab_size: int = VOCAB_SIZE) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.gru = nn.GRU(embedding_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward_with_state(
        self, tokens: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, state = self.gru(self.embedding(tokens), state)
        return self.head(hidden), state

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.forward_with_state(tokens)[0]


# --- sampling, measures, on-policy distillation ---------------------------------------------------


def _check_model(model: nn.Module) -> None:
    size = getattr(model, "vocab_size", None)
    if size != VOCAB_SIZE:
        raise ValueError(f"the model scores {size} tokens, but the vocabulary has {VOCAB_SIZE} ('.' and a-z).")


@torch.no_grad()
def sample_words(
    model: CharGRU,
    n: int,
    *,
    generator: torch.Generator,
    max_length: int = 32,
    temperature: float = 1.0,
    batch_size: int = 4096,
) -> EncodedWords:
    """Sample ``n`` words from ``model``, one character at a time, until it emits the end-of-word token.

    Each character is drawn from ``softmax(logits / temperature)`` with ``generator``, so the same
    generator state gives the same words. A word that has not ended after ``max_length`` positions is
    cut there. Returns ``EncodedWords`` holding what the model generated (``inputs`` are the prefixes it
    read, ``targets`` the characters it chose); a sample may be the empty word (it ended at once).
    """
    _check_model(model)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}.")
    device = next(model.parameters()).device
    inputs = torch.zeros(n, max_length, dtype=torch.int64)
    targets = torch.full((n, max_length), IGNORE_LABEL, dtype=torch.int64)
    with evaluating(model):
        for begin in range(0, n, batch_size):
            rows = slice(begin, min(begin + batch_size, n))
            b = rows.stop - rows.start
            token = torch.zeros(b, 1, dtype=torch.int64, device=device)
            alive = torch.ones(b, dtype=torch.bool)
            state = None
            for t in range(max_length):
                logits, state = model.forward_with_state(token, state)
                probabilities = F.softmax(logits[:, -1].float().cpu() / temperature, dim=-1)
                # Inverse-CDF sampling: the first token whose cumulative probability exceeds a uniform
                # draw (the same distribution as torch.multinomial, several times faster for small batches).
                u = torch.rand(b, 1, generator=generator)
                chosen = (probabilities.cumsum(dim=-1) < u).sum(dim=-1).clamp_(max=VOCAB_SIZE - 1)
                targets[rows, t] = torch.where(alive, chosen, IGNORE_LABEL)
                alive &= chosen != 0
                if t + 1 < max_length:
                    inputs[rows, t + 1] = torch.where(alive, chosen, 0)
                if not bool(alive.any()):
                    break
                token = chosen.unsqueeze(1).to(device)
    used = int((targets != IGNORE_LABEL).sum(dim=1).max())
    inputs, targets = inputs[:, :used].contiguous(), targets[:, :used].contiguous()
    return EncodedWords([decode(row) for row in targets.tolist()], inputs, targets)


@torch.no_grad()
def bits_per_character(model: nn.Module, data: EncodedWords, batch_size: int = 4096) -> float:
    """The model's average surprise per real position, in bits: ``cross-entropy / ln 2``.

    Every letter and each word's end-of-word token count as one character. 0 would be a model that
    is always sure and right; ``log2(27) = 4.75`` is a uniform guess over the vocabulary.
    """
    _check_model(model)
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with evaluating(model):
        for begin in range(0, len(data), batch_size):
            inputs = data.inputs[begin : begin + batch_size].to(device)
            targets = data.targets[begin : begin + batch_size].to(device)
            logits = model(inputs)
            real = targets != IGNORE_LABEL
            total += F.cross_entropy(logits[real], targets[real], reduction="sum").item()
            count += int(real.sum())
    return total / count / math.log(2)


@torch.no_grad()
def predict_sequence_logits(model: nn.Module, data: EncodedWords, batch_size: int = 4096) -> torch.Tensor:
    """The model's ``(N, L, V)`` logits for every word of ``data``, in ``eval()`` mode without autograd.

    What token-level distillation caches once: the teacher's outputs for every training word, sliced
    per batch. Words are run in chunks of similar length (sorted by length), so little time goes into
    padding; the logits at padded positions are 0 (they are never used: their targets are ignored).
    """
    _check_model(model)
    device = next(model.parameters()).device
    lengths = data.lengths
    logits = torch.zeros(len(data), data.inputs.shape[1], model.vocab_size)
    order = torch.argsort(lengths, stable=True)
    with evaluating(model):
        for begin in range(0, len(data), batch_size):
            rows = order[begin : begin + batch_size]
            length = int(lengths[rows].max())
            logits[rows, :length] = model(data.inputs[rows, :length].to(device)).float().cpu()
    return logits.masked_fill_(~data.mask.unsqueeze(-1), 0.0)


def distil_on_policy(
    student: CharGRU,
    teacher: nn.Module,
    *,
    steps: int,
    direction: str = "forward",
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    max_length: int = 32,
    progress: bool = True,
    description: str = "on-policy",
) -> list[float]:
    """On-policy distillation: the student writes words and matches the teacher's distribution at each prefix.

    Each step samples ``batch_size`` words from the student (no gradient flows through the sampling),
    runs both models over those words, and minimises ``token_kl`` between their next-character
    distributions at every position the student generated (forward or reverse KL, ``direction``).
    This is GKD with only student-generated data (Agarwal et al., 2024). Returns the loss of each step.

    Unlike ``kdutils.training.fit`` this loop has no fixed data to shuffle: the student writes each
    step's words itself, so the step is the unit here, not the epoch.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(repr(d) for d in DIRECTIONS)}, got {direction!r}.")
    optimizer = adam(student.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    device = next(student.parameters()).device
    losses = []
    with evaluating(teacher):
        for _ in tqdm(range(steps), desc=description, unit="step", disable=not progress):
            batch = sample_words(student, batch_size, generator=generator, max_length=max_length).to(device)
            with torch.no_grad():
                teacher_logits = teacher(batch.inputs)
            student.train()
            loss = token_kl(student(batch.inputs), teacher_logits, batch.mask, direction)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
    return torch.stack(losses).tolist()


@dataclass(frozen=True)
class SampleStatistics:
    """What a model's samples are: shares of ``n`` samples (0..1)."""

    n: int
    novel_words: float  # real dictionary words that are not training words
    copies: float  # exact copies of training words
    distinct: float  # distinct samples / n

    def __str__(self) -> str:
        return (f"novel real words {self.novel_words:6.1%} | copies of training words {self.copies:6.1%} | "
                f"distinct {self.distinct:6.1%}")


def sample_statistics(
    samples: Sequence[str], train_words: Iterable[str], dictionary: Iterable[str]
) -> SampleStatistics:
    """The share of ``samples`` that are real words never seen in training, copies of training words, distinct.

    ``dictionary`` is every word of the cleaned list (train, validation and test); a "novel real word"
    is in it but not in ``train_words``: the model spelled a real word it was never shown.
    """
    samples = list(samples)
    if not samples:
        raise ValueError("no samples to measure.")
    train_words, dictionary = set(train_words), set(dictionary)
    if not train_words <= dictionary:
        raise ValueError("every training word must be in the dictionary.")
    n = len(samples)
    novel = sum(1 for s in samples if s in dictionary and s not in train_words)
    copies = sum(1 for s in samples if s in train_words)
    return SampleStatistics(n, novel / n, copies / n, len(set(samples)) / n)
