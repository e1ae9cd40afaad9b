"""One evaluation of an LM: size, perplexity, N-best rescoring WER with intervals, the trigram baseline,
paired comparison against another model, and scoring speed. Returns the documented metric keys."""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from prunelab.data.nbest import NBestSet, load_nbest
from prunelab.data.text import Corpus, load_corpus
from prunelab.errors import PrunelabError
from prunelab.evaluate.guard import Guard, guard, no_lm_weights
from prunelab.evaluate.rescore import NBestMatrix, Weights, chosen_errors, tune_weights
from prunelab.evaluate.speed import measure_speed
from prunelab.evaluate.wer import bootstrap_wer_ci, paired_bootstrap_diff, wer
from prunelab.lm.adapter import ModelAdapter
from prunelab.lm.ngram import KneserNeyTrigram
from prunelab.lm.precision import resolve_precision
from prunelab.lm.prefix_score import grouped_sentence_logprobs
from prunelab.lm.score import perplexity, sentence_logprobs
from prunelab.lm.vocab import Vocab

HYPOTHESIS_TEXTS = ("normalised", "raw")  # what an LM scores: the normalised hypotheses or the recogniser's own text

TRIGRAM_VOCAB = 20000  # the trigram's own word vocabulary when the LM's tokenizer has none (subword LMs)

SPEED_SENTENCES = 1024  # test hypotheses the speed is timed on (a spec's data.speed_sentences sets it for a sweep)


@dataclass
class Benchmark:
    """The data an evaluation runs on: corpus and N-best set, with the N-best WER matrices built once."""

    corpus: Corpus
    nbest: NBestSet
    dev: NBestMatrix
    test: NBestMatrix

    @classmethod
    def load(cls, corpus_dir=None, nbest_path=None, max_test_utts: int | None = None,
             corpus: Corpus | None = None, max_valid_sentences: int | None = None,
             max_dev_utts: int | None = None, max_test_sentences: int | None = None,
             hypothesis_text: str = "normalised") -> Benchmark:
        """The benchmark of a corpus folder and N-best file; `corpus`, when given, is that folder already
        loaded (a caller that has it saves loading the text a second time). Perplexity is measured on the
        first `max_valid_sentences` valid and `max_test_sentences` test sentences, the rescoring weights tuned
        on the first `max_dev_utts` dev utterances and WER measured on the first `max_test_utts` test
        utterances, each when given (a large LM on a CPU scores the full sets slowly). With `hypothesis_text`
        'raw' the LMs score the recogniser's own text (the `raw_hypothesis` column: cased, punctuated) while the
        errors and word counts stay those of the normalised hypotheses."""
        if hypothesis_text not in HYPOTHESIS_TEXTS:
            raise PrunelabError(f"unknown hypothesis text {hypothesis_text!r}; expected one of {', '.join(HYPOTHESIS_TEXTS)}")
        corpus, nbest = corpus or load_corpus(corpus_dir), load_nbest(nbest_path)
        if max_valid_sentences:
            corpus = replace(corpus, valid=corpus.valid[:max_valid_sentences])
        if max_test_sentences:
            corpus = replace(corpus, test=corpus.test[:max_test_sentences])
        test = nbest.test[:max_test_utts] if max_test_utts else nbest.test
        dev = nbest.dev[:max_dev_utts] if max_dev_utts else nbest.dev
        matrices = [NBestMatrix.from_utterances(dev), NBestMatrix.from_utterances(test)]
        if hypothesis_text == "raw":
            matrices = [replace(matrix, texts=_raw_texts(nbest.source, split)) for matrix, split in zip(matrices, (dev, test))]
        return cls(corpus, nbest, *matrices)

    def speed_sentences(self, count: int = SPEED_SENTENCES) -> list[str]:
        """`count` test hypotheses drawn with a fixed seed: every model is timed on the same text."""
        texts = [t for t in self.test.flat_texts() if t]
        return random.Random(0).sample(texts, min(count, len(texts)))


def _raw_texts(source: str, utterances) -> list[list[str]]:
    missing = sum(raw is None for u in utterances for raw in (u.raw_hypotheses or [None] * len(u.hypotheses)))
    if missing:
        raise PrunelabError(f"N-best file {source}: {missing:,} hypotheses have no raw_hypothesis text; "
                            "--hypothesis-text raw needs the recogniser's own text for every one")
    return [list(u.raw_hypotheses) for u in utterances]


Scorer = Callable[[list[list[str]]], list[float]]  # hypotheses grouped by utterance -> their scores, row-major

