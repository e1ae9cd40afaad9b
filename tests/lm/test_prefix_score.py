"""Prefix-shared N-best scoring gives the log-probs of independent scoring, on the word LM and subword LMs."""
import pytest
import torch

from prunelab.lm.prefix_score import Trie, grouped_sentence_logprobs, tree_mask
from prunelab.lm.score import sentence_logprobs

GROUPS = [
    ["the cat sat on the mat", "the cat sat on a mat", "the cat sat on the mat today", "a cat sat"],
    ["of the people", ""],                                   # an empty hypothesis: <s> </s>
    ["only one hypothesis here"],
    ["the same words", "the same words", "the same words twice"],  # duplicates and a shared whole prefix
    [""],
    ["zebra quantum xylophone unknownword", "zebra quantum"],  # out-of-vocabulary words (the word LM's penalty)
]


def _hf_lm(family, subword_tokenizer, tiny_hf_model):
    from prunelab.lm.hf_load import adapter_for

    return adapter_for(tiny_hf_model(family, len(subword_tokenizer)), subword_tokenizer, family)


@pytest.fixture(params=["word", "llama", "gpt2", "phi3"])
def lm(request, trained_lm, subword_tokenizer, tiny_hf_model):
    if request.param == "word":
        return trained_lm[0]
    return _hf_lm(request.param, subword_tokenizer, tiny_hf_model)


def test_prefix_shared_scores_equal_independent_scores(lm):
    shared = grouped_sentence_logprobs(lm, GROUPS)
    assert [len(row) for row in shared] == [len(group) for group in GROUPS]
    independent = sentence_logprobs(lm, [text for group in GROUPS for text in group])
    assert [s for row in shared for s in row] == pytest.approx(independent, abs=1e-4)
    assert shared[3][0] == shared[3][1]  # duplicates share every node


def test_hypotheses_longer_than_the_context_are_scored_in_windows(trained_lm):
    lm = trained_lm[0]
    long = " ".join(["the people of the land"] * 8)  # 40 words: more than the 16-token context
    assert len(lm.tokenizer.ids(long)) - 1 > lm.context
    groups = [[long, "the people"], ["the people of"]]
    shared = grouped_sentence_logprobs(lm, groups)
    assert [s for row in shared for s in row] == pytest.approx(sentence_logprobs(lm, [long, "the people", "the people of"]),
                                                               abs=1e-4)


def test_a_trie_holds_each_prefix_once():
    trie = Trie.of([[1, 5, 6, 2], [1, 5, 7, 2], [1, 5, 6, 2], [1, 2]])
    # inner nodes: <1>, <1 5>, <1 5 6>, <1 5 7>; edges: 1-5, 5-6, 6-2, 5-7, 7-2, 1-2
    assert trie.input_tokens == [1, 5, 6, 7] and trie.input_depth == [0, 1, 2, 2]
    assert len(trie.edge_token) == 6
    assert trie.ends[0] == trie.ends[2]
    mask = tree_mask([trie], 5)[0]
    assert mask[2].tolist() == [True, True, True, False, False]   # <1 5 6> sees its ancestors only
    assert mask[3].tolist() == [True, True, False, True, False]   # not its sibling
    assert mask[4].tolist() == [False, False, False, False, True]  # padding sees itself


def test_the_evaluator_gets_the_same_wer_either_way(trained_lm):
    from prunelab.evaluate.evaluator import Benchmark, evaluate_model

    bench = Benchmark.load(max_test_utts=40, max_dev_utts=40, max_valid_sentences=20, max_test_sentences=20)
    figures = {scoring: evaluate_model(trained_lm[0], bench, trigram=False, speed=False, scoring=scoring,
                                       scoring_precision="fp32")
               for scoring in ("prefix-tree", "independent")}
    for key in ("wer", "wer_dev", "lm_scale", "word_insertion", "utt_errors"):
        assert figures["prefix-tree"][key] == figures["independent"][key], key


def test_an_unknown_scoring_is_refused(trained_lm):
    from prunelab.evaluate.evaluator import neural_scorer

    with pytest.raises(ValueError, match="unknown scoring 'fast'; expected one of prefix-tree, independent"):
        neural_scorer(trained_lm[0], "fast")


def test_tree_attention_of_a_chain_is_causal_attention(lm):
    """One hypothesis is a chain: the tree path computes the causal forward exactly."""
    tokens = torch.tensor([lm.tokenizer.ids("the cat sat on the mat")[:-1]])
    width = tokens.shape[1]
    positions = torch.arange(width)[None]
    mask = torch.ones(width, width, dtype=torch.bool).tril()[None]
    with torch.no_grad():
        assert torch.allclose(lm.tree_hidden(tokens, positions, mask), lm.hidden(tokens), atol=1e-5)


@pytest.mark.parametrize("scoring", ["prefix-tree", "independent"])
def test_bf16_scoring_stays_near_fp32_and_is_recorded(lm, scoring):
    """bf16 blocks with an fp32 output layer: within 0.05 nats per token of fp32 (a stated tolerance; the
    README gives the benchmark's measured WER either way)."""
    from prunelab.evaluate.evaluator import neural_scorer

    texts = [text for group in GROUPS for text in group]
    tokens = [len(lm.tokenizer.ids(text)) - 1 for text in texts]
    fp32 = neural_scorer(lm, scoring, "fp32")(GROUPS)
    bf16 = neural_scorer(lm, scoring, "bf16")(GROUPS)
    assert fp32 != bf16  # bf16 ran
    for a, b, n in zip(fp32, bf16, tokens):
        assert abs(a - b) <= 0.05 * n


def test_the_output_layer_stays_fp32_under_bf16_autocast(trained_lm):
    from prunelab.lm.precision import output_logits, scoring_autocast

    lm = trained_lm[0]
    with torch.inference_mode():
        hidden = lm.hidden(torch.tensor([lm.tokenizer.ids("the cat sat")]))[0]
    with scoring_autocast("bf16", "cpu") as precision, torch.inference_mode():
        assert precision == "bf16"
        logits = output_logits(lm.decode, hidden)
        assert lm.decode(hidden).dtype == torch.bfloat16
    assert logits.dtype == torch.float32
    with torch.inference_mode():
        assert torch.allclose(logits, lm.decode(hidden))


def test_an_unknown_scoring_precision_is_refused_before_scoring(trained_lm):
    from prunelab.evaluate.evaluator import neural_scorer

    with pytest.raises(ValueError, match="unknown precision 'fp8'; expected one of auto, bf16, fp32"):
        neural_scorer(trained_lm[0], "prefix-tree", "fp8")
