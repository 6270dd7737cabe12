"""Words as data for a character-level language model (notebook 10): the word list, its words, their tensors.

Each word is spelled one character at a time, as a language model spells a sentence one token at a
time, with one extra token, ``"."``, that both starts a word (as an input) and ends it (as a target).

* the word list: ``load_word_list`` (SCOWL's American English as Debian's ``wamerican`` ships it, verified
  by SHA-256; a copy ships with kdutils);
* words: ``clean_words`` (lowercase a-z only, no possessives), ``split_words`` (train, validation and
  test *words*, fixed seed), ``drop_words`` (leave held-out words out of a corpus a model wrote);
* tensors: ``encode_words`` gives ``EncodedWords``: inputs and next-character targets, padded positions
  carrying ``IGNORE_LABEL``; ``EncodedWords.batch`` is what ``kdutils.training.fit`` trains on.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import ChecksumError, DatasetNotFoundError
from .files import default_root
from .losses import IGNORE_LABEL

__all__ = [
    "ALPHABET",
    "BOUNDARY",
    "SYMBOLS",
    "VOCAB_SIZE",
    "WORD_LIST_PACKAGE",
    "WORD_LIST_SHA256",
    "WORD_LIST_SHIPPED_PATH",
    "WORD_LIST_SYSTEM_PATH",
    "EncodedWords",
    "WordSplits",
    "clean_words",
    "decode",
    "drop_words",
    "encode_words",
    "load_word_list",
    "split_words",
    "word_list_path",
]

#: Token 0: the start of a word as an input, its end as a target.
BOUNDARY = "."
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
SYMBOLS = BOUNDARY + ALPHABET
VOCAB_SIZE = len(SYMBOLS)  # 27
_TOKEN = {c: i for i, c in enumerate(SYMBOLS)}
_WORD = re.compile(r"[a-z]+")


# --- the word list -------------------------------------------------------------------------------

#: The word list ships with kdutils (gzip of the file below, with its copyright notice beside it), so that
#: notebook 10 runs offline on any system; the Debian and Ubuntu package that installs the same file is optional.
WORD_LIST_SHIPPED_PATH = Path(__file__).resolve().parent / "corpora" / "american-english.gz"
WORD_LIST_PACKAGE = "wamerican"
WORD_LIST_SYSTEM_PATH = Path("/usr/share/dict/american-english")
#: SHA-256 of ``american-english`` from wamerican 2020.12.07-2 (Debian 12 "bookworm"; 104,334 lines).
WORD_LIST_SHA256 = "9f513f1ceadb6a01c5485b7dbdfd5118dc66cd70b59cae2851292112d4066a32"
WORD_LIST_VERSION = "wamerican 2020.12.07-2"

def word_list_path(root: str | Path | None = None) -> Path:
    """Where the word list is looked for first: ``data/words/american-english`` (a copy you put there)."""
    return (Path(root).expanduser() if root is not None else default_root()) / "words" / "american-english"


def load_word_list(path: str | Path | None = None, root: str | Path | None = None) -> list[str]:
    """The lines of the ``wamerican`` word list, verified by SHA-256, without their line endings.

    Looked for at ``path`` when given (plain or ``.gz``), else in the data folder
    (``data/words/american-english``), then in the copy that ships with kdutils
    (``kdutils/corpora/american-english.gz``), then where the Debian/Ubuntu package ``wamerican``
    installs it (``/usr/share/dict/american-english``). Raises ``DatasetNotFoundError`` when no file is
    found, and ``ChecksumError`` when the content is not the one the notebook's numbers come from
    (another release of the list, or a damaged copy).
    """
    if path is not None:
        candidates = [Path(path).expanduser()]
    else:
        candidates = [word_list_path(root), WORD_LIST_SHIPPED_PATH, WORD_LIST_SYSTEM_PATH]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise DatasetNotFoundError(
            f"the word list was not found (looked in {', '.join(str(p) for p in candidates)}). Ways to get it:\n"
            f"  - restore kdutils/corpora/american-english.gz from the repository (git checkout -- kdutils/corpora)\n"
            f"  - on Debian or Ubuntu: sudo apt-get install {WORD_LIST_PACKAGE} "
            f"(installs {WORD_LIST_SYSTEM_PATH})\n"
            f"  - copy american-english from {WORD_LIST_VERSION} to {word_list_path(root)}"
        )
    content = found.read_bytes()
    if found.suffix == ".gz":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError) as error:
            raise ChecksumError(f"{found} is not a readable gzip file ({error}); restore it from git.") from None
    actual = hashlib.sha256(content).hexdigest()
    if actual != WORD_LIST_SHA256:
        raise ChecksumError(
            f"{found} is not the word list of {WORD_LIST_VERSION} (Debian 12): its SHA-256 is {actual}, expected "
            f"{WORD_LIST_SHA256}. Other releases of {WORD_LIST_PACKAGE} hold other words; use the copy that ships in "
            f"kdutils/corpora, or copy the american-english of {WORD_LIST_VERSION} to {word_list_path(root)}."
        )
    return content.decode("utf-8").splitlines()


# --- words and their tensors ---------------------------------------------------------------------


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

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)`` of the words at ``idx``, cut to the longest of them: one mini-batch for ``fit``.

        The positions past the batch's longest word are padding in every row, so cutting them off changes
        no prediction (the model is causal) and saves their cost.
        """
        targets = self.targets[idx]
        length = int((targets != IGNORE_LABEL).sum(dim=1).max())
        return self.inputs[idx, :length], targets[:, :length]

    def to(self, device: torch.device | str) -> EncodedWords:
        """These words with their tensors on ``device`` (sharing the tensors that are there already)."""
        return EncodedWords(self.words, self.inputs.to(device), self.targets.to(device))


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
