"""kdutils.words: the word list's words, their splits, their tensors and the batches fit trains on."""

import gzip
import hashlib

import pytest
import torch

from kdutils import words
from kdutils.data import ChecksumError, DatasetNotFoundError
from kdutils.losses import IGNORE_LABEL
from kdutils.words import SYMBOLS, EncodedWords, clean_words, decode, drop_words, encode_words, split_words


@pytest.fixture
def batch():
    """Three words of different lengths, so two of them are padded."""
    return encode_words(["cat", "tiger", "ox"])


def test_clean_words_keeps_lowercase_a_to_z_and_drops_possessives():
    lines = ["cat", "cat's", "Cat", "naïve", "o'clock", "well-known", " dog \n", "cat", "", "zebra's", "zebra"]
    assert clean_words(lines) == ["cat", "dog", "zebra"]


def test_split_words_is_disjoint_complete_and_reproducible():
    words = [f"w{'a' * i}" for i in range(100)]
    splits = split_words(words, fractions=(0.8, 0.1), seed=0)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (80, 10, 10)
    assert sorted(splits.train + splits.validation + splits.test) == sorted(words)
    assert split_words(words, seed=0) == splits
    assert split_words(words, seed=1).test != splits.test
    with pytest.raises(ValueError, match="distinct"):
        split_words(["a", "b", "a"])
    with pytest.raises(ValueError, match="fractions"):
        split_words(words, fractions=(0.9, 0.2))


def test_encode_words_shifts_targets_and_pads_with_ignore_label(batch):
    assert batch.inputs.shape == batch.targets.shape == (3, 6)  # "tiger" + its end mark
    assert decode(batch.targets[1]) == "tiger"
    assert batch.inputs[1].tolist() == [0] + [SYMBOLS.index(c) for c in "tiger"]
    assert batch.targets[0].tolist() == [SYMBOLS.index(c) for c in "cat"] + [0, IGNORE_LABEL, IGNORE_LABEL]
    assert batch.lengths.tolist() == [4, 6, 3]
    assert batch.mask.sum().item() == 13
    # the input at t + 1 is the target at t, wherever both are real
    real = batch.mask[:, :-1] & batch.mask[:, 1:]
    assert torch.equal(batch.inputs[:, 1:][real], batch.targets[:, :-1][real])
    assert encode_words(["cat"], length=10).inputs.shape == (1, 10)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["cat", ""], "word 1 is empty"),
        (["Cat"], r"outside the vocabulary a-z: \['C'\]"),
        (["don't"], "outside the vocabulary"),
        (["naïve"], "clean the list first"),
        ([42], "not a string"),
        ([], "no words"),
    ],
)
def test_encode_words_rejects_bad_words(words, message):
    with pytest.raises(ValueError, match=message):
        encode_words(words)


def test_encode_words_rejects_a_length_too_short():
    with pytest.raises(ValueError, match="too short"):
        encode_words(["tiger"], length=5)


def test_decode_stops_at_the_end_mark_and_rejects_unknown_tokens():
    assert decode([3, 1, 20, 0, 5]) == "cat"
    assert decode([3, 1, IGNORE_LABEL]) == "ca"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        decode([3, 27])


def test_drop_words_keeps_the_order_and_the_rows_of_the_words_it_keeps():
    data = encode_words(["cat", "tiger", "ox", "cat", "emu", "gnu"])
    kept = drop_words(data, {"cat", "gnu"})
    assert kept.words == ["tiger", "ox", "emu"]
    expected = encode_words(kept.words, length=data.inputs.shape[1])
    assert torch.equal(kept.inputs, expected.inputs) and torch.equal(kept.targets, expected.targets)
    first_two = drop_words(data, {"tiger"}, keep=2)
    assert first_two.words == ["cat", "ox"] and len(first_two) == 2
    assert drop_words(data, set()).words == data.words


def test_drop_words_says_when_too_few_words_are_left():
    data = encode_words(["cat", "ox", "emu"])
    with pytest.raises(ValueError, match="fewer than the 3 to keep: sample more"):
        drop_words(data, {"ox"}, keep=3)
    with pytest.raises(ValueError, match="keep must be a positive integer"):
        drop_words(data, {"ox"}, keep=0)


def test_a_batch_of_words_is_cut_to_its_longest_word(batch):
    inputs, targets = batch.batch(torch.tensor([2, 0]))  # "ox" and "cat": 4 positions, not "tiger"'s 6
    assert inputs.shape == targets.shape == (2, 4)
    assert torch.equal(inputs, batch.inputs[[2, 0], :4]) and torch.equal(targets, batch.targets[[2, 0], :4])
    assert decode(targets[1]) == "cat" and (targets[0] == IGNORE_LABEL).sum() == 1  # "ox" + end: one padded
    inputs, targets = batch.batch(torch.tensor([1]))
    assert inputs.shape == (1, 6)


