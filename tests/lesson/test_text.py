"""kdutils.text: the character model, sampling, measures and on-policy distillation; a word model trains with fit."""

import copy
import math

import pytest
import torch

from kdutils.losses import sequence_cross_entropy, token_distillation_loss
from kdutils.text import (
    CharGRU,
    bits_per_character,
    distil_on_policy,
    predict_sequence_logits,
    sample_statistics,
    sample_words,
)
from kdutils.training import fit
from kdutils.words import SYMBOLS, VOCAB_SIZE, encode_words

from ..helpers import reference_training


@pytest.fixture(autouse=True)
def one_thread():
    """The models here are tiny: one thread is faster, and does not crawl when other processes share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def batch():
    """Three words of different lengths, so two of them are padded."""
    return encode_words(["cat", "tiger", "ox"])


class BiasedModel(torch.nn.Module):
    """A 'language model' that ignores its input and always gives the same next-token distribution."""

    def __init__(self, probabilities):
        super().__init__()
        self.vocab_size = len(probabilities)
        self.logits = torch.nn.Parameter(torch.as_tensor(probabilities, dtype=torch.float32).log())

    def forward_with_state(self, tokens, state=None):
        return self.logits.expand(*tokens.shape, -1), state

    def forward(self, tokens):
        return self.forward_with_state(tokens)[0]


# --- the model -----------------------------------------------------------------------------------


def test_char_gru_is_causal_and_steps_like_the_full_forward(batch):
    torch.manual_seed(0)
    model = CharGRU(hidden_size=16, embedding_size=8)
    full = model(batch.inputs)
    assert full.shape == (3, 6, VOCAB_SIZE)
    state, steps = None, []
    for t in range(batch.inputs.shape[1]):
        logits, state = model.forward_with_state(batch.inputs[:, t : t + 1], state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full)
    changed = batch.inputs.clone()
    changed[:, 3:] = 5  # change the later characters: the earlier predictions must not move
    torch.testing.assert_close(model(changed)[:, :3], full[:, :3])


def test_a_model_with_another_vocabulary_is_refused_where_the_text_meets_the_model(batch):
    with pytest.raises(ValueError, match="vocabulary has 27"):
        sample_words(CharGRU(8, 4, vocab_size=26), 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="vocabulary has 27"):
        predict_sequence_logits(CharGRU(8, 4, vocab_size=30), batch)
    with pytest.raises(ValueError, match="vocabulary has 27"):
        bits_per_character(CharGRU(8, 4, vocab_size=26), batch)


# --- sampling --------------------------------------------------------------------------------------


def test_sampling_is_reproducible_with_a_seeded_generator():
    torch.manual_seed(0)
    model = CharGRU(hidden_size=16, embedding_size=8)
    first = sample_words(model, 50, generator=torch.Generator().manual_seed(3))
    again = sample_words(model, 50, generator=torch.Generator().manual_seed(3))
    other = sample_words(model, 50, generator=torch.Generator().manual_seed(4))
    assert first.words == again.words and torch.equal(first.inputs, again.inputs)
    assert first.words != other.words
    assert all(set(w) <= set(SYMBOLS[1:]) for w in first.words)
    assert model.training  # the mode is restored


def test_samples_are_encoded_like_the_data():
    torch.manual_seed(1)
    model = CharGRU(hidden_size=16, embedding_size=8)
    written = sample_words(model, 40, generator=torch.Generator().manual_seed(0), max_length=40)
    ended = [i for i, w in enumerate(written.words) if w and written.lengths[i] == len(w) + 1]
    assert ended, "some samples should end within 40 positions"
    encoded = encode_words([written.words[i] for i in ended], length=written.inputs.shape[1])
    assert torch.equal(encoded.inputs, written.inputs[ended]) and torch.equal(encoded.targets, written.targets[ended])


def test_sampling_follows_the_model_distribution_and_cuts_long_words():
    generator = torch.Generator().manual_seed(0)
    never_ends = BiasedModel([0.0] + [1.0] + [0.0] * 25)  # always "a"
    written = sample_words(never_ends, 3, generator=generator, max_length=5)
    assert written.words == ["aaaaa"] * 3 and written.mask.all()
    ends_at_once = BiasedModel([1.0] + [0.0] * 26)
    assert sample_words(ends_at_once, 2, generator=generator).words == ["", ""]
    half = BiasedModel([0.5, 0.25, 0.25] + [0.0] * 24)  # end, "a" or "b"
    written = sample_words(half, 4000, generator=generator)
    ended_at_once = sum(w == "" for w in written.words) / 4000
    assert ended_at_once == pytest.approx(0.5, abs=0.03)
    assert set("".join(written.words)) <= {"a", "b"}


def test_sampling_rejects_bad_arguments():
    model = CharGRU(8, 4)
    with pytest.raises(ValueError, match="positive integer"):
        sample_words(model, 0, generator=torch.Generator())
    with pytest.raises(ValueError, match="temperature"):
        sample_words(model, 2, generator=torch.Generator(), temperature=0.0)


# --- measures ---------------------------------------------------------------------------------------


def test_bits_per_character_of_a_uniform_model_is_log2_of_the_vocabulary(batch):
    uniform = BiasedModel([1.0 / VOCAB_SIZE] * VOCAB_SIZE)
    assert bits_per_character(uniform, batch) == pytest.approx(math.log2(VOCAB_SIZE), abs=1e-5)
    torch.manual_seed(0)
    model = CharGRU(16, 8)
    expected = sequence_cross_entropy(model(batch.inputs), batch.targets).item() / math.log(2)
    assert bits_per_character(model, batch, batch_size=2) == pytest.approx(expected, rel=1e-5)


def test_predict_sequence_logits_matches_the_model_at_real_positions(batch):
    torch.manual_seed(0)
    model = CharGRU(16, 8)
    cached = predict_sequence_logits(model, batch, batch_size=2)
    with torch.no_grad():
        direct = model(batch.inputs)
    torch.testing.assert_close(cached[batch.mask], direct[batch.mask])
    assert torch.all(cached[~batch.mask] == 0)


def test_sample_statistics_counts_novel_words_copies_and_distinct():
    stats = sample_statistics(["cat", "cat", "dog", "zzq", "emu"], train_words=["cat", "ant"],
                              dictionary=["cat", "ant", "dog", "emu"])
    assert (stats.n, stats.novel_words, stats.copies, stats.distinct) == (5, 0.4, 0.4, 0.8)
    assert "novel real words" in str(stats)
    with pytest.raises(ValueError, match="no samples"):
        sample_statistics([], ["cat"], ["cat"])
    with pytest.raises(ValueError, match="in the dictionary"):
        sample_statistics(["cat"], ["cat", "gnu"], ["cat"])


# --- training: the series' one loop, fit, over words -------------------------------------------------


WORDS = ["cat", "car", "cart", "care", "bat", "bar", "barn", "tar", "tarn", "art", "arc", "cab", "tab", "rat"]


def cross_entropy(logits, targets, idx):
    return sequence_cross_entropy(logits, targets)


def test_fit_trains_a_word_model_reproducibly_on_batches_cut_to_their_longest_word():
    data = encode_words(WORDS)
    torch.manual_seed(0)
    initial = CharGRU(16, 8)
    before = bits_per_character(initial, data)
    runs, seen = [], []

    def loss(logits, targets, idx):
        seen.append((logits.shape[1], int(data.lengths[idx].max())))
        return sequence_cross_entropy(logits, targets)

    for _ in range(2):
        model = copy.deepcopy(initial)
        history = fit(model, data, loss, epochs=30, batch_size=4, lr=1e-2, seed=0, progress=False)
        runs.append(model)
    assert len(history.loss) == 30 and history.loss[-1] < history.loss[0]
    assert 0 < history.train_accuracy[-1] <= 1  # the share of real next characters predicted right
    assert bits_per_character(runs[0], data) < before - 1
    assert all(torch.equal(a, b) for a, b in zip(runs[0].parameters(), runs[1].parameters()))
    assert all(width == longest for width, longest in seen), "each batch is cut to its longest word"


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_fit_over_words_matches_a_plain_loop_over_the_same_batches(schedule):
    # As for images: a plain autograd loop with the same batch order, cutting, optimizer and schedule reaches
    # the same weights, so fit can serve both.
    data = encode_words(WORDS)
    torch.manual_seed(1)
    teacher, student = CharGRU(16, 8), CharGRU(12, 8)
    teacher_logits = predict_sequence_logits(teacher, data)
    reference = copy.deepcopy(student)

    def token_kd(logits, targets, idx):
        return token_distillation_loss(logits, targets, teacher_logits[idx, : logits.shape[1]], T=2.0, alpha=0.5)

    history = fit(student, data, token_kd, epochs=3, batch_size=4, lr=5e-3, seed=2, lr_schedule=schedule,
                  progress=False)

    def plain_batch_loss(idx):
        length = int(data.lengths[idx].max())
        logits = reference(data.inputs[idx, :length])
        return token_distillation_loss(logits, data.targets[idx, :length], teacher_logits[idx, :length], T=2.0,
                                       alpha=0.5)

    plain = reference_training(reference.parameters(), len(data), plain_batch_loss, epochs=3, batch_size=4, seed=2,
                               lr=5e-3, cosine=schedule == "cosine")
    assert history.loss == pytest.approx(plain, rel=1e-5)
    for a, b in zip(student.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    if schedule == "cosine":
        assert history.learning_rate[-1] == pytest.approx(0.0, abs=1e-12)
        assert history.learning_rate == sorted(history.learning_rate, reverse=True)


def test_fit_refuses_bad_loop_arguments_for_words_as_for_images():
    data = encode_words(WORDS)
    for kwargs, message in (({"epochs": 0}, "epochs"), ({"epochs": 1, "batch_size": 0}, "batch_size"),
                            ({"epochs": 1, "lr": 0.0}, "lr must be"),
                            ({"epochs": 1, "lr_schedule": "step"}, "lr_schedule")):
        with pytest.raises(ValueError, match=message):
            fit(CharGRU(8, 4), data, cross_entropy, progress=False, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_word_model_trains_and_is_measured_on_its_own_device():
    data = encode_words(WORDS)
    torch.manual_seed(0)
    model = CharGRU(16, 8).cuda()
    history = fit(model, data, cross_entropy, epochs=2, batch_size=4, progress=False)
    assert len(history.loss) == 2 and next(model.parameters()).is_cuda
    assert math.isfinite(bits_per_character(model, data))
    assert predict_sequence_logits(model, data).device.type == "cpu"
    written = sample_words(model, 5, generator=torch.Generator().manual_seed(0))
    assert len(written) == 5
    distil_on_policy(CharGRU(8, 4).cuda(), model, steps=2, batch_size=4, progress=False)


def test_on_policy_distillation_moves_the_student_towards_the_teacher():
    teacher = BiasedModel([0.3, 0.5, 0.2] + [0.0] * 24)  # writes words of "a" and "b", ends often
    teacher.logits.data.clamp_(min=-30)
    probe = encode_words(["ab", "ba", "aab", "b"])
    for direction in ("forward", "reverse"):
        torch.manual_seed(0)
        student = CharGRU(16, 8)
        before = bits_per_character(student, probe)
        losses = distil_on_policy(student, teacher, steps=40, direction=direction, batch_size=32, lr=2e-2, seed=0,
                                  max_length=12, progress=False)
        assert len(losses) == 40 and sum(losses[-10:]) < sum(losses[:10])
        assert bits_per_character(student, probe) < before
        written = sample_words(student, 500, generator=torch.Generator().manual_seed(0))
        assert sum(set(w) <= {"a", "b"} for w in written.words) > 0.9 * 500
    assert teacher.training  # the teacher's mode is restored
    with pytest.raises(ValueError, match="direction"):
        distil_on_policy(student, teacher, steps=1, direction="both")
