"""N-best rescoring: acoustic + lm_scale * LM + word_insertion * words, weights tuned on dev by grid search."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prunelab.data.nbest import NBestUtterance
from prunelab.evaluate.wer import word_errors

LM_SCALES = np.round(np.arange(0.0, 30.01, 0.5), 2)
WORD_INSERTIONS = np.round(np.arange(-30.0, 30.01, 1.0), 2)


@dataclass
class NBestMatrix:
    """Padded (utterances x hypotheses) arrays of one N-best split; padding has mask False."""

    texts: list[list[str]]
    acoustic: np.ndarray
    n_words: np.ndarray
    errors: np.ndarray
    ref_words: np.ndarray
    mask: np.ndarray

    @classmethod
    def from_utterances(cls, utterances: list[NBestUtterance]) -> "NBestMatrix":
        width = max(len(u.hypotheses) for u in utterances)
        shape = (len(utterances), width)
        acoustic, n_words, errors = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        mask = np.zeros(shape, dtype=bool)
        for i, utt in enumerate(utterances):
            for j, (text, score) in enumerate(zip(utt.hypotheses, utt.acoustic_scores)):
                acoustic[i, j], n_words[i, j] = score, len(text.split())
                errors[i, j] = word_errors(utt.reference, text)
                mask[i, j] = True
        ref_words = np.array([max(len(u.reference.split()), 1) for u in utterances], dtype=float)
        return cls([u.hypotheses for u in utterances], acoustic, n_words, errors, ref_words, mask)

    def lm_matrix(self, flat_scores: list[float]) -> np.ndarray:
        """Place scores of `flat_texts()` (row-major) into the padded matrix."""
        out = np.zeros(self.mask.shape)
        out[self.mask] = flat_scores
        return out

    def flat_texts(self) -> list[str]:
        return [t for row in self.texts for t in row]


@dataclass(frozen=True)
class Weights:
    lm_scale: float
    word_insertion: float


def chosen_errors(matrix: NBestMatrix, lm: np.ndarray, weights: Weights) -> np.ndarray:
    """Word errors per utterance of the hypothesis that the weighted score picks (ties: lower rank)."""
    total = matrix.acoustic + weights.lm_scale * lm + weights.word_insertion * matrix.n_words
    total = np.where(matrix.mask, total, -np.inf)
    pick = total.argmax(axis=1)
    return matrix.errors[np.arange(len(pick)), pick]


def tune_weights(matrix: NBestMatrix, lm: np.ndarray, lm_scales=LM_SCALES,
                 word_insertions=WORD_INSERTIONS) -> tuple[Weights, float]:
    """Grid search for the weights with the lowest WER on this (dev) split; ties go to the smaller
    LM scale, then the insertion weight closest to zero, so the choice is deterministic."""
    best: tuple[float, float, float] | None = None  # (errors, lm_scale, word_insertion)
    insertions = np.asarray(word_insertions, dtype=float)
    insertions = insertions[np.argsort(np.abs(insertions), kind="stable")]
    for scale in lm_scales:
        base = np.where(matrix.mask, matrix.acoustic + scale * lm, -np.inf)
        totals = base[None, :, :] + insertions[:, None, None] * matrix.n_words[None, :, :]
        picks = totals.argmax(axis=2)
        errors = np.take_along_axis(matrix.errors[None, :, :], picks[:, :, None], axis=2)[:, :, 0].sum(axis=1)
        k = int(errors.argmin())
        if best is None or errors[k] < best[0]:
            best = (float(errors[k]), float(scale), float(insertions[k]))
    return Weights(best[1], best[2]), best[0] / matrix.ref_words.sum()
