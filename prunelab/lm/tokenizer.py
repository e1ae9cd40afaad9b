"""Tokenizers as the scorer sees them: a sentence becomes `BOS ids EOS`, plus a penalty in nats.

- `WordTokenizer`: the built-in word vocabulary (closed; an out-of-vocabulary word becomes `<unk>` and
  costs `oov_penalty` extra nats, see `Vocab`).
- `SubwordTokenizer`: a Hugging Face tokenizer (open vocabulary, no penalty). The model's BOS starts each
  sentence (its EOS where it has no BOS, as GPT-2) and its EOS ends it, unless the model folder's
  `sentence_boundaries.json` names other tokens: an Instruct model's BOS/EOS are often chat-turn markers
  (SmolLM2-Instruct: `<|im_start|>`/`<|im_end|>`), which cost a plain sentence many nats; its document
  token (`<|endoftext|>`) is what plain text was trained between.

Perplexity is reported per word (words + `</s>`) for both, so word and subword LMs compare directly."""
from __future__ import annotations

import torch

from prunelab.lm.vocab import BOS, EOS, PAD, Vocab


class WordTokenizer:
    kind = "word"

    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        self.bos_id, self.eos_id, self.pad_id = vocab.index[BOS], vocab.index[EOS], vocab.index[PAD]

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def oov_penalty(self) -> float:
        return self.vocab.oov_penalty

    def ids(self, sentence: str) -> list[int]:
        return [self.bos_id] + self.vocab.encode(sentence) + [self.eos_id]

    def penalty(self, sentence: str) -> float:
        return self.vocab.oov_penalty * self.vocab.count_oov(sentence)

    def stream(self, sentences: list[str]) -> torch.Tensor:
        """All sentences as one token stream (`<s> words </s>` each), for training windows."""
        ids: list[int] = []
        for sentence in sentences:
            ids.extend(self.ids(sentence))
        return torch.tensor(ids, dtype=torch.long)


SENTENCE_BOUNDARIES = "sentence_boundaries.json"  # {"bos": token, "eos": token} in a model folder


class SubwordTokenizer:
    kind = "subword"
    oov_penalty = 0.0

    def __init__(self, hf_tokenizer, boundaries: dict | None = None):
        """`boundaries`: {"bos": token, "eos": token} to frame sentences with instead of the tokenizer's own."""
        self.hf = hf_tokenizer
        eos = hf_tokenizer.eos_token_id
        bos = hf_tokenizer.bos_token_id
        if boundaries:
            bos, eos = (self._token_id(boundaries[key]) for key in ("bos", "eos"))
        if eos is None and bos is None:
            raise ValueError("the tokenizer has neither a BOS nor an EOS token: sentence boundaries cannot be scored")
        self.bos_id = bos if bos is not None else eos
        self.eos_id = eos if eos is not None else bos
        self.pad_id = hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else self.eos_id

    def _token_id(self, token: str) -> int:
        token_id = self.hf.convert_tokens_to_ids(token)  # an unknown token gives the unk id (or None)
        if token_id is None or self.hf.convert_ids_to_tokens(token_id) != token:
            raise ValueError(f"{token!r} is not a token of this tokenizer's vocabulary")
        return token_id

    @property
    def boundaries(self) -> dict:
        """The tokens that frame each scored sentence (what `sentence_boundaries.json` holds)."""
        return {"bos": self.hf.convert_ids_to_tokens(self.bos_id), "eos": self.hf.convert_ids_to_tokens(self.eos_id)}

    def __len__(self) -> int:
        return len(self.hf)

    def ids(self, sentence: str) -> list[int]:
        return [self.bos_id] + self.hf.encode(sentence, add_special_tokens=False) + [self.eos_id]

    def penalty(self, sentence: str) -> float:
        return 0.0

    def stream(self, sentences: list[str], chunk: int = 2000) -> torch.Tensor:
        """All sentences as one token stream (BOS, tokens, EOS each), for training windows. Encoded `chunk`
        sentences at a time: the tokenizer's encodings and Python's ints of the whole corpus at once held
        about 550 MB beside SmolLM2 (4 bytes per model parameter of a pruning run's peak)."""
        sentences = list(sentences)
        parts = []
        for start in range(0, len(sentences), chunk):
            ids: list[int] = []
            for tokens in self.hf(sentences[start:start + chunk], add_special_tokens=False)["input_ids"]:
                ids.append(self.bos_id)
                ids.extend(tokens)
                ids.append(self.eos_id)
            parts.append(torch.tensor(ids, dtype=torch.long))
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
