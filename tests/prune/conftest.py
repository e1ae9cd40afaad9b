"""Model families every method is tested on: the built-in word LM and tiny random Hugging Face models
(`tiny_hf_model` and `subword_tokenizer` in tests/conftest.py)."""
import pytest
import torch

from prunelab.lm.model import LMConfig, TransformerLM
from prunelab.lm.word_adapter import WordLM

FAMILIES = ["word", "llama-gqa-tied", "llama-bias-untied", "gpt2-32", "qwen3", "phi3"]


@pytest.fixture(scope="module", params=FAMILIES)
def family_lm(request, trained_lm, subword_tokenizer, tiny_hf_model):
    torch.manual_seed(0)
    if request.param == "word":
        vocab = trained_lm[1]
        small_vocab = type(vocab)(vocab.words[:300], vocab.oov_penalty)
        model = TransformerLM(LMConfig(vocab_size=300, n_layer=2, n_head=4, d_model=32, d_ff=64, context=8))
        return WordLM.of(model.eval(), small_vocab)
    from prunelab.lm.hf_load import adapter_for

    model = tiny_hf_model(request.param, len(subword_tokenizer))
    with torch.no_grad():  # random biases: a bias that is zero would hide a bias bug
        for name, parameter in model.named_parameters():
            if name.endswith(".bias"):
                parameter.normal_(0, 0.02)
    return adapter_for(model, subword_tokenizer, request.param)
