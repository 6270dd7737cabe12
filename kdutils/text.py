"""Character-level language models of words, for distilling a language model (notebook 10).

Each word is spelled one character at a time, as a language model spells a sentence one token at a
time, with one extra token, ``"."``, that both starts a word (as an input) and ends it (as a target).

* data: ``clean_words`` (lowercase a-z only, no possessives), ``split_words`` (train, validation and
  test *words*, fixed seed), ``encode_words`` (inputs and next-character targets; padded positions
  carry ``IGNORE_LABEL``);
* the model: ``CharGRU``, a one-layer GRU language model (teacher and student differ only in size);
* sampling: ``sample_words`` (seeded, one character at a time, until the end-of-word token);
* the sequence losses: ``sequence_cross_entropy``; ``token_distillation_loss``, the series'
  ``distillation_loss`` at every real position; ``token_kl``, the forward or reverse KL between the
  teacher's and the student's next-character distributions (on-policy distillation);
* training: ``fit_language_model`` (the series' loop, over words) and ``distil_on_policy``;
* measures: ``bits_per_character`` and ``sample_statistics``.

References: Y. Kim and A. M. Rush, "Sequence-Level Knowledge Distillation", EMNLP 2016
(https://arxiv.org/abs/1606.07947); R. Agarwal et al., "On-Policy Distillation of Language Models:
Learning from Self-Generated Mistakes" (GKD), ICLR 2024 (https://arxiv.org/abs/2306.13649); Y. Gu et
al., "MiniLLM: Knowledge Distillation of Large Language Models", ICLR 2024 (https://arxiv.org/abs/2306.08543).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .losses import IGNORE_LABEL, distillation_loss
from .progress import tqdm
from .training import adam

__all__ = [
    "ALPHABET",
    "BOUNDARY",
    "DIRECTIONS",
    "SYMBOLS",
    "VOCAB_SIZE",
    "CharGRU",
    "EncodedWords",
    "SampleStatistics",
    "WordSplits",
    "bits_per_character",
    "clean_words",
    "decode",
    "distil_on_policy",
    "drop_words",
    "encode_words",
    "fit_language_model",
    "predict_sequence_logits",
    "sample_statistics",
    "sample_words",
    "sequence_cross_entropy",
    "split_words",
    "token_distillation_loss",
    "token_kl",
]

#: Token 0: the start of a word as an input, its end as a target.
BOUNDARY = "."
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
SYMBOLS = BOUNDARY + ALPHABET
VOCAB_SIZE = len(SYMBOLS)  # 27
#: The two KL divergences ``token_kl`` computes: KL(teacher || student) and KL(student || teacher).
DIRECTIONS = ("forward", "reverse")
_TOKEN = {c: i for i, c in enumerate(SYMBOLS)}
_WORD = re.compile(r"[a-z]+")


# --- data ----------------------------------------------------------------------------------------


def clean_words(lines: Iterable[str]) -> list[str]:
    """The distinct words of ``lines`` spelled with lowercase a-z only, sorted.

    Possessives ("aardvark's") are dropped, and so are proper nouns (a capital letter) and words with
    accents, hyphens or apostrophes: what remains is spelled with the 26 letters of the vocabulary.
    """
    words = set()
    for line in lines:
        word = line.strip()
        if word.endswith("'s"):
            continue  # a possessive: the same word again with "'s"
        if _WORD.fullmatch(word):
            words.add(word)
    return sorted(words)


@dataclass(frozen=True)
class WordSplits:
    """Disjoint lists of words: train (to fit), validation (to choose settings), test (to report once)."""

    train: list[str]
    validation: list[str]
    test: list[str]


def split_words(words: Sequence[str], fractions: tuple[float, float] = (0.8, 0.1), seed: int = 0) -> WordSplits:
    """Shuffle ``words`` with ``seed`` and cut them into train, validation and test words.

    ``fractions`` are the train and validation shares; the test set gets the rest. A word lands in
    exactly one split (duplicates are an error), so a test word is never seen in training.
    """
    words = list(words)
    if len(set(words)) != len(words):
        raise ValueError("words must be distinct: a word in two splits would leak the test set into training.")
    train_share, validation_share = fractions
    if not (0 < train_share and 0 < validation_share and train_share + validation_share < 1):
        raise ValueError(f"fractions must be two positive shares summing to less than 1, got {fractions!r}.")
    random.Random(seed).shuffle(words)
    n_train, n_validation = round(train_share * len(words)), round(validation_share * len(words))
    return WordSplits(words[:n_train], words[n_train : n_train + n_validation], words[n_train + n_validation :])


@dataclass(frozen=True)
class EncodedWords:
    """Words as tensors: ``inputs[i]`` = ".", then the letters; ``targets[i]`` = the letters, then ".".

    Both are int64 ``(N, L)``: position ``t`` of ``inputs`` is what the model reads, position ``t`` of
    ``targets`` the character it should predict next. Positions past the end of a word are padding:
    its target is ``IGNORE_LABEL``, and its input is never read by a real position (the model is causal).
    """

    words: list[str]
    inputs: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return self.inputs.shape[0]

    @property
    def mask(self) -> torch.Tensor:
        """``(N, L)`` True at the real positions (the letters and the end-of-word token)."""
        return self.targets != IGNORE_LABEL

    @property
    def lengths(self) -> torch.Tensor:
        """``(N,)`` real positions per word: its letters plus the end-of-word token."""
        return self.mask.sum(dim=1)


def encode_words(words: Sequence[str], length: int | None = None) -> EncodedWords:
    """Encode ``words`` (lowercase a-z, non-empty) as ``EncodedWords`` padded to ``length`` positions.

    ``length`` defaults to the longest word plus one (its end-of-word token). Raises ``ValueError`` for
    an empty word, a character outside a-z, or a ``length`` too short for a word.
    """
    words = list(words)
    if not words:
        raise ValueError("no words to encode.")
    for i, word in enumerate(words):
        if not isinstance(word, str):
            raise ValueError(f"word {i} is a {type(word).__name__}, not a string.")
        if not word:
            raise ValueError(f"word {i} is empty: every word needs at least one letter.")
        unknown = sorted(set(word) - set(ALPHABET))
        if unknown:
            raise ValueError(
                f"word {i} ({word!r}) has characters outside the vocabulary a-z: {unknown}; "
                "clean the list first (clean_words)."
            )
    longest = max(len(w) for w in words) + 1
    length = longest if length is None else length
    if length < longest:
        raise ValueError(f"length {length} is too short: the longest word needs {longest} positions.")
    inputs = torch.zeros(len(words), length, dtype=torch.int64)
    targets = torch.full((len(words), length), IGNORE_LABEL, dtype=torch.int64)
    for i, word in enumerate(words):
        letters = torch.tensor([_TOKEN[c] for c in word], dtype=torch.int64)
        inputs[i, 1 : len(word) + 1] = letters
        targets[i, : len(word)] = letters
        targets[i, len(word)] = 0  # the end-of-word token
    return EncodedWords(words, inputs, targets)


def decode(tokens: Iterable[int]) -> str:
    """The letters of a sequence of token ids, up to (not including) the first end-of-word token."""
    letters = []
    for token in tokens:
        token = int(token)
        if token == 0 or token == IGNORE_LABEL:
            break
        if not 0 < token < VOCAB_SIZE:
            raise ValueError(f"token {token} is outside the vocabulary (0 to {VOCAB_SIZE - 1}).")
        letters.append(SYMBOLS[token])
    return "".join(letters)


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


# --- the sequence losses -------------------------------------------------------------------------


def _check_logits(name: str, logits: torch.Tensor, any_vocabulary: bool = False) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or not logits.is_floating_point():
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{name} must be a 3-D floating point tensor (words, positions, vocabulary), got {shape}.")
    if not any_vocabulary and logits.shape[-1] != VOCAB_SIZE:
        raise ValueError(
            f"{name} score {logits.shape[-1]} tokens, but the vocabulary has {VOCAB_SIZE} ('.' and a-z): "
            "the model was built with another vocabulary size."
        )


def _check_pair(student_logits: torch.Tensor, teacher_logits: torch.Tensor, any_vocabulary: bool = False) -> None:
    _check_logits("student_logits", student_logits, any_vocabulary)
    _check_logits("teacher_logits", teacher_logits, any_vocabulary)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits {tuple(student_logits.shape)} and teacher_logits {tuple(teacher_logits.shape)} must "
            "have the same shape: the same words, positions and vocabulary."
        )


def _check_targets(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mask of real positions, after checking ``targets`` against ``logits``."""
    _check_logits("logits", logits)
    if not isinstance(targets, torch.Tensor) or targets.shape != logits.shape[:2] or targets.dtype != torch.int64:
        shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must be int64 of shape {tuple(logits.shape[:2])} (words, positions), got {shape}.")
    mask = targets != IGNORE_LABEL
    real = targets[mask]
    vocab = logits.shape[-1]
    if real.numel() == 0:
        raise ValueError("targets have no real position (all are IGNORE_LABEL): nothing to learn from.")
    if bool((real < 0).any() | (real >= vocab).any()):
        raise ValueError(
            f"targets hold tokens from {real.min().item()} to {real.max().item()}, outside the vocabulary "
            f"(0 to {vocab - 1}); encode words with encode_words."
        )
    return mask


