"""N-best rescoring: acoustic + lm_scale * LM + word_insertion * words, weights tuned on dev.

The weight search needs no knowledge of the recogniser's score range: LM scales on a log grid over five and a
half decades (0 and 0.001 to ~316, 12% apart) and insertion weights likewise (0 and +-0.001 to +-100, 26% apart),
then a finer grid between the best point's neighbours. pocketsphinx's useful LM scales are 4-14; Whisper's scores
are summed token log-probs that already include its decoder LM, so useful scales there are ~0.02-0.2."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prunelab.data.nbest import NBestUtterance
from prunelab.evaluate.wer import word_errors

LM_SCALES = np.concatenate([[0.0], np.logspace(-3, 2.5, 111)])
_MAGNITUDES = np.logspace(-3, 2, 51)
WORD_INSERTIONS = np.concatenate([-_MAGNITUDES[::-1], [0.0], _MAGNITUDES])
REFINE_POINTS = 21  # per axis, between the best coarse point's neighbours


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
    def from_utterances(cls, utterances: list[NBestUtterance]) -> NBestMatrix:
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


def tune_weights(matrix: NBestMatrix, lm: np.ndarray, lm_scales=LM_SCALES, word_insertions=WORD_INSERTIONS,
                 refine: bool = True) -> tuple[Weights, float]:
    """The weights with the lowest WER on this (dev) split: the coarse grid, then (with `refine`) a finer grid
    between the best point's neighbours on each axis. Ties go to the smaller LM scale, then the insertion
    weight closest to zero, and a refined point replaces the coarse one only when it makes fewer errors, so the
    choice is deterministic."""
    scales, insertions = np.sort(np.asarray(lm_scales, dtype=float)), np.sort(np.asarray(word_insertions, dtype=float))
    errors, scale, insertion = _grid_search(matrix, lm, scales, insertions)
    if refine:
        fine_scales = _between_neighbours(scales, scale)
        fine_insertions = _between_neighbours(insertions, insertion)
        fine = _grid_search(matrix, lm, fine_scales, fine_insertions)
        if fine[0] < errors:
            errors, scale, insertion = fine
    return Weights(scale, insertion), errors / matrix.ref_words.sum()


def _between_neighbours(grid: np.ndarray, value: float) -> np.ndarray:
    """REFINE_POINTS values from the grid point below `value` to the one above (geometric between positive
    neighbours), `value` included."""
    i = int(np.searchsorted(grid, value))
    low, high = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    if low > 0:
        points = np.geomspace(low, high, REFINE_POINTS)
    else:
        points = np.linspace(low, high, REFINE_POINTS)
    return np.unique(np.append(points, value))


def _grid_search(matrix: NBestMatrix, lm: np.ndarray, lm_scales, word_insertions) -> tuple[float, float, float]:
    """(errors, lm_scale, word_insertion) of the best grid point; ties as `tune_weights` says."""
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
    return best
