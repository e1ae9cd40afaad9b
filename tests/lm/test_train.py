import pytest
import torch
import torch.nn.functional as F

from prunelab.lm.model import LMConfig, TransformerLM
from prunelab.lm.tokenizer import WordTokenizer
from prunelab.lm.train import TrainConfig, lr_at, summed_output_loss

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def test_training_lowers_validation_perplexity(trained_lm):
    from prunelab.lm.checkpoint import load_checkpoint

    info = load_checkpoint(trained_lm[2])[2]  # trained in the session fixture; its history is in the info
    assert info["steps"] == 60 and info["tokens"] == 60 * 16 * 16
    assert info["history"][-1]["ppl_valid_subset"] < 2000 * 0.5  # far below a uniform guess over 2,004 tokens


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(lr=1.0, warmup_steps=10)
    assert lr_at(0, 100, config) == 0.1 and lr_at(9, 100, config) == 1.0
    assert lr_at(10, 100, config) > lr_at(50, 100, config) > lr_at(100, 100, config) >= 0.1


def test_token_stream_wraps_sentences(trained_lm):
    vocab = trained_lm[1]
    stream = WordTokenizer(vocab).stream(["the", "of the"]).tolist()
    bos, eos = vocab.index["<s>"], vocab.index["</s>"]
    assert stream == [bos, vocab.index["the"], eos, bos, vocab.index["of"], vocab.index["the"], eos]


def test_chunked_training_loss_gives_the_whole_batch_loss_and_gradients():
    torch.manual_seed(0)
    model = TransformerLM(LMConfig(vocab_size=50, n_layer=1, n_head=2, d_model=16, d_ff=32, context=8))
    inputs, targets = torch.randint(0, 50, (3, 8)), torch.randint(0, 50, (3, 8))
    whole = F.cross_entropy(model(inputs).reshape(-1, 50), targets.reshape(-1), reduction="sum")
    whole.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    chunked = summed_output_loss(model.embed.decode, model.hidden(inputs), targets, chunk=5)  # 24 targets: chunks of 5, the last of 4
    chunked.backward()
    assert chunked.item() == pytest.approx(whole.item(), rel=1e-5)
    for name, parameter in model.named_parameters():
        assert torch.allclose(parameter.grad, expected[name], atol=1e-5), name