def sequence_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (nats) averaged over the real positions; padded ones (``IGNORE_LABEL``) are left out."""
    mask = _check_targets(logits, targets)
    return F.cross_entropy(logits[mask], targets[mask])


def token_distillation_loss(
    student_logits: torch.Tensor,
    targets: torch.Tensor,
    teacher_logits: torch.Tensor,
    T: float = 1.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """Token-level KD: the series' ``distillation_loss`` applied at every real position of every word.

    The ``(N, L, V)`` logits are flattened to one row per real position (the padded positions are
    dropped first: ``distillation_loss`` averages its KL term over every row it is given, so padding
    left in would dilute it). With ``alpha = 0`` this is ``sequence_cross_entropy``.
    """
    _check_pair(student_logits, teacher_logits)
    mask = _check_targets(student_logits, targets)
    return distillation_loss(student_logits[mask], targets[mask], teacher_logits[mask], T=T, alpha=alpha)


def token_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor, direction: str = "forward"
) -> torch.Tensor:
    r"""The KL divergence between next-character distributions, averaged over the positions in ``mask``.

    * ``"forward"``: :math:`\mathrm{KL}(p_t \| p_s) = \sum_v p_t(v) \log \frac{p_t(v)}{p_s(v)}`. Large
      wherever the teacher gives probability that the student does not: the student must *cover*
      every character the teacher allows (mode-covering).
    * ``"reverse"``: :math:`\mathrm{KL}(p_s \| p_t) = \sum_v p_s(v) \log \frac{p_s(v)}{p_t(v)}`. Large
      wherever the student gives probability that the teacher does not: the student may drop some of
      the teacher's choices and pile its mass on the teacher's likeliest ones (mode-seeking).

    The sums run over the whole vocabulary (as in GKD), so no sampling noise enters the loss itself.
    Any vocabulary size works (a 3-token example included), as long as the two models share it.
    """
    _check_pair(student_logits, teacher_logits, any_vocabulary=True)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(repr(d) for d in DIRECTIONS)}, got {direction!r}.")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != student_logits.shape[:2]:
        raise ValueError(f"mask must be a bool tensor of shape {tuple(student_logits.shape[:2])} (words, positions).")
    if not bool(mask.any()):
        raise ValueError("mask selects no position: nothing to learn from.")
    log_s = F.log_softmax(student_logits[mask], dim=-1)
    log_t = F.log_softmax(teacher_logits[mask], dim=-1)
    if direction == "forward":
        per_position = (log_t.exp() * (log_t - log_s)).sum(dim=-1)
    else:
        per_position = (log_s.exp() * (log_s - log_t)).sum(dim=-1)
    return per_position.mean()


# --- sampling, training, measures -----------------------------------------------------------------


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
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    inputs = torch.zeros(n, max_length, dtype=torch.int64)
    targets = torch.full((n, max_length), IGNORE_LABEL, dtype=torch.int64)
    try:
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
    finally:
        model.train(was_training)
    used = int((targets != IGNORE_LABEL).sum(dim=1).max())
    inputs, targets = inputs[:, :used].contiguous(), targets[:, :used].contiguous()
    return EncodedWords([decode(row) for row in targets.tolist()], inputs, targets)


@torch.no_grad()
def bits_per_character(model: nn.Module, data: EncodedWords, batch_size: int = 4096) -> float:
    """The model's average surprise per real position, in bits: ``cross-entropy / ln 2``.

    Every letter and each word's end-of-word token count as one character. 0 would be a model that
    is always sure and right; ``log2(27) = 4.75`` is a uniform guess over the vocabulary.
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for begin in range(0, len(data), batch_size):
            inputs, targets = data.inputs[begin : begin + batch_size], data.targets[begin : begin + batch_size]
            logits = model(inputs)
            mask = _check_targets(logits, targets)
            total += F.cross_entropy(logits[mask], targets[mask], reduction="sum").item()
            count += int(mask.sum())
    finally:
        model.train(was_training)
    return total / count / math.log(2)


