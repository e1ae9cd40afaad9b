"""Shared fixtures: a small real model trained briefly on the shipped corpus (seconds, not minutes)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from prunelab.data.text import Corpus, load_corpus
from prunelab.procs import descendants, processes

PLANTED_WANDB_KEY = "planted0secret0key0" + "f" * 21  # 40 characters, the shape of a real W&B key


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return load_corpus()


@pytest.fixture(scope="session")
def small_corpus(corpus) -> Corpus:
    """The first slices of the shipped corpus, so that models train in seconds."""
    return Corpus(train=corpus.train[:20000], valid=corpus.valid[:300], test=corpus.test[:300], source="slice")


@pytest.fixture(scope="session")
def trained_lm(small_corpus, tmp_path_factory):
    """(model adapter, vocab, checkpoint path) of a 1-layer word LM trained for 60 steps."""
    from prunelab.lm import model as model_module
    from prunelab.lm.checkpoint import save_checkpoint
    from prunelab.lm.train import TrainConfig, train_base
    from prunelab.lm.word_adapter import WordLM

    model_module.PRESETS["test"] = dict(n_layer=1, n_head=2, d_model=32, d_ff=64, context=16, vocab=2000)
    try:
        model, vocab, info = train_base(small_corpus, "test", TrainConfig(steps=60, eval_every=60, batch_size=16,
                                                                          eval_sentences=50, warmup_steps=10),
                                        log=lambda line: None)
    finally:
        model_module.PRESETS.pop("test")
    path = save_checkpoint(tmp_path_factory.mktemp("models") / "test.pt", model, vocab, info)
    return WordLM.of(model, vocab), vocab, path


# ---- tiny Hugging Face models: built from configs, with a BPE tokenizer trained in memory (nothing is downloaded)


@pytest.fixture(scope="session")
def subword_tokenizer(small_corpus):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<unk>", "<s>", "</s>"])
    tokenizer.train_from_iterator(small_corpus.train[:5000], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>")


# The families prunelab supports, each a tiny random model from transformers' own config: 2 layers, hidden 64,
# 4 query / 2 key-value heads, tied embedding (GPT-2: 4 heads).
HF_FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),  # q/k/v biases
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"head_dim": 16}),  # per-head q/k norms (its default head_dim is 128)
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {}),  # fused qkv_proj and gate_up_proj
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {"head_dim": 16}),  # embedding scaled by sqrt(width), norms (1 + w)
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {}),
}


def _randomise_norms_and_biases(model) -> None:
    """Norms start at one and biases at zero: random values make a norm or bias that is wrongly sliced show."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".bias"):
                parameter.normal_(0, 0.02)
            elif "norm" in name or "ln_" in name:
                parameter.normal_(1, 0.1)


def _tiny_hf_model(family: str, vocab_size: int):
    """A random model of a family: one of HF_FAMILIES, or the smaller llama-gqa-tied, llama-bias-untied and gpt2-32
    that the pruning tests run every criterion, method and size on."""
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if family == "gpt2-32":
        return GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_embd=32, n_head=4, n_layer=2, n_positions=64,
                                          bos_token_id=2, eos_token_id=3))
    if family == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_embd=64, n_head=4, n_layer=2, n_positions=64,
                                           bos_token_id=2, eos_token_id=3))
        _randomise_norms_and_biases(model)
        return model
    common = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, bos_token_id=2,
                  eos_token_id=3, pad_token_id=0, tie_word_embeddings=True)
    if family in HF_FAMILIES:
        config_class, model_class, extra = HF_FAMILIES[family]
        model = getattr(transformers, model_class)(getattr(transformers, config_class)(**{**common, **extra}))
        _randomise_norms_and_biases(model)
        return model
    common.update(hidden_size=32, intermediate_size=64)
    if family == "llama-gqa-tied":
        return LlamaForCausalLM(LlamaConfig(**common))
    # untied: the input embedding is not pruned, so the blocks must outweigh it for a target of 0.3 to be reachable
    return LlamaForCausalLM(LlamaConfig(**{**common, "hidden_size": 64, "intermediate_size": 256,
                                           "tie_word_embeddings": False}, attention_bias=True))


