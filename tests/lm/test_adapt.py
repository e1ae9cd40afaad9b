"""Domain adaptation (`prunelab adapt`): LoRA and full fine-tuning of a tiny Hugging Face model, its output folder,
and an interrupted run (kill -9) resumed to the same weights as an uninterrupted one."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from prunelab.errors import PrunelabError
from prunelab.lm.adapt import STATE, AdaptConfig, adapt, read_adapt_info, state_folder
from prunelab.lm.hf_load import load_hf_model
from prunelab.lm.lora import adapter_tensors, add_lora, apply_adapter, merge_lora
from prunelab.lm.score import perplexity

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)

PRUNELAB = [sys.executable, "-m", "prunelab.cli"]


@pytest.fixture(scope="module")
def corpus_folder(small_corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for split, sentences in (("train", small_corpus.train[:4000]), ("valid", small_corpus.valid[:60]),
                             ("test", small_corpus.test[:60])):
        (folder / f"{split}.txt").write_text("\n".join(sentences) + "\n")
    return folder


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _cli(*args, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run([*PRUNELAB, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.parametrize("method", ["lora", "full"])
def test_adapt_lowers_perplexity_and_writes_a_plain_folder(method, hf_base_folder, corpus_folder, tmp_path):
    from transformers import AutoModelForCausalLM

    from prunelab.data.text import load_corpus

    corpus = load_corpus(corpus_folder)
    base = load_hf_model(hf_base_folder)
    before = perplexity(base, corpus.valid)
    out = adapt(base, corpus, tmp_path / "adapted", AdaptConfig(steps=60, method=method, batch_size=8, eval_every=30,
                                                                lr=1e-2 if method == "lora" else 1e-3),
                log=lambda line: None)
    adapted = load_hf_model(out)
    after = perplexity(adapted, corpus.valid)
    # a random tiny model: LoRA cannot touch its untrained output layer, full fine-tuning can
    assert after < (0.97 if method == "lora" else 0.5) * before, (before, after)
    info = read_adapt_info(out)
    assert info["steps"] == 60 and info["config"]["method"] == method
    assert [h["step"] for h in info["history"]] == [0, 30, 60]
    assert (out / "adapter.safetensors").is_file() == (method == "lora")
    assert not state_folder(out).exists()
    plain = AutoModelForCausalLM.from_pretrained(str(out))  # plain transformers, no prunelab code
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in base.parameters())


def test_lora_merge_equals_the_wrapped_model_and_the_adapter_rebuilds_it(hf_base_folder):
    lm = load_hf_model(hf_base_folder)
    plain = load_hf_model(hf_base_folder)
    names = add_lora(lm.model, rank=4, alpha=8)
    assert names and all(not p.requires_grad for n, p in lm.model.named_parameters() if "lora_" not in n)
    with torch.no_grad():
        for name, p in lm.model.named_parameters():
            if "lora_" in name:  # factors exactly representable in bfloat16, so rounding does not show
                p.copy_(torch.randn_like(p).mul(0.05).to(torch.bfloat16).float())
    tokens = torch.tensor([lm.tokenizer.ids("and the lord said unto moses")])
    wrapped = lm.decode(lm.hidden(tokens))
    tensors = adapter_tensors(lm.model)
    merge_lora(lm.model)
    assert not any("lora_" in n for n, _ in lm.model.named_parameters())
    assert torch.allclose(lm.decode(lm.hidden(tokens)), wrapped, atol=1e-4)
    assert apply_adapter(plain.model, tensors) == len(names)
    for (name, a), (_, b) in zip(lm.model.state_dict().items(), plain.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_an_adapter_for_another_shape_is_refused(hf_base_folder, tiny_hf_model):
    lm = load_hf_model(hf_base_folder)
    add_lora(lm.model, rank=2, alpha=2)
    tensors = adapter_tensors(lm.model)
    other = tiny_hf_model("llama", lm.model.config.vocab_size)
    with pytest.raises(PrunelabError, match="the model's weight"):
        apply_adapter(other, tensors)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_kill_9_then_resume_gives_the_uninterrupted_weights(method, hf_base_folder, corpus_folder, tmp_path):
    common = [hf_base_folder, "--corpus", corpus_folder, "--steps", 300, "--batch-size", 4, "--method", method,
              "--threads", 1]
    whole = tmp_path / "whole"
    _cli("adapt", *common, "--out", whole)

    out = tmp_path / "killed"
    state = state_folder(out) / STATE
    process = subprocess.Popen([*PRUNELAB, "adapt", *map(str, common), "--out", str(out), "--checkpoint-minutes", "0"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    step = 0
    while time.monotonic() < deadline and process.poll() is None:
        if state.is_file():
            step = torch.load(state, weights_only=True)["progress"]["step"]
            if step >= 20:
                break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert 20 <= step < 300, f"the run was not killed mid-way (step {step}, exit {process.returncode})"
    assert not out.exists()  # nothing half-written where a user would look

    refused = _cli("adapt", *common, "--out", out, check=False)
    assert refused.returncode != 0 and "--resume" in refused.stderr
    _cli("adapt", hf_base_folder, "--corpus", corpus_folder, "--threads", 1, "--out", out, "--resume")
    info = read_adapt_info(out)
    assert info["steps"] == 300 and info["config"]["method"] == method
    resumed, uninterrupted = _weights(out), _weights(whole)
    assert resumed.keys() == uninterrupted.keys()
    for name in uninterrupted:
        assert torch.allclose(resumed[name], uninterrupted[name], atol=1e-6), name


def test_bad_adapt_requests_name_the_problem(hf_base_folder, corpus_folder, tmp_path, trained_lm):
    out = tmp_path / "adapted"
    done = _cli("adapt", hf_base_folder, "--corpus", corpus_folder, "--out", out, "--resume", check=False)
    assert done.returncode != 0 and "no checkpoint of an interrupted run" in done.stderr
    out.mkdir()
    done = _cli("adapt", hf_base_folder, "--corpus", corpus_folder, "--out", out, check=False)
    assert done.returncode != 0 and "exists" in done.stderr
    done = _cli("adapt", trained_lm[2], "--corpus", corpus_folder, "--out", tmp_path / "word", check=False)
    assert done.returncode != 0 and "Hugging Face causal LM" in done.stderr
    assert not (tmp_path / "word").exists()


class _RunsCommand:
    """A pickle that runs a shell command when it is unpickled."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_crafted_or_foreign_resume_state_is_refused_without_running_it(hf_base_folder, corpus_folder, tmp_path):
    out = tmp_path / "adapted"
    state = state_folder(out) / STATE
    state.parent.mkdir(parents=True)
    ran = tmp_path / "ran"
    torch.save({"config": _RunsCommand(f"touch {ran}")}, state)
    done = _cli("adapt", hf_base_folder, "--corpus", corpus_folder, "--out", out, "--resume", check=False)
    assert done.returncode == 2, done.stderr
    assert "weights-only loading refuses" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not ran.exists() and not out.exists()
    torch.save({"config": {}, "progress": {"step": 3}}, state)   # plain data, but not a resume state
    done = _cli("adapt", hf_base_folder, "--corpus", corpus_folder, "--out", out, "--resume", check=False)
    assert done.returncode == 2 and "'source' missing" in done.stderr and not out.exists()


