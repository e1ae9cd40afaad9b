from prunelab.lm.train import TrainConfig, lr_at, token_stream


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
    stream = token_stream(["the", "of the"], vocab).tolist()
    bos, eos = vocab.index["<s>"], vocab.index["</s>"]
    assert stream == [bos, vocab.index["the"], eos, bos, vocab.index["of"], vocab.index["the"], eos]
