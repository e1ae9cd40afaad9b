"""Word vocabulary: the most frequent training words plus special tokens, and the OOV rule."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)


@dataclass
class Vocab:
    """`words[i]` is token i. Out-of-vocabulary words map to `<unk>` and cost `oov_penalty` extra nats when
    a hypothesis is scored: `<unk>` stands for every unseen type at once, so without the penalty an LM
    would prefer hypotheses full of rare words. The default penalty spreads the `<unk>` mass uniformly
    over the training word types left out of the vocabulary (log of their count)."""

    words: list[str]
    oov_penalty: float
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}
        if tuple(self.words[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")

    @classmethod
    def build(cls, sentences: Iterable[str], size: int) -> Vocab:
        counts = Counter(w for s in sentences for w in s.split())
        kept = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]
        left_out = max(len(counts) - len(kept), 1)
        return cls(list(SPECIALS) + kept, math.log(left_out))

    def __len__(self) -> int:
        return len(self.words)

    @property
    def unk_id(self) -> int:
        return self.index[UNK]

    def encode(self, sentence: str) -> list[int]:
        """Word ids of a sentence, without `<s>`/`</s>`."""
        unk = self.index[UNK]
        return [self.index.get(w, unk) for w in sentence.split()]

    def count_oov(self, sentence: str) -> int:
        return sum(1 for w in sentence.split() if w not in self.index)