@torch.no_grad()
def predict_sequence_logits(model: nn.Module, data: EncodedWords, batch_size: int = 4096) -> torch.Tensor:
    """The model's ``(N, L, V)`` logits for every word of ``data``, in ``eval()`` mode without autograd.

    What token-level distillation caches once: the teacher's outputs for every training word, sliced
    per batch. Words are run in chunks of similar length (sorted by length), so little time goes into
    padding; the logits at padded positions are 0 (they are never used: their targets are ignored).
    """
    _check_model(model)
    was_training = model.training
    model.eval()
    lengths = data.lengths
    logits = torch.zeros(len(data), data.inputs.shape[1], model.vocab_size)
    try:
        order = torch.argsort(lengths, stable=True)
        for begin in range(0, len(data), batch_size):
            rows = order[begin : begin + batch_size]
            length = int(lengths[rows].max())
            logits[rows, :length] = model(data.inputs[rows, :length]).float().cpu()
    finally:
        model.train(was_training)
    return logits.masked_fill_(~data.mask.unsqueeze(-1), 0.0)


#: ``batch_loss(logits, targets, idx)``: the loss of one mini-batch of words (``idx``: their rows).
SequenceLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def fit_language_model(
    model: nn.Module,
    data: EncodedWords,
    batch_loss: SequenceLoss,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    lr_schedule: str = "constant",
    progress: bool = True,
    description: str = "train",
) -> list[float]:
    """The series' training loop (``kdutils.training.fit``) over words; returns the mean loss of each epoch.

    Shuffled mini-batches of words (the order depends only on ``seed``), Adam, ``batch_loss(logits,
    targets, idx)``. Each batch is cut to its longest word, so padding costs little.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}.")
    n = len(data)
    lengths = data.lengths
    optimizer = adam(model.parameters(), lr=lr)
    scheduler = None
    if lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * math.ceil(n / batch_size))
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in tqdm(range(epochs), desc=description, unit="epoch", disable=not progress):
        total = torch.zeros(())
        order = torch.randperm(n, generator=generator)
        for begin in range(0, n, batch_size):
            idx = order[begin : begin + batch_size]
            length = int(lengths[idx].max())
            logits = model(data.inputs[idx, :length])
            loss = batch_loss(logits, data.targets[idx, :length], idx)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += loss.detach() * len(idx)
        losses.append(total.item() / n)
    return losses


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
    """On-policy distillation: the student writes words, the teacher grades every character it chose.

    Each step samples ``batch_size`` words from the student (no gradient flows through the sampling),
    runs both models over those words, and minimises ``token_kl`` between their next-character
    distributions at every position the student generated (forward or reverse KL, ``direction``).
    This is GKD with only student-generated data (Agarwal et al., 2024). Returns the loss of each step.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(repr(d) for d in DIRECTIONS)}, got {direction!r}.")
    optimizer = adam(student.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    was_training = teacher.training
    teacher.eval()
    losses = []
    try:
        for _ in tqdm(range(steps), desc=description, unit="step", disable=not progress):
            batch = sample_words(student, batch_size, generator=generator, max_length=max_length)
            with torch.no_grad():
                teacher_logits = teacher(batch.inputs)
            student.train()
            loss = token_kl(student(batch.inputs), teacher_logits, batch.mask, direction)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
    finally:
        teacher.train(was_training)
    return torch.stack(losses).tolist()


def drop_words(data: EncodedWords, excluded: Collection[str], keep: int | None = None) -> EncodedWords:
    """The rows of ``data`` whose word is not in ``excluded``, in their order; only the first ``keep`` when given.

    For a corpus a model wrote: dropping the held-out (validation and test) words keeps a student
    trained on it from ever seeing them. Sample a few more words than ``keep`` to make up for those dropped.
    """
    excluded = set(excluded)
    rows = [i for i, word in enumerate(data.words) if word not in excluded]
    if keep is not None:
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive integer, got {keep!r}.")
        if len(rows) < keep:
            raise ValueError(
                f"only {len(rows):,} of the {len(data):,} words are not excluded, fewer than the {keep:,} to keep: "
                "sample more words."
            )
        rows = rows[:keep]
    index = torch.tensor(rows, dtype=torch.int64)
    return EncodedWords([data.words[i] for i in rows], data.inputs[index], data.targets[index])


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
