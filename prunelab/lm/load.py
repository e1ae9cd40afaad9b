"""Models on disk and in transit, for every model kind: `load_model` takes a preset name, a prunelab checkpoint, a
Hugging Face folder or a `.gguf` file and returns its model adapter; `save_model` writes a model as a deliverable
(a checkpoint file for a word LM, a folder for a Hugging Face LM; `ModelAdapter.suffix` says which);
`model_payload` and `from_payload` carry a model as plain data and tensors (what a sweep sends its Ray trials).
Each kind's format lives in one module that imports its adapter, never the reverse: `prunelab.lm.checkpoint` (word
LMs) and `prunelab.lm.hf_load` (Hugging Face LMs)."""
from __future__ import annotations

from pathlib import Path

from prunelab.errors import PrunelabError
from prunelab.lm.adapter import ModelAdapter
from prunelab.lm.checkpoint import load_word_lm, save_word_lm, word_from_payload, word_payload
from prunelab.lm.hf_adapter import HFCausalLM
from prunelab.lm.hf_load import folder_payload, hf_from_payload, load_hf_model, save_hf_deliverable
from prunelab.lm.presets import preset_names, resolve_model
from prunelab.lm.word_adapter import WordLM


def load_model(spec: str | Path) -> ModelAdapter:
    """The model named by `spec`: a preset (its cached or shipped base), a prunelab checkpoint (`.pt`),
    a Hugging Face folder (`save_pretrained` layout) or a `.gguf` file."""
    path = resolve_model(str(spec))
    if not path.exists():
        presets = ", ".join(preset_names())
        raise PrunelabError(f"model {spec} does not exist: give a preset ({presets}), a prunelab checkpoint, "
                            f"a Hugging Face model folder or a .gguf file")
    if path.is_dir() or path.suffix == ".gguf":
        return load_hf_model(path)
    return load_word_lm(path)


def save_model(lm: ModelAdapter, path: str | Path, info: dict | None = None) -> Path:
    """Write `lm` at `path` with `info` (plain data: how it was made, its metrics) beside the weights, whole or
    not at all; returns the path written."""
    if isinstance(lm, WordLM):
        return save_word_lm(lm, path, info)
    if isinstance(lm, HFCausalLM):
        return save_hf_deliverable(lm, path, info)
    raise TypeError(f"no saved form for {type(lm).__name__}")


def model_payload(lm: ModelAdapter) -> dict:
    """Plain data and tensors that rebuild `lm` elsewhere (`from_payload`)."""
    if isinstance(lm, WordLM):
        return word_payload(lm)
    if isinstance(lm, HFCausalLM):
        return folder_payload(lm)
    raise TypeError(f"no payload for {type(lm).__name__}")


def from_payload(payload: dict) -> ModelAdapter:
    """The model of `model_payload` (what travels to every trial through Ray's object store)."""
    kind = payload.get("kind")
    if kind == "word":
        return word_from_payload(payload)
    if kind == "hf":
        return hf_from_payload(payload)
    raise PrunelabError(f"unknown model payload kind {kind!r}")
