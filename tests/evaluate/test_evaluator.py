import math

import pytest

from prunelab.data.nbest import load_nbest
from prunelab.evaluate.evaluator import Benchmark, evaluate_model
from prunelab.evaluate.rescore import NBestMatrix

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)

DOCUMENTED_KEYS = {"params_total", "params_embedding", "params_blocks", "ppl_valid", "ppl_test", "wer", "wer_ci_low",
                   "wer_ci_high", "wer_1best", "wer_diff_1best", "wer_oracle", "n_test_utts", "n_test_words", "tokens_per_s", "trigram"}


@pytest.fixture(scope="module")
def bench(small_corpus):
    nbest = load_nbest()
    return Benchmark(small_corpus, nbest, NBestMatrix.from_utterances(nbest.dev[:150]),
                     NBestMatrix.from_utterances(nbest.test[:300]))


def test_evaluation_reports_every_documented_figure_consistently(trained_lm, bench):
    model, vocab, _ = trained_lm
    m = evaluate_model(model, bench, speed_repeats=2)
    assert DOCUMENTED_KEYS <= m.keys()
    assert m["n_test_utts"] == 300 and m["n_test_words"] == int(bench.test.ref_words.sum())
    assert m["wer_oracle"] <= m["wer"] and m["wer_oracle"] <= m["wer_1best"]
    assert m["wer_ci_low"] <= m["wer"] <= m["wer_ci_high"]
    # model minus the recogniser's 1-best: the WER difference itself, with an interval around it
    assert m["wer_diff_1best"] == pytest.approx(m["wer"] - m["wer_1best"])
    assert m["wer_diff_1best_ci_low"] <= m["wer_diff_1best"] <= m["wer_diff_1best_ci_high"]
    assert m["params_total"] == sum(p.numel() for p in model.parameters())
    assert 1 < m["ppl_valid"] < len(vocab) and math.isfinite(m["ppl_test"])
    assert {"ppl_valid", "wer", "wer_diff"} <= m["trigram"].keys() and m["tokens_per_s"] > 0


def test_comparison_with_itself_is_zero_and_speed_ratio_near_one(trained_lm, bench):
    model, vocab, _ = trained_lm
    m = evaluate_model(model, bench, vs=model, speed_vs=model, trigram=False, speed_repeats=3)
    assert m["wer_diff"] == 0 and m["wer_diff_ci_low"] == 0 and m["wer_diff_ci_high"] == 0
    assert m["vs"]["wer"] == m["wer"]
    assert 0.5 < m["speed_ratio"] < 2.0


def test_perplexity_on_the_first_valid_and_test_sentences_when_asked(trained_lm, small_corpus):
    from prunelab.lm.score import perplexity

    bench = Benchmark.load(max_test_utts=20, corpus=small_corpus, max_valid_sentences=50, max_test_sentences=30)
    assert bench.corpus.valid == small_corpus.valid[:50] and bench.corpus.train is small_corpus.train
    assert bench.corpus.test == small_corpus.test[:30]
    lm = trained_lm[0]
    assert perplexity(lm, bench.corpus.valid) != perplexity(lm, small_corpus.valid)


def test_weights_tuned_on_the_first_dev_utterances_when_asked(small_corpus):
    nbest = load_nbest()
    bench = Benchmark.load(max_test_utts=20, corpus=small_corpus, max_dev_utts=40)
    assert bench.dev.texts == NBestMatrix.from_utterances(nbest.dev[:40]).texts
    assert len(bench.test.texts) == 20 and len(Benchmark.load(corpus=small_corpus).dev.texts) == len(nbest.dev)


def test_raw_hypothesis_text_is_what_the_lms_score_while_errors_stay_normalised(small_corpus):
    normalised = Benchmark.load(nbest_path="amazon-queen", corpus=small_corpus, max_test_utts=40, max_dev_utts=20)
    raw = Benchmark.load(nbest_path="amazon-queen", corpus=small_corpus, max_test_utts=40, max_dev_utts=20,
                         hypothesis_text="raw")
    assert (raw.test.errors == normalised.test.errors).all() and (raw.test.n_words == normalised.test.n_words).all()
    raw_texts, plain = raw.test.flat_texts(), normalised.test.flat_texts()
    assert len(raw_texts) == len(plain) and raw_texts != plain
    assert any(any(c.isupper() for c in t) for t in raw_texts) and not any(any(c.isupper() for c in t) for t in plain)


def test_raw_hypothesis_text_where_the_file_has_none_is_a_clear_error(small_corpus):
    from prunelab.errors import PrunelabError

    with pytest.raises(PrunelabError, match="no raw_hypothesis text"):
        Benchmark.load(corpus=small_corpus, max_test_utts=10, max_dev_utts=10, hypothesis_text="raw")
