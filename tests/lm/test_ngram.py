import math

import pytest

from prunelab.lm.ngram import KneserNeyTrigram
from prunelab.lm.vocab import Vocab

SENTENCES = ["the cat sat", "the cat ran", "a dog sat", "the dog sat down", "a cat ran away"]


@pytest.fixture
def trigram():
    return KneserNeyTrigram(Vocab.build(SENTENCES, size=6), SENTENCES)


def test_distributions_sum_to_one_in_seen_and_unseen_contexts(trigram):
    vocab = trigram.vocab
    predictable = [i for i, w in enumerate(vocab.words) if w not in ("<pad>", "<s>")]
    bos, the, cat, unk = vocab.index["<s>"], vocab.index["the"], vocab.index["cat"], vocab.unk_id
    for context in [(bos,), (bos, the), (the, cat), (cat, unk), (unk, unk)]:
        assert sum(trigram.prob(context, w) for w in predictable) == pytest.approx(1.0, abs=1e-9)


def test_seen_continuations_beat_unseen_and_oov_costs_the_penalty(trigram):
    vocab = trigram.vocab
    bos, the = vocab.index["<s>"], vocab.index["the"]
    assert trigram.prob((bos, the), vocab.index["cat"]) > trigram.prob((bos, the), vocab.index["sat"])
    plain, with_oov = trigram.sentence_logprobs(["the cat sat", "the zebra sat"])
    unk_only = trigram._ids_logprob([bos, the, vocab.unk_id, vocab.index["sat"], vocab.index["</s>"]])
    assert with_oov == pytest.approx(unk_only - vocab.oov_penalty)
    assert plain > with_oov


def test_perplexity_is_lower_on_training_text_than_on_shuffled_text(trigram):
    assert trigram.perplexity(SENTENCES) < trigram.perplexity(["sat cat the", "down sat dog the"])
    assert math.isfinite(trigram.perplexity(["never seen words here"]))
