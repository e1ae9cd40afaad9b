import math

import pytest
import torch
import torch.nn.functional as F

from prunelab.lm.model import LMConfig, TransformerLM
from prunelab.lm.score import _windows, perplexity, sentence_logprobs, sequence_logprobs
from prunelab.lm.vocab import Vocab
from prunelab.lm.word_adapter import WordLM

VOCAB = Vocab(["<pad>", "<unk>", "<s>", "</s>"] + list("abcdefgh"), oov_penalty=5.0)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TransformerLM(LMConfig(vocab_size=12, n_layer=2, n_head=2, d_model=16, d_ff=32, context=8)).eval()


def test_logits_shape_and_tied_embedding(model):
    assert model(torch.zeros(3, 5, dtype=torch.long)).shape == (3, 5, 12)
    assert sum(1 for _ in model.embed.parameters()) == 1  # one matrix embeds and predicts
    counts = model.param_counts()
    assert counts["params_total"] == sum(p.numel() for p in model.parameters())
    assert counts["params_embedding"] == 12 * 16 + 8 * 16
    assert counts["params_embedding"] + counts["params_blocks"] == counts["params_total"]


def test_model_is_causal(model):
    tokens = torch.tensor([[1, 4, 5, 6, 7]])
    changed = tokens.clone()
    changed[0, 3] = 9
    assert torch.allclose(model(tokens)[0, :3], model(changed)[0, :3], atol=1e-6)
    assert not torch.allclose(model(tokens)[0, 3], model(changed)[0, 3])


def test_longer_than_context_is_refused(model):
    with pytest.raises(ValueError, match="exceeds the context"):
        model(torch.zeros(1, 9, dtype=torch.long))


def manual_logprob(model, ids):
    logits = model(torch.tensor([ids[:-1]]))
    return F.log_softmax(logits, -1)[0, torch.arange(len(ids) - 1), torch.tensor(ids[1:])].sum().item()


def test_sequence_logprobs_match_a_plain_forward_pass_in_any_batch(model):
    sequences = [[2, 4, 5, 3], [2, 6, 3], [2, 7, 8, 9, 10, 11, 3]]
    expected = [manual_logprob(model, s) for s in sequences]
    lm = WordLM.of(model, VOCAB)
    assert sequence_logprobs(lm, sequences, batch_size=2) == pytest.approx(expected, abs=1e-4)
    assert sequence_logprobs(lm, sequences[::-1], batch_size=1) == pytest.approx(expected[::-1], abs=1e-4)
    # the output layer in chunks smaller than a batch's scored tokens (and than one sequence)
    assert sequence_logprobs(lm, sequences, batch_size=3, decode_chunk=2) == pytest.approx(expected, abs=1e-4)


def test_long_sequences_score_every_token_once_with_bounded_history(model):
    for length in (8, 9, 17, 30):
        scored = []
        for start, end, first in _windows(length, 8):
            assert end - start <= 8
            scored.extend(range(first, end))
        assert scored == list(range(length))
    long = [2] + [4, 5, 6, 7] * 6 + [3]
    value = sequence_logprobs(WordLM.of(model, VOCAB), [long])[0]
    assert math.isfinite(value) and value < 0


def test_sentence_logprob_includes_end_of_sentence_and_oov_penalty(model):
    lm = WordLM.of(model, VOCAB)
    plain = manual_logprob(model, [2, 4, 5, 3])
    assert sentence_logprobs(lm, ["a b"])[0] == pytest.approx(plain, abs=1e-4)
    with_oov = manual_logprob(model, [2, 4, 1, 3]) - 5.0
    assert sentence_logprobs(lm, ["a zzz"])[0] == pytest.approx(with_oov, abs=1e-4)
    assert perplexity(lm, ["a b"]) == pytest.approx(math.exp(-plain / 3), rel=1e-4)
