"""Every supported Hugging Face family (`tiny_hf_model` in tests/conftest.py: a tiny random model from transformers'
own config): prunelab scores it like the stock model, every method reaches 0.5, and the export loads in a fresh
interpreter that imports only transformers, scoring like the deliverable and holding its parameters."""
import json
import subprocess
import sys

import pytest
import torch

from prunelab.errors import PrunelabError
from prunelab.lm.export import export_model
from prunelab.lm.load import load_model, save_model
from prunelab.lm.score import sentence_logprobs
from prunelab.prune.criteria import CRITERIA
from prunelab.prune.methods import METHODS, make_method
from prunelab.prune.size import SIZE_TOLERANCE

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)

SENTENCES = ["the cat sat on the mat", "of the people by the people for the people", "a"]
# the families (HF_FAMILIES in tests/conftest.py) and the layout each is recognised as
LAYOUTS = {"llama": "llama", "mistral": "llama", "qwen2": "llama", "qwen3": "llama", "phi3": "phi3", "gemma": "llama",
           "gpt2": "gpt2"}

# a fresh interpreter: loads each export folder as a user of transformers does, with no prunelab code
PLAIN_TRANSFORMERS = """
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
sentences, results = json.loads(sys.argv[1]), {}
for folder in sys.argv[2:]:
    remote = json.load(open(f"{folder}/config.json")).get("auto_map") is not None
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=remote, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    scores = []
    with torch.no_grad():
        for sentence in sentences:
            ids = torch.tensor([[tokenizer.bos_token_id] + tokenizer.encode(sentence, add_special_tokens=False)
                                + [tokenizer.eos_token_id]])
            logprobs = torch.log_softmax(model(ids).logits.float(), -1)[0, :-1]
            scores.append(float(logprobs.gather(1, ids[0, 1:, None]).sum()))
    results[folder] = {"scores": scores, "class": type(model).__name__, "remote": remote,
                       "params": sum(p.numel() for p in model.parameters()),
                       "zeros": sum(int((p == 0).sum()) for p in model.parameters())}
print(json.dumps({"results": results, "prunelab_imported": "prunelab" in sys.modules}))
"""


def plain_transformers(folders) -> dict:
    done = subprocess.run([sys.executable, "-c", PLAIN_TRANSFORMERS, json.dumps(SENTENCES), *map(str, folders)],
                          capture_output=True, text=True, timeout=600, cwd=folders[0].parent)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert not answer["prunelab_imported"]
    return answer["results"]


def stock_logprobs(model, tokenizer) -> list[float]:
    scores = []
    with torch.no_grad():
        for sentence in SENTENCES:
            ids = torch.tensor([[tokenizer.bos_token_id] + tokenizer.encode(sentence, add_special_tokens=False)
                                + [tokenizer.eos_token_id]])
            logprobs = torch.log_softmax(model(ids).logits.float(), -1)[0, :-1]
            scores.append(float(logprobs.gather(1, ids[0, 1:, None]).sum()))
    return scores


@pytest.fixture(scope="module", params=list(LAYOUTS))
def family_folder(request, subword_tokenizer, tiny_hf_model, tmp_path_factory):
    """(family, base folder, the stock model's sentence log-probs)."""
    model = tiny_hf_model(request.param, len(subword_tokenizer)).eval()
    folder = tmp_path_factory.mktemp("families") / request.param
    model.save_pretrained(folder)
    subword_tokenizer.save_pretrained(folder)
    return request.param, folder, stock_logprobs(model, subword_tokenizer)


def test_prunelab_scores_the_unpruned_model_like_the_stock_model(family_folder):
    family, folder, stock = family_folder
    lm = load_model(folder)
    assert lm.layout == LAYOUTS[family]
    assert lm.param_counts()["params_total"] == sum(p.numel() for p in lm.model.parameters())
    assert max(abs(a - b) for a, b in zip(sentence_logprobs(lm, SENTENCES), stock)) <= 1e-5


@pytest.fixture(scope="module")
def deliverables(family_folder, tmp_path_factory):
    """Each method's deliverable at 0.5 (magnitude, one-shot), saved and loaded back as a folder."""
    family, folder, _ = family_folder
    lm = load_model(folder)
    base = lm.param_counts()["params_total"]
    out = tmp_path_factory.mktemp(f"deliverables-{family}")
    return base, {method: load_model(save_model(make_method(method, base).prune(lm.clone(), 0.5, CRITERIA["magnitude"],
                                                                                  None), out / method))
                  for method in METHODS}


def test_every_method_reaches_half_the_size(deliverables):
    base, by_method = deliverables
    for method, deliverable in by_method.items():
        assert abs(deliverable.param_counts()["params_total"] / base - 0.5) <= SIZE_TOLERANCE, method


