"""Domain adaptation: continued training of a Hugging Face causal LM on a corpus's train text, framed the way
prunelab scores sentences (the model's sentence boundaries around every sentence of the token stream).

`full` trains every weight; `lora` trains a low-rank update of each block matrix (prunelab.lm.lora) and merges it
into the weights at the end, and also writes the update alone (`adapter.safetensors`, a few MB) from which a preset
rebuilds the adapted model on another machine. Either way the output is an ordinary Hugging Face folder.

An interrupted run (Ctrl-C, kill -9, a lost machine) continues with `resume=True` from its last checkpoint: the
trainable weights, the optimizer, the data order's random state and the history, written atomically to
`OUT.adapt-state/state.pt` every `checkpoint_minutes`. A resumed run takes the same steps as an uninterrupted one."""
from __future__ import annotations

import json
import pickle
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from safetensors.torch import save_file

from prunelab.atomic import atomic_folder, atomic_write
from prunelab.data.text import Corpus
from prunelab.errors import PrunelabError
from prunelab.lm.hf_adapter import HFCausalLM
from prunelab.lm.hf_load import write_hf_folder
from prunelab.lm.lora import adapter_tensors, add_lora, merge_lora
from prunelab.lm.precision import resolve_precision
from prunelab.lm.score import perplexity
from prunelab.lm.train import TrainConfig, lr_at, make_optimizer, random_batch, training_step

ADAPT_METHODS = ("full", "lora")
DEFAULT_LR = {"full": 5e-5, "lora": 1e-3}
ADAPT_INFO = "prunelab_adapt.json"   # what the run did, in the output folder
ADAPTER_FILE = "adapter.safetensors"  # the LoRA update alone (lora only)
STATE = "state.pt"


@dataclass
class AdaptConfig:
    steps: int = 600
    method: str = "lora"
    lora_rank: int = 16
    lora_alpha: float = 32.0
    lr: float | None = None          # None: DEFAULT_LR of the method
    batch_size: int = 16             # sequences of the model's context (128 tokens) per step
    warmup_steps: int = 30
    eval_every: int = 50
    eval_sentences: int = 300        # the first valid sentences, for the progress line's per-word perplexity
    checkpoint_minutes: float = 5.0  # 0: after every step
    precision: str = "auto"
    seed: int = 0

    def __post_init__(self):
        if self.method not in ADAPT_METHODS:
            raise PrunelabError(f"unknown adaptation method {self.method!r}; expected one of {', '.join(ADAPT_METHODS)}")
        if self.steps < 1:
            raise PrunelabError(f"--steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise PrunelabError(f"--batch-size must be >= 1, got {self.batch_size}")
        resolve_precision(self.precision, "cpu")
        if self.lr is None:
            self.lr = DEFAULT_LR[self.method]

    @classmethod
    def from_dict(cls, values: dict) -> AdaptConfig:
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})


def state_folder(out: Path) -> Path:
    return out.with_name(out.name + ".adapt-state")


def _trainable(lm: HFCausalLM) -> dict[str, torch.Tensor]:
    return {name: p for name, p in lm.model.named_parameters() if p.requires_grad}


