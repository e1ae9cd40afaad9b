"""Word error rate (via jiwer) and bootstrap confidence intervals over utterances."""
from __future__ import annotations

from dataclasses import dataclass

import jiwer
import numpy as np


def word_errors(reference: str, hypothesis: str) -> int:
    """Substitutions + deletions + insertions of `hypothesis` against `reference` (jiwer's alignment)."""
    if not reference:
        return len(hypothesis.split())
    if not hypothesis:
        return len(reference.split())
    out = jiwer.process_words(reference, hypothesis)
    return out.substitutions + out.deletions + out.insertions


def wer(errors: np.ndarray, ref_words: np.ndarray) -> float:
    return float(errors.sum() / ref_words.sum())


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def bootstrap_wer_ci(errors: np.ndarray, ref_words: np.ndarray, n_resamples: int = 2000, seed: int = 0,
                     level: float = 0.95) -> Interval:
    """Percentile bootstrap interval of corpus WER, resampling whole utterances."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(errors), size=(n_resamples, len(errors)))
    samples = errors[idx].sum(axis=1) / ref_words[idx].sum(axis=1)
    tail = (1 - level) / 2 * 100
    return Interval(float(np.percentile(samples, tail)), float(np.percentile(samples, 100 - tail)))


def paired_bootstrap_diff(errors_a: np.ndarray, errors_b: np.ndarray, ref_words: np.ndarray,
                          n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, Interval]:
    """WER(a) - WER(b) and its percentile interval, both systems resampled with the same utterances."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(errors_a), size=(n_resamples, len(errors_a)))
    refs = ref_words[idx].sum(axis=1)
    samples = (errors_a[idx].sum(axis=1) - errors_b[idx].sum(axis=1)) / refs
    tail = (1 - level) / 2 * 100
    diff = float((errors_a.sum() - errors_b.sum()) / ref_words.sum())
    return diff, Interval(float(np.percentile(samples, tail)), float(np.percentile(samples, 100 - tail)))
