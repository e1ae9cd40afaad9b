"""Rescoring weights that hold up, and the references that say whether a gain is the LM's.

Weights tuned on a few hundred dev utterances can pick a large word-insertion weight or LM scale that wins a few
dev choices by chance and loses more on test, so that a weak LM ends significantly worse than the recogniser's own
1-best. Two rules, applied wherever a WER is reported (`prunelab eval`, sweep trials, reports, `best`, `export`):

- **The guard.** The weights are tuned on the whole dev set as before, and also cross-validated: dev is split into
  `FOLDS` folds (utterance i in fold i mod FOLDS), each fold's hypotheses are chosen with weights tuned on the other
  folds. The LM is used only when these held-out choices beat the 1-best on dev (fewer errors); otherwise the
  recogniser's 1-best is kept on test (`kept_1best`), and the unguarded figure is recorded beside it
  (`wer_unguarded`). The paired 95% interval of that dev difference is recorded too but does not decide: asking
  for significance kept the 1-best for the demo's `tiny` base on the full pocketsphinx benchmark (cross-validated
  dev gain -1.45 points on 600 utterances, not significant) and so threw away a test gain of 2.67 points.
- **The no-LM reference.** The recogniser's scores re-weighted with a word-insertion weight tuned on dev the same
  way and no LM (`wer_nolm`): the LM's paired gain over it (`wer_diff_nolm`) is the part of a gain that is the
  LM's, not the insertion weight's."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prunelab.evaluate.rescore import NBestMatrix, Weights, chosen_errors, tune_weights
from prunelab.evaluate.wer import Interval, paired_bootstrap_diff

FOLDS = 5
GUARD_VERSION = 2  # in the keys of cached report figures: figures from before the guard are measured again


def rows(matrix: NBestMatrix, index: np.ndarray) -> NBestMatrix:
    """The utterances `index` of a split."""
    return NBestMatrix([matrix.texts[i] for i in index], matrix.acoustic[index], matrix.n_words[index],
                       matrix.errors[index], matrix.ref_words[index], matrix.mask[index])


def cross_validated_errors(matrix: NBestMatrix, lm: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """Word errors per utterance of the hypotheses chosen with weights tuned on the other folds."""
    if len(matrix.texts) < 2:  # nothing to hold out against: no evidence for the LM, the 1-best's errors
        return matrix.errors[:, 0].copy()
    folds = max(2, min(folds, len(matrix.texts)))
    fold = np.arange(len(matrix.texts)) % folds
    errors = np.zeros(len(matrix.texts))
    for k in range(folds):
        held, rest = np.flatnonzero(fold == k), np.flatnonzero(fold != k)
        weights, _ = tune_weights(rows(matrix, rest), lm[rest])
        errors[held] = chosen_errors(rows(matrix, held), lm[held], weights)
    return errors


@dataclass(frozen=True)
class Guard:
    """Whether the LM's gain over the 1-best holds up on dev (cross-validated)."""

    use_lm: bool
    dev_gain: float        # cross-validated dev WER minus the 1-best's dev WER
    dev_gain_ci: Interval  # its paired 95% interval

    def to_dict(self) -> dict:
        return {"kept_1best": not self.use_lm, "wer_dev_cv_diff_1best": self.dev_gain,
                "wer_dev_cv_diff_1best_ci_low": self.dev_gain_ci.low,
                "wer_dev_cv_diff_1best_ci_high": self.dev_gain_ci.high}


def guard(dev: NBestMatrix, dev_lm: np.ndarray, folds: int = FOLDS) -> Guard:
    held_out = cross_validated_errors(dev, dev_lm, folds)
    gain, interval = paired_bootstrap_diff(held_out, dev.errors[:, 0], dev.ref_words)
    return Guard(gain < 0, gain, interval)


def no_lm_weights(dev: NBestMatrix) -> Weights:
    """The word-insertion weight tuned on dev with no LM (LM scale 0): the no-LM reference's weights."""
    weights, _ = tune_weights(dev, np.zeros(dev.mask.shape), lm_scales=[0.0])
    return weights
