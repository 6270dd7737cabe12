"""kdutils.text: the word data, the character model, sampling, the sequence losses, training and measures."""

import copy
import math

import pytest
import torch
from torch.nn import functional as F

from kdutils.losses import IGNORE_LABEL, distillation_loss
from kdutils.text import (
    SYMBOLS,
    VOCAB_SIZE,
    CharGRU,
    bits_per_character,
    clean_words,
    decode,
    distil_on_policy,
    drop_words,
    encode_words,
    fit_language_model,
    predict_sequence_logits,
    sample_statistics,
    sample_words,
    sequence_cross_entropy,
    split_words,
    token_distillation_loss,
    token_kl,
)


@pytest.fixture(autouse=True)
def one_thread():
    """The models here are tiny: one thread is faster, and does not crawl when other processes share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_logits(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


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


# --- data ----------------------------------------------------------------------------------------


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


# --- the sequence losses: masking ------------------------------------------------------------------


def test_sequence_cross_entropy_averages_over_real_positions_only(batch):
    logits = random_logits(3, 6, VOCAB_SIZE)
    mask = batch.mask
    expected = F.cross_entropy(logits[mask], batch.targets[mask])
    torch.testing.assert_close(sequence_cross_entropy(logits, batch.targets), expected)
    scrambled = logits.clone()
    scrambled[~mask] = 100 * random_logits(int((~mask).sum()), VOCAB_SIZE, seed=1)
    torch.testing.assert_close(sequence_cross_entropy(scrambled, batch.targets), expected)


def test_token_distillation_loss_ignores_padded_positions(batch):
    student, teacher = random_logits(3, 6, VOCAB_SIZE, seed=2), random_logits(3, 6, VOCAB_SIZE, seed=3)
    loss = token_distillation_loss(student, batch.targets, teacher, T=2.0, alpha=0.7)
    mask = batch.mask
    expected = distillation_loss(student[mask], batch.targets[mask], teacher[mask], T=2.0, alpha=0.7)
    torch.testing.assert_close(loss, expected)
    # anything at the padded positions, in either model, leaves the loss unchanged
    student_pad, teacher_pad = student.clone(), teacher.clone()
    student_pad[~mask] = random_logits(int((~mask).sum()), VOCAB_SIZE, seed=4) * 50
    teacher_pad[~mask] = 0.0
    torch.testing.assert_close(token_distillation_loss(student_pad, batch.targets, teacher_pad, T=2.0, alpha=0.7), loss)
    # whereas flattening everything into distillation_loss averages the KL over the padding too
    padded_in = distillation_loss(student_pad.flatten(0, 1), batch.targets.flatten(), teacher_pad.flatten(0, 1),
                                  T=2.0, alpha=0.7)
    assert not torch.isclose(padded_in, loss)


def test_token_distillation_loss_at_alpha_zero_is_cross_entropy(batch):
    student, teacher = random_logits(3, 6, VOCAB_SIZE, seed=5), random_logits(3, 6, VOCAB_SIZE, seed=6)
    torch.testing.assert_close(token_distillation_loss(student, batch.targets, teacher, T=4.0, alpha=0.0),
                               sequence_cross_entropy(student, batch.targets))


def test_token_distillation_loss_is_zero_when_student_equals_teacher_and_alpha_is_one(batch):
    logits = random_logits(3, 6, VOCAB_SIZE, seed=7)
    assert token_distillation_loss(logits, batch.targets, logits.clone(), T=3.0, alpha=1.0).item() == pytest.approx(
        0.0, abs=1e-6)


def test_token_distillation_loss_gradient_reaches_only_real_positions(batch):
    student = random_logits(3, 6, VOCAB_SIZE, seed=8).requires_grad_()
    token_distillation_loss(student, batch.targets, random_logits(3, 6, VOCAB_SIZE, seed=9)).backward()
    assert torch.all(student.grad[~batch.mask] == 0) and torch.all(student.grad[batch.mask].abs().sum(-1) > 0)


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


def test_token_kl_averages_over_the_masked_positions_only(batch):
    student, teacher = random_logits(3, 6, VOCAB_SIZE, seed=10), random_logits(3, 6, VOCAB_SIZE, seed=11)
    mask = batch.mask
    for direction in ("forward", "reverse"):
        expected = torch.stack([
            token_kl(student[i : i + 1, t : t + 1], teacher[i : i + 1, t : t + 1], torch.ones(1, 1, dtype=torch.bool),
                     direction)
            for i, t in mask.nonzero().tolist()
        ]).mean()
        torch.testing.assert_close(token_kl(student, teacher, mask, direction), expected)
    # the mean of the forward KL is the KL term of token_distillation_loss at T = 1, alpha = 1
    torch.testing.assert_close(token_kl(student, teacher, mask, "forward"),
                               token_distillation_loss(student, batch.targets, teacher, T=1.0, alpha=1.0))


def test_token_kl_rejects_bad_arguments(batch):
    logits = random_logits(3, 6, VOCAB_SIZE)
    with pytest.raises(ValueError, match="direction"):
        token_kl(logits, logits, batch.mask, "sideways")
    with pytest.raises(ValueError, match="no position"):
        token_kl(logits, logits, torch.zeros(3, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool tensor"):
        token_kl(logits, logits, batch.targets)


# --- bad inputs: a wrong vocabulary size, wrong shapes ------------------------------------------------


def test_a_wrong_vocabulary_size_is_an_error(batch):
    right, small, large = (random_logits(3, 6, v) for v in (VOCAB_SIZE, VOCAB_SIZE - 1, VOCAB_SIZE + 3))
    with pytest.raises(ValueError, match="logits score 26 tokens, but the vocabulary has 27"):
        sequence_cross_entropy(small, batch.targets)  # even though no target here is "z" (26)
    with pytest.raises(ValueError, match="teacher_logits score 30 tokens"):
        token_distillation_loss(right, batch.targets, large)
    with pytest.raises(ValueError, match="same words, positions and vocabulary"):
        token_kl(small, right, batch.mask)  # any vocabulary, but the same for both
    with pytest.raises(ValueError, match="vocabulary has 27"):
        sample_words(CharGRU(8, 4, vocab_size=26), 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="vocabulary has 27"):
        predict_sequence_logits(CharGRU(8, 4, vocab_size=30), batch)
    with pytest.raises(ValueError, match="vocabulary has 27"):
        bits_per_character(CharGRU(8, 4, vocab_size=26), batch)
    bad_targets = batch.targets.clone()
    bad_targets[0, 0] = VOCAB_SIZE
    with pytest.raises(ValueError, match="outside the vocabulary"):
        sequence_cross_entropy(right, bad_targets)


def test_losses_reject_wrong_shapes_and_all_padding(batch):
    with pytest.raises(ValueError, match="3-D"):
        sequence_cross_entropy(random_logits(18, VOCAB_SIZE), batch.targets)
    with pytest.raises(ValueError, match="targets must be int64 of shape"):
        sequence_cross_entropy(random_logits(3, 5, VOCAB_SIZE), batch.targets)
    with pytest.raises(ValueError, match="same shape"):
        token_kl(random_logits(3, 6, VOCAB_SIZE), random_logits(3, 5, VOCAB_SIZE), batch.mask)
    with pytest.raises(ValueError, match="no real position"):
        sequence_cross_entropy(random_logits(3, 6, VOCAB_SIZE), torch.full((3, 6), IGNORE_LABEL))


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


# --- training ---------------------------------------------------------------------------------------


WORDS = ["cat", "car", "cart", "care", "bat", "bar", "barn", "tar", "tarn", "art", "arc", "cab", "tab", "rat"]


def test_fit_language_model_learns_and_is_reproducible():
    data = encode_words(WORDS)
    torch.manual_seed(0)
    initial = CharGRU(16, 8)
    before = bits_per_character(initial, data)
    runs = []
    seen = []

    def loss(logits, targets, idx):
        seen.append((logits.shape[1], int(data.lengths[idx].max())))
        return sequence_cross_entropy(logits, targets)

    for _ in range(2):
        model = copy.deepcopy(initial)

        losses = fit_language_model(model, data, loss, epochs=30, batch_size=4, lr=1e-2, seed=0, progress=False)
        runs.append(model)
    assert len(losses) == 30 and losses[-1] < losses[0]
    assert bits_per_character(runs[0], data) < before - 1
    assert all(torch.equal(a, b) for a, b in zip(runs[0].parameters(), runs[1].parameters()))
    assert all(width == longest for width, longest in seen), "each batch is cut to its longest word"
    with pytest.raises(ValueError, match="epochs"):
        fit_language_model(model, data, loss, epochs=0)


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
