import numpy as np
import pytest

from prunelab.evaluate.wer import bootstrap_wer_ci, paired_bootstrap_diff, wer, word_errors


def test_word_errors_count_substitutions_deletions_insertions():
    assert word_errors("a b c", "a x c d") == 2
    assert word_errors("a b c", "") == 3
    assert word_errors("a b c", "a b c") == 0
    assert word_errors("", "a b") == 2


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_more_data():
    rng = np.random.default_rng(1)
    refs = rng.integers(5, 15, 4000).astype(float)
    errors = rng.binomial(refs.astype(int), 0.3).astype(float)
    small = bootstrap_wer_ci(errors[:200], refs[:200])
    large = bootstrap_wer_ci(errors, refs)
    assert small.low < wer(errors[:200], refs[:200]) < small.high
    assert large.low < 0.3 < large.high
    assert large.high - large.low < (small.high - small.low) / 2


def test_paired_difference_of_identical_systems_is_exactly_zero_and_detects_a_real_gap():
    refs = np.full(500, 10.0)
    errors = np.random.default_rng(2).integers(0, 5, 500).astype(float)
    diff, interval = paired_bootstrap_diff(errors, errors, refs)
    assert diff == 0 and interval.low == 0 and interval.high == 0
    worse = errors + (np.arange(500) % 4 == 0)  # one more error in a quarter of the utterances
    diff, interval = paired_bootstrap_diff(worse, errors, refs)
    assert diff == pytest.approx(0.025)
    assert 0 < interval.low < diff < interval.high