# how a neural LM scores an N-best list: each utterance's hypotheses as a prefix tree, every shared prefix once
# (prunelab.lm.prefix_score, the default), or each hypothesis on its own (the path before it; the same
# log-probs to float rounding)
SCORINGS = ("prefix-tree", "independent")


def _flat(groups: list[list[str]]) -> list[str]:
    return [text for group in groups for text in group]


def neural_scorer(lm: ModelAdapter, scoring: str = "prefix-tree", precision: str = "fp32") -> Scorer:
    """The scores of a neural LM, by `scoring` (`SCORINGS`) in `precision` ('fp32', 'bf16', 'auto')."""
    if scoring not in SCORINGS:
        raise ValueError(f"unknown scoring {scoring!r}; expected one of {', '.join(SCORINGS)}")
    resolve_precision(precision, lm.device)  # an unknown one fails here, before any scoring
    if scoring == "independent":
        return lambda groups: sentence_logprobs(lm, _flat(groups), precision=precision)
    return lambda groups: _flat(grouped_sentence_logprobs(lm, groups, precision))


def sentence_scorer(score: Callable[[list[str]], list[float]]) -> Scorer:
    """A scorer of sentences one by one (the n-gram baseline) as a Scorer of grouped hypotheses."""
    return lambda groups: score(_flat(groups))


@dataclass
class RescoringResult:
    weights: Weights
    dev_wer: float
    test_lm: np.ndarray
    guard: Guard  # whether the LM's gain over the 1-best holds up on dev (prunelab.evaluate.guard)

    def test_errors(self, matrix: NBestMatrix, weights: Weights | None = None) -> np.ndarray:
        """Errors per test utterance at the dev-tuned (or given) weights, the guard not applied."""
        return chosen_errors(matrix, self.test_lm, weights or self.weights)

    def guarded_errors(self, matrix: NBestMatrix) -> np.ndarray:
        """Errors per test utterance as deployed: the rescored choice where the guard keeps the LM, else the
        recogniser's 1-best."""
        return self.test_errors(matrix) if self.guard.use_lm else matrix.errors[:, 0]


def rescore(bench: Benchmark, scorer: Scorer) -> RescoringResult:
    dev_lm = bench.dev.lm_matrix(scorer(bench.dev.texts))
    test_lm = bench.test.lm_matrix(scorer(bench.test.texts))
    weights, dev_wer = tune_weights(bench.dev, dev_lm)
    return RescoringResult(weights, dev_wer, test_lm, guard(bench.dev, dev_lm))


def wer_figures(bench: Benchmark, errors: np.ndarray) -> dict:
    interval = bootstrap_wer_ci(errors, bench.test.ref_words)
    return {"wer": wer(errors, bench.test.ref_words), "wer_ci_low": interval.low, "wer_ci_high": interval.high}


def trigram_vocab(lm: ModelAdapter, bench: Benchmark) -> Vocab:
    """The word LM's own vocabulary (equal terms), else one built from the training text."""
    vocab = getattr(lm.tokenizer, "vocab", None)
    return vocab if vocab is not None else Vocab.build(bench.corpus.train, TRIGRAM_VOCAB)


