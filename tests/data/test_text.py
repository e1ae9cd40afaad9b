import lzma

import pytest

from prunelab.data.text import load_corpus, normalize, split_sentences
from prunelab.errors import PrunelabError


def test_normalize_lowercases_and_keeps_apostrophes_inside_words():
    assert normalize("Don't STOP, 'twas 42 “quoted” words!") == "don't stop twas quoted words"
    assert normalize("  \n ") == ""


def test_split_sentences_splits_at_sentence_punctuation():
    assert split_sentences("One two. Three four! Five; six?") == ["one two", "three four", "five", "six"]


def test_shipped_corpus_has_enough_words_and_disjoint_splits(corpus):
    assert corpus.n_words("train") >= 2_500_000
    assert corpus.n_words("valid") >= 50_000 and corpus.n_words("test") >= 50_000
    for sentence in corpus.valid[:2000] + corpus.test[:2000]:
        assert sentence == normalize(sentence)
    # held out by whole documents: long held-out sentences do not appear in training
    train = set(corpus.train)
    long_test = [s for s in corpus.test if len(s.split()) >= 12]
    assert sum(s in train for s in long_test) / len(long_test) < 0.02


def test_user_corpus_folder_is_normalised_and_validated(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.txt").write_text(f"Hello World. The {split} text!\n")
    corpus = load_corpus(tmp_path)
    assert corpus.train == ["hello world", "the train text"]
    with lzma.open(tmp_path / "valid.txt.xz", "wt") as handle:
        handle.write("The xz file wins\n")
    assert load_corpus(tmp_path).valid == ["the xz file wins"]


def test_corpus_folder_without_train_text_names_the_problem(tmp_path):
    (tmp_path / "valid.txt").write_text("a\n")
    with pytest.raises(PrunelabError, match="no train text"):
        load_corpus(tmp_path)
    with pytest.raises(PrunelabError, match="does not exist"):
        load_corpus(tmp_path / "missing")


def test_plain_text_to_train_on_holds_out_every_50th_sentence(tmp_path):
    from prunelab.data.text import load_training_text

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text(" ".join(f"Line number {i} says hello." for i in range(120)) + "\n")
    (tmp_path / "notes" / "b.txt").write_text("Open the pod bay doors, HAL!\n")
    corpus = load_training_text(tmp_path / "notes")
    assert len(corpus.valid) == 2 and corpus.valid[0] == "line number says hello"  # digits are not words
    assert len(corpus.train) == 119 and corpus.train[-1] == "open the pod bay doors hal"
    with pytest.raises(PrunelabError, match="b.txt holds 1 sentence"):
        load_training_text(tmp_path / "notes" / "b.txt")
    with pytest.raises(PrunelabError, match="neither train/valid/test text nor any .txt file"):
        (tmp_path / "empty").mkdir()
        load_training_text(tmp_path / "empty")
    with pytest.raises(PrunelabError, match="does not exist"):
        load_training_text(tmp_path / "nowhere.txt")
