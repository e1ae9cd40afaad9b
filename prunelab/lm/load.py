"""Where a model comes from: `load_model` takes a preset name, a prunelab checkpoint, a Hugging Face folder
or a `.gguf` file and returns its model adapter; `from_payload` rebuilds a model from `ModelAdapter.payload()`,
the plain data and tensors that carry it to Ray trials."""
from __future__ import annotations

from pathlib import Path

from prunelab.errors import PrunelabError
from prunelab.lm.adapter import ModelAdapter


def load_model(spec: str | Path) -> ModelAdapter:
    """The model named by `spec`: a preset (its cached or shipped base), a prunelab checkpoint (`.pt`),
    a Hugging Face folder (`save_pretrained` layout) or a `.gguf` file."""
    from prunelab.lm.checkpoint import load_word_lm
    from prunelab.lm.presets import preset_names, resolve_model

    path = resolve_model(str(spec))
    if not path.exists():
        presets = ", ".join(preset_names())
        raise PrunelabError(f"model {spec} does not exist: give a preset ({presets}), a prunelab checkpoint, "
                            f"a Hugging Face model folder or a .gguf file")
    if path.is_dir() or path.suffix == ".gguf":
        from prunelab.lm.hf_load import load_hf_model

        return load_hf_model(path)
    return load_word_lm(path)


def from_payload(payload: dict) -> ModelAdapter:
    """The model of `ModelAdapter.payload()` (what travels to every trial through Ray's object store)."""
    kind = payload.get("kind")
    if kind == "word":
        from prunelab.lm.word_adapter import WordLM

        return WordLM.from_payload(payload)
    if kind == "hf":
        from prunelab.lm.hf_load import hf_from_payload

        return hf_from_payload(payload)
    raise PrunelabError(f"unknown model payload kind {kind!r}")