@pytest.fixture(scope="session")
def tiny_hf_model():
    return _tiny_hf_model


@pytest.fixture(scope="session")
def hf_base_folder(subword_tokenizer, tmp_path_factory):
    """A tiny random Llama-layout model (grouped-query attention, tied embedding) saved with its tokenizer as a
    Hugging Face folder: what a user brings."""
    folder = tmp_path_factory.mktemp("hf") / "tiny-llama"
    _tiny_hf_model("llama-gqa-tied", len(subword_tokenizer)).save_pretrained(folder)
    subword_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def finished_sweep(trained_lm, tmp_path_factory):
    """(spec, folder) of a real two-trial sweep on a local Ray with offline W&B runs (shared by sweep and report tests)."""
    from prunelab.sweep.spec import parse_spec
    from prunelab.sweep.tuner import run_sweep

    storage = tmp_path_factory.mktemp("runs")
    spec = parse_spec(dict(
        name="t", base=str(trained_lm[2]), data={"eval_test_utts": 30}, target_sizes=[0.6, 0.4],
        criteria=["magnitude", "activation"], methods=["lowrank", "unstructured"], schedulers=["oneshot", "incremental"],
        schedule={"stages": {"low": 2, "high": 2}}, finetune_steps=4, calibration_sequences=8, search="random",
        num_samples=2, max_concurrent=2, wandb={"mode": "offline"}, storage=str(storage), seed=3))
    # a W&B API key in the environment (as a logged-in user has) must not end up in any file the sweep writes
    previous = os.environ.get("WANDB_API_KEY")
    os.environ["WANDB_API_KEY"] = PLANTED_WANDB_KEY
    try:
        run_sweep(spec)
    finally:
        if previous is None:
            os.environ.pop("WANDB_API_KEY", None)
        else:
            os.environ["WANDB_API_KEY"] = previous
    return spec, storage / "t"


@pytest.fixture
def headless_chromium():
    """A Selenium driver of Debian's chromium, headless; the test is skipped, with the reason, where it is missing."""
    import shutil

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("chromium and chromedriver are not installed (Debian packages chromium, chromium-driver; "
                    "`make test` installs them where it has root or password-less sudo)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture(scope="session")
def planted_wandb_key() -> str:
    """The fake W&B API key that `finished_sweep` ran with."""
    return PLANTED_WANDB_KEY


@pytest.fixture(autouse=True)
def no_ray_process_left_behind():
    """After every test, no Ray or wandb process started by this test process is still alive."""
    before = set(descendants([os.getpid()]))
    yield
    deadline = time.monotonic() + 20  # Ray's processes take a few seconds to exit after ray.shutdown()
    while True:
        table = processes()
        left = {pid: table[pid].args for pid in descendants([os.getpid()], table)
                if pid not in before and pid in table and ("ray" in table[pid].args or "wandb" in table[pid].args)}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not left, f"processes left behind: {left}"


def _group_members(pgid: int) -> list[int]:
    # a zombie has ended already; its parent reaps it later
    return [p.pid for p in processes().values() if p.pgid == pgid and p.state != "Z"]


@pytest.fixture
def end_process_group():
    """End every process of a killed driver's process group (its Ray and wandb processes) and check that
    none is left."""
    import signal

    def end(pgid: int) -> None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_members(pgid), f"processes of group {pgid} left behind"

    return end


@pytest.fixture(scope="session", autouse=True)
def repository_reports_untouched():
    """Tests write reports under their own folders, never into the repository's reports/."""
    reports = Path(__file__).resolve().parent.parent / "reports"

    def snapshot():
        return {p: p.stat().st_mtime_ns for p in reports.rglob("*") if p.is_file()} if reports.is_dir() else {}

    before = snapshot()
    yield
    changed = {p for p, m in snapshot().items() if before.get(p) != m}
    assert not changed, f"tests wrote into the repository's reports/: {sorted(map(str, changed))[:5]}"
