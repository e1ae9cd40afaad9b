import math

import pytest

from prunelab.lm.vocab import SPECIALS, Vocab


def test_build_keeps_most_frequent_words_and_counts_left_out_types():
    vocab = Vocab.build(["a a a b b c", "a b d e"], size=2)
    assert vocab.words == list(SPECIALS) + ["a", "b"]
    assert vocab.oov_penalty == pytest.approx(math.log(3))  # c, d, e left out
    assert vocab.encode("a c b") == [4, vocab.unk_id, 5]
    assert vocab.count_oov("a c d") == 2


def test_vocab_must_start_with_specials():
    with pytest.raises(ValueError):
        Vocab(["a", "b"], 1.0)