def test_an_adapter_preset_is_built_once_from_its_base_and_the_shipped_update(hf_base_folder, corpus_folder,
                                                                              tmp_path, monkeypatch):
    from prunelab.data.text import load_corpus
    from prunelab.lm import hf_presets, presets

    out = adapt(load_hf_model(hf_base_folder), load_corpus(corpus_folder), tmp_path / "adapted",
                AdaptConfig(steps=5, batch_size=4), log=lambda line: None)
    shipped = tmp_path / "shipped" / "tiny-domain.safetensors"
    shipped.parent.mkdir()
    shipped.write_bytes((out / "adapter.safetensors").read_bytes())
    shipped.with_suffix(".json").write_text((out / "prunelab_adapt.json").read_text())
    monkeypatch.setenv("PRUNELAB_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(hf_presets.ADAPTER_PRESETS, "tiny-domain",
                        hf_presets.AdapterPreset(str(hf_base_folder), str(shipped)))
    monkeypatch.setitem(presets.PRESETS, "tiny-domain", presets.Preset("tiny-domain", "adapter", "a test's adapter"))
    from prunelab.lm.load import load_model

    built = load_model("tiny-domain")
    assert built.source.startswith(str(tmp_path / "home"))
    rebuilt, written = _weights(Path(built.source)), _weights(out)
    for name in written:  # the merged bfloat16 update is the one adapt merged
        assert torch.equal(rebuilt[name], written[name]), name
    assert read_adapt_info(built.source)["preset"] == "tiny-domain"