def test_words_move_to_a_device_whole(batch):
    moved = batch.to("cpu")
    assert isinstance(moved, EncodedWords) and moved.words == batch.words
    assert moved.inputs is batch.inputs  # already there: nothing copied
    meta = batch.to("meta")
    assert meta.inputs.device.type == meta.targets.device.type == "meta"
    assert batch.inputs.device.type == "cpu"  # the original stays where it was


# --- the word list of notebook 10 (wamerican) -------------------------------------------------------------


@pytest.fixture
def word_list(tmp_path, monkeypatch):
    """A small word list whose SHA-256 is the expected one, and no system copy to fall back on."""
    content = "Aachen\naardvark\naardvark's\nzebra\n"
    path = tmp_path / "american-english"
    path.write_text(content, encoding="utf-8")
    monkeypatch.setattr(words, "WORD_LIST_SHA256", hashlib.sha256(content.encode()).hexdigest())
    monkeypatch.setattr(words, "WORD_LIST_SYSTEM_PATH", tmp_path / "not-installed" / "american-english")
    monkeypatch.setattr(words, "WORD_LIST_SHIPPED_PATH", tmp_path / "not-shipped" / "american-english.gz")
    return path


def test_word_list_is_read_and_verified(word_list):
    assert words.load_word_list(word_list) == ["Aachen", "aardvark", "aardvark's", "zebra"]


def test_word_list_in_the_data_folder_comes_first(word_list, tmp_path):
    root = tmp_path / "data"
    copy = words.word_list_path(root)
    assert copy == root / "words" / "american-english"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(word_list.read_bytes())
    assert words.load_word_list(root=root)[-1] == "zebra"


def test_missing_word_list_says_how_to_get_it(word_list, tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        words.load_word_list(root=tmp_path / "empty")
    message = str(info.value)
    assert "kdutils/corpora" in message and "apt-get install wamerican" in message
    assert str(words.WORD_LIST_SYSTEM_PATH) in message and str(words.word_list_path(tmp_path / "empty")) in message
    with pytest.raises(DatasetNotFoundError, match="wamerican"):
        words.load_word_list(tmp_path / "nowhere.txt")


def test_the_shipped_gzip_copy_is_used_when_there_is_no_other(word_list, tmp_path, monkeypatch):
    shipped = tmp_path / "corpora" / "american-english.gz"
    shipped.parent.mkdir()
    shipped.write_bytes(gzip.compress(word_list.read_bytes()))
    monkeypatch.setattr(words, "WORD_LIST_SHIPPED_PATH", shipped)
    assert words.load_word_list(root=tmp_path / "empty") == ["Aachen", "aardvark", "aardvark's", "zebra"]


def test_a_damaged_shipped_copy_is_an_error_not_other_words(word_list, tmp_path):
    truncated = tmp_path / "american-english.gz"
    truncated.write_bytes(gzip.compress(word_list.read_bytes())[:-6])
    with pytest.raises(ChecksumError, match="not a readable gzip file"):
        words.load_word_list(truncated)
    other = tmp_path / "other.gz"
    other.write_bytes(gzip.compress(b"Aachen\n"))
    with pytest.raises(ChecksumError, match="SHA-256"):
        words.load_word_list(other)


def test_another_word_list_is_rejected_by_its_checksum(word_list):
    word_list.write_text("Aachen\naardvark\n", encoding="utf-8")  # another release: other words
    with pytest.raises(ChecksumError, match=r"american-english is not the word list of wamerican 2020\.12\.07-2"):
        words.load_word_list(word_list)


def test_the_shipped_word_list_is_the_one_the_notebook_expects():
    """The copy in kdutils/corpora: present in every clone, on every system, so notebook 10 runs offline."""
    lines = words.load_word_list(words.WORD_LIST_SHIPPED_PATH)
    assert len(lines) == 104_334 and lines[:2] == ["A", "AA"]
    notice = words.WORD_LIST_SHIPPED_PATH.with_name("american-english.COPYRIGHT").read_text(encoding="utf-8")
    assert "Permission to use, copy, modify, distribute and sell these word" in notice


def test_debians_word_list_when_installed_is_the_same_file():
    if not words.WORD_LIST_SYSTEM_PATH.is_file():
        pytest.skip("wamerican is not installed; the shipped copy is used (sudo apt-get install wamerican to compare)")
    assert words.load_word_list(words.WORD_LIST_SYSTEM_PATH) == words.load_word_list(
        words.WORD_LIST_SHIPPED_PATH)
