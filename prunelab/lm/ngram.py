"""Interpolated Kneser-Ney trigram on a closed vocabulary: the classic baseline a neural LM must beat.

It uses the neural LM's vocabulary and `<unk>` mapping, and the same OOV penalty when scoring hypotheses,
so that the comparison is on equal terms (an open-vocabulary n-gram would look worse than it is).
n-grams that start with `<s>` use raw counts at every order, as in SRILM; other lower orders use
continuation counts. Discounts per order are D = n1 / (n1 + 2 n2) from the counts-of-counts.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict

from prunelab.lm.vocab import BOS, EOS, Vocab


def _discount(counts) -> float:
    histogram = Counter(v for v in counts.values() if v <= 2)
    n1, n2 = histogram.get(1, 0), histogram.get(2, 0)
    return n1 / (n1 + 2 * n2) if n1 + n2 else 0.75


class KneserNeyTrigram:
    def __init__(self, vocab: Vocab, sentences: list[str]):
        self.vocab = vocab
        self.bos, self.eos = vocab.index[BOS], vocab.index[EOS]
        trigrams: Counter = Counter()
        start_bigrams: Counter = Counter()  # (<s>, w): raw counts
        for sentence in sentences:
            ids = [self.bos] + vocab.encode(sentence) + [self.eos]
            start_bigrams[(ids[0], ids[1])] += 1
            trigrams.update(zip(ids, ids[1:], ids[2:]))
        # continuation counts for bigrams (v, w), v != <s>: distinct u before them
        bigram_cont: Counter = Counter((v, w) for (_, v, w) in trigrams)
        bigrams = dict(bigram_cont)
        bigrams.update(start_bigrams)
        self.unigram_cont: Counter = Counter(w for (_, w) in bigrams)
        self.d3, self.d2, self.d1 = _discount(trigrams), _discount(bigrams), _discount(self.unigram_cont)
        self.trigrams = trigrams
        self.bigrams = bigrams
        self.tri_context: dict = defaultdict(lambda: [0, 0])  # (u, v) -> [count, distinct followers]
        for (u, v, _), c in trigrams.items():
            entry = self.tri_context[(u, v)]
            entry[0] += c
            entry[1] += 1
        self.bi_context: dict = defaultdict(lambda: [0, 0])
        for (v, _), c in bigrams.items():
            entry = self.bi_context[v]
            entry[0] += c
            entry[1] += 1
        self.tri_context, self.bi_context = dict(self.tri_context), dict(self.bi_context)
        self.unigram_total = sum(self.unigram_cont.values())
        self.n_predictable = len(vocab) - 2  # every word, <unk> and </s>; never <pad> or <s>

    def _p_unigram(self, w: int) -> float:
        seen = max(self.unigram_cont.get(w, 0) - self.d1, 0.0) / self.unigram_total
        return seen + self.d1 * len(self.unigram_cont) / self.unigram_total / self.n_predictable

    def _p_bigram(self, v: int, w: int) -> float:
        context = self.bi_context.get(v)
        if context is None:
            return self._p_unigram(w)
        total, followers = context
        seen = max(self.bigrams.get((v, w), 0) - self.d2, 0.0) / total
        return seen + self.d2 * followers / total * self._p_unigram(w)

    def prob(self, context: tuple[int, ...], w: int) -> float:
        if len(context) < 2:
            return self._p_bigram(context[-1], w)
        u, v = context[-2], context[-1]
        entry = self.tri_context.get((u, v))
        if entry is None:
            return self._p_bigram(v, w)
        total, followers = entry
        seen = max(self.trigrams.get((u, v, w), 0) - self.d3, 0.0) / total
        return seen + self.d3 * followers / total * self._p_bigram(v, w)

    def _ids_logprob(self, ids: list[int]) -> float:
        return sum(math.log(self.prob(tuple(ids[max(0, i - 2):i]), ids[i])) for i in range(1, len(ids)))

    def sentence_logprobs(self, sentences: list[str]) -> list[float]:
        """log P(sentence + `</s>`) in nats, minus the OOV penalty per out-of-vocabulary word."""
        return [self._ids_logprob([self.bos] + self.vocab.encode(s) + [self.eos])
                - self.vocab.oov_penalty * self.vocab.count_oov(s) for s in sentences]

    def perplexity(self, sentences: list[str]) -> float:
        total = sum(self._ids_logprob([self.bos] + self.vocab.encode(s) + [self.eos]) for s in sentences)
        return math.exp(-total / sum(len(s.split()) + 1 for s in sentences))
