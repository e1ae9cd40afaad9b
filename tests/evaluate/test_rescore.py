import numpy as np
import pytest

from prunelab.data.nbest import NBestUtterance
from prunelab.evaluate.rescore import NBestMatrix, Weights, chosen_errors, tune_weights


def matrix_and_lm(utterances, lm_scores):
    matrix = NBestMatrix.from_utterances(utterances)
    return matrix, matrix.lm_matrix([s for row in lm_scores for s in row])


def test_lm_scale_is_tuned_to_the_known_interval():
    # utterance 1: the right hypothesis wins iff -5 - 2b > -10b  (b > 0.625)
    # utterance 2: the right hypothesis wins iff -5b > -10 - b   (b < 2.5)
    utterances = [NBestUtterance("u1", "a b", ["a c", "a b"], [0.0, -5.0]),
                  NBestUtterance("u2", "c d", ["c d", "c e"], [0.0, -10.0])]
    matrix, lm = matrix_and_lm(utterances, [[-10.0, -2.0], [-5.0, -1.0]])
    weights, dev_wer = tune_weights(matrix, lm)
    assert 0.625 < weights.lm_scale < 2.5 and weights.word_insertion == 0.0
    assert dev_wer == 0.0
    assert chosen_errors(matrix, lm, Weights(0.0, 0.0)).tolist() == [1, 0]
    assert chosen_errors(matrix, lm, Weights(3.0, 0.0)).tolist() == [0, 1]


def test_word_insertion_weight_is_tuned_and_padding_is_never_chosen():
    # the right, longer hypothesis wins iff c > 3 (c = word insertion weight per word)
    utterances = [NBestUtterance("u1", "a b", ["a", "a b"], [0.0, -3.0]),
                  NBestUtterance("u2", "x", ["x"], [0.0])]
    matrix, lm = matrix_and_lm(utterances, [[0.0, 0.0], [0.0]])
    assert matrix.mask.tolist() == [[True, True], [True, False]]
    weights, dev_wer = tune_weights(matrix, lm, lm_scales=np.array([0.0]))
    assert weights.word_insertion > 3.0 and dev_wer == 0.0


def interval_nbest(low: float, high: float, acoustic_gap: float):
    """Two utterances whose right hypotheses both win only for an LM scale strictly inside (low, high).

    u1: right = rank 2 (acoustic -gap, LM 0) vs rank 1 (acoustic 0, LM -gap/low): wins iff scale > low.
    u2: right = rank 1 (acoustic 0, LM -gap/high) vs rank 2 (acoustic -gap, LM 0): wins iff scale < high."""
    utterances = [NBestUtterance("u1", "a b", ["a c", "a b"], [0.0, -acoustic_gap]),
                  NBestUtterance("u2", "c d", ["c d", "c e"], [0.0, -acoustic_gap])]
    return matrix_and_lm(utterances, [[-acoustic_gap / low, 0.0], [-acoustic_gap / high, 0.0]])


@pytest.mark.parametrize("low, high, acoustic_gap", [
    (0.018, 0.022, 0.5),   # Whisper-like: summed token log-probs that already include the decoder's LM
    (11.0, 13.0, 200.0),   # pocketsphinx-like: acoustic scores in the hundreds
])
def test_the_search_finds_narrow_scale_windows_in_any_score_range(low, high, acoustic_gap):
    matrix, lm = interval_nbest(low, high, acoustic_gap)
    weights, dev_wer = tune_weights(matrix, lm)
    assert low < weights.lm_scale < high and dev_wer == 0.0
    assert tune_weights(matrix, lm) == (weights, dev_wer)  # deterministic
