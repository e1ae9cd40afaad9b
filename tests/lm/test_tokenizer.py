"""Token streams for training windows: the same stream whatever the chunking."""
import torch

from prunelab.lm.tokenizer import SubwordTokenizer


def test_subword_stream_frames_each_sentence_and_ignores_the_chunk_size(subword_tokenizer, small_corpus):
    tokenizer = SubwordTokenizer(subword_tokenizer)
    sentences = small_corpus.train[:25]
    expected = torch.tensor([token for sentence in sentences for token in
                             [tokenizer.bos_id, *subword_tokenizer(sentence, add_special_tokens=False)["input_ids"],
                              tokenizer.eos_id]])
    assert torch.equal(tokenizer.stream(sentences), expected)
    assert torch.equal(tokenizer.stream(sentences, chunk=4), expected)  # a last chunk shorter than the others
    assert tokenizer.stream([]).numel() == 0