def evaluate_model(model: ModelAdapter, bench: Benchmark, *, vs: ModelAdapter | None = None,
                   speed_vs: ModelAdapter | None = None, trigram: bool = True,
                   speed: bool = True, speed_repeats: int = 5, speed_sentences: int = SPEED_SENTENCES,
                   threads: int = 1, test_perplexity: bool = True, valid_perplexity: bool = True,
                   scoring: str = "prefix-tree", scoring_precision: str = "auto") -> dict:
    """The documented metrics; a sweep's trials leave out `ppl_test` (`test_perplexity=False`): they record
    `ppl_valid` only, and a 135M-parameter LM spends minutes per deliverable on the test text. A re-evaluation on
    another N-best benchmark leaves out `ppl_valid` too (`valid_perplexity=False`): the sweep measured it already.
    `scoring` is how the N-best lists are scored (`SCORINGS`); `scoring_precision` the precision of every forward
    pass here (perplexity, N-best scoring, speed): 'auto' takes bf16 where the device has bf16 instructions
    (`prunelab.lm.precision`: bf16 blocks, an fp32 output layer)."""
    test = bench.test
    result: dict = dict(model.param_counts())
    resolved = resolve_precision(scoring_precision, model.device)
    result["scoring_precision"] = "bf16" if model.dtype == torch.bfloat16 else resolved
    if valid_perplexity:
        result["ppl_valid"] = perplexity(model, bench.corpus.valid, precision=scoring_precision)
    if test_perplexity:
        result["ppl_test"] = perplexity(model, bench.corpus.test, precision=scoring_precision)
    own = rescore(bench, neural_scorer(model, scoring, scoring_precision))
    own_errors = own.guarded_errors(test)
    result.update(wer_figures(bench, own_errors))
    result["utt_errors"] = [int(e) for e in own_errors]  # word errors per test utterance: paired comparisons later
    result.update(own.guard.to_dict())
    result["wer_unguarded"] = wer(own.test_errors(test), test.ref_words)
    result.update({
        "lm_scale": own.weights.lm_scale, "word_insertion": own.weights.word_insertion, "wer_dev": own.dev_wer,
        "wer_1best": wer(test.errors[:, 0], test.ref_words),
        "wer_oracle": wer(np.where(test.mask, test.errors, np.inf).min(axis=1), test.ref_words),
        "n_dev_utts": len(bench.dev.texts), "n_test_utts": len(test.texts), "n_test_words": int(test.ref_words.sum()),
        "oov_penalty": model.tokenizer.oov_penalty, "vocab_size": len(model.tokenizer), "system": bench.nbest.system,
    })
    # does rescoring beat the recogniser's own first hypothesis? (paired over test utterances)
    diff, interval = paired_bootstrap_diff(own_errors, test.errors[:, 0], test.ref_words)
    result.update({"wer_diff_1best": diff, "wer_diff_1best_ci_low": interval.low, "wer_diff_1best_ci_high": interval.high})
    # the no-LM reference: the recogniser's scores with an insertion weight tuned the same way, no LM
    no_lm = chosen_errors(test, np.zeros(test.mask.shape), no_lm_weights(bench.dev))
    diff, interval = paired_bootstrap_diff(own_errors, no_lm, test.ref_words)
    result.update({"wer_nolm": wer(no_lm, test.ref_words), "wer_diff_nolm": diff, "wer_diff_nolm_ci_low": interval.low,
                   "wer_diff_nolm_ci_high": interval.high})
    if trigram:
        kn = KneserNeyTrigram(trigram_vocab(model, bench), bench.corpus.train)
        kn_rescored = rescore(bench, sentence_scorer(kn.sentence_logprobs))
        kn_errors = kn_rescored.guarded_errors(test)
        result["trigram"] = {"ppl_valid": kn.perplexity(bench.corpus.valid), "ppl_test": kn.perplexity(bench.corpus.test),
                             **wer_figures(bench, kn_errors), **kn_rescored.guard.to_dict(),
                             "wer_unguarded": wer(kn_rescored.test_errors(test), test.ref_words)}
        diff, interval = paired_bootstrap_diff(own_errors, kn_errors, test.ref_words)
        result["trigram"].update({"wer_diff": diff, "wer_diff_ci_low": interval.low, "wer_diff_ci_high": interval.high})
    if vs is not None:
        other = rescore(bench, neural_scorer(vs, scoring, scoring_precision))
        # the two LMs at the reference model's dev-tuned weights (a comparison of LMs: no guard), then each as
        # deployed (its own weights, the guard applied)
        frozen, other_unguarded = own.test_errors(test, other.weights), other.test_errors(test)
        diff, interval = paired_bootstrap_diff(frozen, other_unguarded, test.ref_words)
        other_errors = other.guarded_errors(test)
        retuned_diff, retuned = paired_bootstrap_diff(own_errors, other_errors, test.ref_words)
        result.update({
            "wer_diff": diff, "wer_diff_ci_low": interval.low, "wer_diff_ci_high": interval.high,
            "vs": {"ppl_valid": perplexity(vs, bench.corpus.valid, precision=scoring_precision), **wer_figures(bench, other_errors),
                   "lm_scale": other.weights.lm_scale, "word_insertion": other.weights.word_insertion,
                   "kept_1best": not other.guard.use_lm, "wer_unguarded": wer(other_unguarded, test.ref_words),
                   "wer_frozen": wer(frozen, test.ref_words), "wer_diff_retuned": retuned_diff,
                   "wer_diff_retuned_ci_low": retuned.low, "wer_diff_retuned_ci_high": retuned.high},
        })
    if speed:
        result.update(measure_speed(model, bench.speed_sentences(speed_sentences), repeats=speed_repeats, threads=threads,
                                    reference=speed_vs, precision=scoring_precision))
    return result