def test_the_export_scores_like_the_deliverable_and_holds_its_parameters(deliverables, tmp_path):
    _, by_method = deliverables
    folders = {method: tmp_path / method for method in by_method}
    written = {method: export_model(deliverable, folders[method]) for method, deliverable in by_method.items()}
    plain = plain_transformers(list(folders.values()))
    for method, deliverable in by_method.items():
        loaded = plain[str(folders[method])]
        assert loaded["remote"] == written[method]["remote_code"] == (method != "unstructured"), method
        assert loaded["class"] == ("Prunelab" if loaded["remote"] else "") + type(deliverable.model).__name__
        ours = sentence_logprobs(deliverable, SENTENCES)
        assert max(abs(a - b) for a, b in zip(ours, loaded["scores"])) <= 1e-4, method
        held = deliverable.param_counts()["params_total"]
        masked = sum(mask.numel() - int(mask.sum()) for mask in deliverable.masks.values())  # exported as zeros
        assert abs(loaded["params"] - masked - held) <= 1e-3 * held, method
        if masked:
            assert loaded["zeros"] >= masked


def test_structured_pruning_with_equal_layers_exports_a_stock_config(family_folder, tmp_path):
    """The same units kept in every layer: the stock config describes the shapes, no remote code is needed."""
    family, folder, _ = family_folder
    lm = load_model(folder)
    for layer in range(lm.n_layers):
        attention, mlp = lm.unit_groups(layer)
        if family != "gpt2":  # GPT-2 derives head_dim from the width: fewer heads need remote code
            lm.keep_units(attention, torch.tensor([1]))
        lm.keep_units(mlp, torch.arange(0, mlp.n_units, 2))
    result = export_model(lm, tmp_path / "export")
    assert not result["remote_code"]
    config = json.loads((tmp_path / "export" / "config.json").read_text())
    assert "auto_map" not in config and not (tmp_path / "export" / "modeling_prunelab.py").exists()
    plain = plain_transformers([tmp_path / "export"])[str(tmp_path / "export")]
    assert max(abs(a - b) for a, b in zip(sentence_logprobs(lm, SENTENCES), plain["scores"])) <= 1e-4
    assert plain["params"] == lm.param_counts()["params_total"]
    # and prunelab loads that folder as an ordinary base, scoring the same
    assert sentence_logprobs(load_model(tmp_path / "export"), SENTENCES) == pytest.approx(plain["scores"], abs=1e-4)


def test_a_tied_factorised_embedding_is_exported_once(family_folder, tmp_path):
    family, folder, _ = family_folder
    lm = load_model(folder)
    pruned = make_method("lowrank", lm.param_counts()["params_total"]).prune(lm.clone(), 0.5, CRITERIA["magnitude"], None)
    assert pruned.tied and pruned.embedding_slot().factorized
    export_model(pruned, tmp_path / "export")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "export" / "model.safetensors"), "pt") as stored:
        names = list(stored.keys())
    embedding = "transformer.wte" if family == "gpt2" else "model.embed_tokens"
    assert "lm_head.first.weight" in names and "lm_head.second.weight" in names
    assert not [name for name in names if name.startswith(embedding)]


def _olmo2_folder(tmp_path, subword_tokenizer):
    from transformers import Olmo2Config, Olmo2ForCausalLM

    Olmo2ForCausalLM(Olmo2Config(vocab_size=len(subword_tokenizer), hidden_size=64, intermediate_size=128,
                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)).save_pretrained(tmp_path)
    subword_tokenizer.save_pretrained(tmp_path)
    return tmp_path


def test_a_layer_with_parameters_the_layout_does_not_know_is_refused_by_name(tmp_path, subword_tokenizer):
    """OLMo-2 has the Llama layout's projections, but its q/k norms span every head (the pruned width) and its
    norms sit elsewhere: refused in one line naming them, never pruned around."""
    with pytest.raises(PrunelabError) as error:
        load_model(_olmo2_folder(tmp_path, subword_tokenizer))
    message = str(error.value)
    assert "\n" not in message and "Olmo2ForCausalLM" in message
    assert "model.layers.0.self_attn.q_norm.weight [64]" in message


def test_an_added_gate_is_refused_by_name(subword_tokenizer, tiny_hf_model):
    from prunelab.lm.hf_load import adapter_for

    model = tiny_hf_model("llama", len(subword_tokenizer))
    model.model.layers[1].mlp.gate = torch.nn.Parameter(torch.ones(128))
    with pytest.raises(PrunelabError, match=r"does not know.*model\.layers\.1\.mlp\.gate \[128\]"):
        adapter_for(model, subword_tokenizer, "gated")


def test_a_padding_token_beyond_a_small_vocabulary_does_not_stop_the_architecture_check(tmp_path, subword_tokenizer,
                                                                                      tiny_hf_model):
    """Phi-3's config names padding token 32000; the architecture check builds a copy with a 16-token vocabulary,
    which must not inherit it."""
    tiny_hf_model("phi3", len(subword_tokenizer)).save_pretrained(tmp_path)
    subword_tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "pad_token_id": len(subword_tokenizer) - 1}))
    assert load_model(tmp_path).layout == "phi3"
