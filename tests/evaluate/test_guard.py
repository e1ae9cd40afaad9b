"""The guard keeps the recogniser's 1-best unless an LM's cross-validated dev gain holds up; the no-LM reference
tunes the insertion weight alone."""
import numpy as np

from prunelab.data.nbest import NBestUtterance
from prunelab.evaluate.guard import cross_validated_errors, guard, no_lm_weights
from prunelab.evaluate.rescore import NBestMatrix, chosen_errors, tune_weights


def _nbest(n: int, seed: int, informative: bool):
    """n utterances of 4 hypotheses; the right one is at a random rank 0-3 (rank 0, the recogniser's 1-best, is
    right in about half); the LM gives the right one a clear edge when informative, random scores otherwise."""
    rng = np.random.default_rng(seed)
    utterances, lm = [], []
    for i in range(n):
        right = 0 if rng.random() < 0.5 else int(rng.integers(1, 4))
        hypotheses = [f"w{i} x{k}" if k != right else f"w{i} ok" for k in range(4)]
        utterances.append(NBestUtterance(f"u{i}", f"w{i} ok", hypotheses, [-float(k) for k in range(4)]))
        scores = rng.normal(0, 1, 4)
        if informative:
            scores[right] += 8.0
        lm.append(scores.tolist())
    matrix = NBestMatrix.from_utterances(utterances)
    return matrix, matrix.lm_matrix([s for row in lm for s in row])


def test_an_informative_lm_passes_the_guard():
    matrix, lm = _nbest(200, 0, informative=True)
    decision = guard(matrix, lm)
    assert decision.use_lm and decision.dev_gain < -0.1 and decision.dev_gain_ci.high < 0
    assert not decision.to_dict()["kept_1best"]


def test_a_random_lm_is_refused_and_the_1best_kept():
    matrix, lm = _nbest(200, 1, informative=False)
    decision = guard(matrix, lm)
    assert not decision.use_lm and decision.dev_gain >= 0 and decision.to_dict()["kept_1best"]


def test_cross_validation_scores_each_utterance_with_weights_tuned_without_it():
    # a noise LM: tuned on all of dev it fits the noise, held out it does worse
    matrix, lm = _nbest(60, 2, informative=False)
    fitted, _ = tune_weights(matrix, lm)
    assert cross_validated_errors(matrix, lm).sum() >= chosen_errors(matrix, lm, fitted).sum()


def test_the_no_lm_reference_tunes_only_the_insertion_weight():
    # the right hypothesis is the longer one: a positive insertion weight finds it without any LM
    utterances = [NBestUtterance(f"u{i}", "a b c", ["a b", "a b c"], [0.0, -1.0]) for i in range(5)]
    weights = no_lm_weights(NBestMatrix.from_utterances(utterances))
    assert weights.lm_scale == 0.0 and weights.word_insertion > 1.0


def test_a_single_dev_utterance_gives_no_evidence_for_the_lm():
    matrix, lm = _nbest(1, 3, informative=True)
    assert cross_validated_errors(matrix, lm).tolist() == matrix.errors[:, 0].tolist()
    assert not guard(matrix, lm).use_lm