def _save_state(folder: Path, lm: HFCausalLM, optimizer, generator, progress: dict, config: AdaptConfig,
                source: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {"config": asdict(config), "source": source, "progress": progress, "generator": generator.get_state(),
             "trainable": {name: p.detach().clone() for name, p in _trainable(lm).items()},
             "optimizer": optimizer.state_dict()}
    atomic_write(folder / STATE, lambda handle: torch.save(state, handle))


STATE_KEYS = {"config": dict, "source": dict, "progress": dict, "generator": torch.Tensor, "trainable": dict,
              "optimizer": dict}


def _load_state(folder: Path) -> dict:
    """The checkpoint of an interrupted run, loaded weights-only (tensors and plain data: a state file that holds
    anything else is refused before any of it runs) and checked for the keys a resume reads."""
    path = folder / STATE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise PrunelabError(f"{path}: not an adaptation checkpoint: it holds pickled objects other than tensors and "
                            f"plain data, which weights-only loading refuses") from error
    except (OSError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as error:
        raise PrunelabError(f"{path}: not a readable adaptation checkpoint: {error}") from error
    if not isinstance(state, dict):
        raise PrunelabError(f"{path}: not an adaptation checkpoint: it holds a {type(state).__name__}, not a dict")
    for key, kind in STATE_KEYS.items():
        if not isinstance(state.get(key), kind):
            raise PrunelabError(f"{path}: not an adaptation checkpoint: {key!r} missing or not a {kind.__name__}")
    if not all(isinstance(value, torch.Tensor) for value in state["trainable"].values()):
        raise PrunelabError(f"{path}: not an adaptation checkpoint: 'trainable' holds something other than tensors")
    return state


def check_out(out: Path, resume: bool) -> None:
    """Refuse, before anything is loaded or written, an `out` that exists or a state that does not fit `resume`."""
    state = state_folder(out)
    if out.exists():
        raise PrunelabError(f"{out} exists: give another --out or remove it")
    if resume and not (state / STATE).is_file():
        raise PrunelabError(f"--resume: no checkpoint of an interrupted run at {state}")
    if not resume and state.exists():
        raise PrunelabError(f"{state} holds an interrupted run: add --resume to continue it, or remove it")


def adapt(lm: HFCausalLM, corpus: Corpus, out: str | Path, config: AdaptConfig | None = None,
          resume: bool = False, source: dict | None = None, log: Callable[[str], None] = print) -> Path:
    """Adapt `lm` (changed in place) to `corpus`'s train text and write it to `out`; returns `out`.

    With `resume`, the run at `out`'s checkpoint continues with its own settings (`config` is ignored)."""
    out = Path(out)
    check_out(out, resume)
    if not isinstance(lm, HFCausalLM):
        raise PrunelabError("prunelab adapt continues training a Hugging Face causal LM; the word LM's base "
                            "trains with `prunelab train-base --more`")
    folder = state_folder(out)
    saved = _load_state(folder) if resume else None
    if saved:
        config = AdaptConfig.from_dict(saved["config"])
        source = saved["source"]
    config = config or AdaptConfig()
    source = dict(source or {})
    precision = resolve_precision(config.precision, lm.device)
    torch.manual_seed(config.seed)
    if config.method == "lora":
        add_lora(lm.model, config.lora_rank, config.lora_alpha)
    optimizer = make_optimizer(lm, config.lr, weight_decay=0.0 if config.method == "lora" else 0.01)
    generator = torch.Generator().manual_seed(config.seed)
    progress = {"step": 0, "tokens": 0, "seconds": 0.0, "history": []}
    if saved:
        with torch.no_grad():
            for name, parameter in _trainable(lm).items():
                parameter.copy_(saved["trainable"][name])
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        progress = saved["progress"]
        log(f"resuming {out} at step {progress['step']}/{config.steps} (checkpoint {folder / STATE})")
    log(f"tokenising {len(corpus.train):,} train sentences of {corpus.source}")
    stream = lm.tokenizer.stream(corpus.train)
    valid = corpus.valid[: config.eval_sentences]
    schedule = TrainConfig(lr=config.lr, warmup_steps=config.warmup_steps)
    trainable = sum(p.numel() for p in _trainable(lm).values())
    log(f"adapting ({config.method}, {trainable:,} trainable parameters, {precision}) for {config.steps} steps of "
        f"{config.batch_size} x {lm.context} tokens on {len(stream):,} train tokens")
    if not progress["history"]:
        progress["history"].append({"step": 0, "ppl_valid_subset": perplexity(lm.eval(), valid, precision=precision)})
        log(f"step 0  valid per-word ppl (first {len(valid)}) {progress['history'][0]['ppl_valid_subset']:.1f}")
    started, start_seconds, start_step = time.monotonic(), progress["seconds"], progress["step"]
    last_checkpoint = time.monotonic()
    lm.train()
    while progress["step"] < config.steps:
        step = progress["step"]
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config.steps, schedule)
        inputs, targets = random_batch(stream, config.batch_size, lm.context, generator)
        loss = training_step(lm, optimizer, inputs.to(lm.device), targets.to(lm.device), precision)
        progress["step"] = step + 1
        progress["tokens"] += inputs.numel()
        progress["seconds"] = start_seconds + time.monotonic() - started
        if progress["step"] % config.eval_every == 0 or progress["step"] == config.steps:
            ppl = perplexity(lm.eval(), valid, precision=precision)
            lm.train()
            progress["history"].append({"step": progress["step"], "loss": round(loss, 4), "ppl_valid_subset": ppl,
                                        "minutes": round(progress["seconds"] / 60, 2)})
            done = progress["step"] - start_step
            per_step = (time.monotonic() - started) / done
            log(f"step {progress['step']}/{config.steps}  loss {loss:.3f}  "
                f"{inputs.numel() * done / (time.monotonic() - started):,.0f} tokens/s  valid per-word ppl "
                f"(first {len(valid)}) {ppl:.1f}  {progress['seconds'] / 60:.1f} min, "
                f"{per_step * (config.steps - progress['step']) / 60:.1f} min left")
        if progress["step"] < config.steps and time.monotonic() - last_checkpoint >= 60 * config.checkpoint_minutes:
            _save_state(folder, lm, optimizer, generator, progress, config, source)
            last_checkpoint = time.monotonic()
    lm.eval()
    return _write_output(lm, out, config, source, progress, precision, trainable)


def _write_output(lm: HFCausalLM, out: Path, config: AdaptConfig, source: dict, progress: dict, precision: str,
                  trainable: int) -> Path:


    adapter = adapter_tensors(lm.model) if config.method == "lora" else None
    if adapter is not None:
        merge_lora(lm.model)
    seconds = progress["seconds"]
    info = {"source": source, "config": asdict(config), "precision": precision, "trainable_params": trainable,
            "steps": progress["step"], "tokens": progress["tokens"], "minutes": round(seconds / 60, 2),
            "tokens_per_s": round(progress["tokens"] / max(seconds, 1e-9), 1), "history": progress["history"],
            "ppl_valid_subset": progress["history"][-1]["ppl_valid_subset"]}
    with atomic_folder(out) as staging:
        write_hf_folder(staging, lm)
        if adapter is not None:
            save_file(adapter, str(staging / ADAPTER_FILE), metadata={"format": "pt"})
        (staging / ADAPT_INFO).write_text(json.dumps(info, indent=1, default=float) + "\n")
    shutil.rmtree(state_folder(out), ignore_errors=True)
    return out


def read_adapt_info(folder: str | Path) -> dict | None:
    path = Path(folder) / ADAPT_INFO
    return json.loads(path.read_text()) if path.is_file() else None
