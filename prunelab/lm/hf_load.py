"""Hugging Face models in and out of prunelab: loading a base (a `save_pretrained` folder or a `.gguf` file),
and deliverables as folders.

A deliverable folder holds `config.json` (the base's config: one head count and FFN width for all layers),
the tokenizer files, `model.safetensors` (the pruned weights, shared tensors once), `masks.safetensors`
(unstructured pruning), `sentence_boundaries.json` (the tokens that frame each scored sentence, see
`prunelab.lm.tokenizer`) and `prunelab.json`, the manifest of the pruned shapes: every matrix's [out, in]
shape and rank, per layer. Loading builds the base layout from the config, gives the matrices the
manifest's shapes and loads the weights strictly: nothing is unpickled."""
from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from prunelab.atomic import atomic_folder
from prunelab.errors import PrunelabError
from prunelab.lm.hf_adapter import HFCausalLM
from prunelab.lm.hf_families import LAYOUTS, SUPPORTED
from prunelab.lm.tokenizer import SENTENCE_BOUNDARIES, SubwordTokenizer

MANIFEST = "prunelab.json"
MANIFEST_FORMAT = "prunelab-hf-deliverable"
WEIGHTS, MASKS = "model.safetensors", "masks.safetensors"


def _transformers():
    import transformers  # deferred: transformers takes about a second to import

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # prunelab prints its own progress lines
    return transformers


def adapter_for(model, tokenizer, source: str = "", boundaries: dict | None = None) -> HFCausalLM:
    """The adapter whose layout the model's modules have; one line naming the architecture otherwise."""
    for layout in LAYOUTS:
        if layout.matches(model):
            lm = layout(model.eval(), _subword_tokenizer(tokenizer, boundaries, source))
            lm.source = source
            _check_parameters(lm, model, source)
            return lm
    architectures = getattr(model.config, "architectures", None) or [type(model).__name__]
    raise PrunelabError(f"{source or 'the model'}: architecture {', '.join(architectures)} is not supported; "
                        f"supported: {SUPPORTED}")


def _check_parameters(lm: HFCausalLM, model, source: str) -> None:
    unknown = lm.unknown_parameters()
    if unknown:
        architectures = getattr(model.config, "architectures", None) or [type(model).__name__]
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise PrunelabError(f"{source or 'the model'}: {', '.join(architectures)} has the {lm.layout} layout but holds "
                            f"parameters it does not know, which pruning could leave at the wrong width or wrongly scaled: "
                            f"{', '.join(unknown[:3])}{more}; supported: {SUPPORTED}")


def _subword_tokenizer(tokenizer, boundaries: dict | None, source) -> SubwordTokenizer:
    try:
        return SubwordTokenizer(tokenizer, boundaries)
    except ValueError as error:
        where = Path(source) / SENTENCE_BOUNDARIES if boundaries else source
        raise PrunelabError(f"{where}: {error}") from error


def read_boundaries(folder: Path) -> dict | None:
    """The folder's `sentence_boundaries.json` ({"bos": token, "eos": token}), or None where it has none."""
    path = folder / SENTENCE_BOUNDARIES
    if not path.is_file():
        return None
    try:
        boundaries = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PrunelabError(f"{path}: not readable JSON: {error}") from error
    if not isinstance(boundaries, dict) or set(boundaries) != {"bos", "eos"} \
            or not all(isinstance(token, str) for token in boundaries.values()):
        raise PrunelabError(f'{path}: must be {{"bos": token, "eos": token}} (two strings), got {boundaries!r}')
    return boundaries


def write_boundaries(folder: Path, boundaries: dict) -> None:
    (folder / SENTENCE_BOUNDARIES).write_text(json.dumps(boundaries, indent=1) + "\n")


def _tokenizer(folder: Path, gguf_file: str | None = None):
    transformers = _transformers()
    try:
        return transformers.AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
    except (OSError, ValueError, TypeError) as error:
        raise PrunelabError(f"{folder}: no usable tokenizer files (tokenizer.json or tokenizer_config.json with "
                            f"its vocabulary): {str(error).splitlines()[0]}") from error


def load_hf_model(path: str | Path) -> HFCausalLM:
    """A Hugging Face folder (a base, or a prunelab deliverable with its manifest) or a `.gguf` file."""
    path = Path(path)
    if not path.exists():
        raise PrunelabError(f"{path} does not exist")
    if path.suffix == ".gguf":
        return _load_gguf(path)
    if (path / MANIFEST).is_file():
        return load_hf_deliverable(path)
    if not (path / "config.json").is_file():
        raise PrunelabError(f"{path}: not a Hugging Face model folder (no config.json)")
    transformers = _transformers()
    config = _config(path)
    _check_architecture(config, path)
    tokenizer = _tokenizer(path)
    try:
        model, loading = transformers.AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32,
                                                                           output_loading_info=True)
    except (OSError, ValueError) as error:
        raise PrunelabError(f"{path}: the weights do not load: {str(error).splitlines()[0]}") from error
    except RuntimeError as error:  # matrices of other shapes than the config's (transformers' loading report)
        raise PrunelabError(f"{path}: the weights do not match the architecture config.json builds: "
                            f"{str(error).splitlines()[0]}{_export_hint(config)}") from error
    _check_weights_cover(path, config, loading)
    return adapter_for(model, tokenizer, str(path), read_boundaries(path))


def _check_weights_cover(path: Path, config, loading: dict) -> None:
    """Refuse a folder whose weights do not fill the architecture its config builds: transformers would
    initialise the missing matrices at random and drop the unexpected ones, and the scores would be noise."""
    missing, unexpected = loading["missing_keys"], loading["unexpected_keys"]  # other shapes raised already
    if not (missing or unexpected):
        return
    found = "; ".join(f"{len(names)} {what} (e.g. {sorted(names)[0]})"
                      for what, names in (("missing", missing), ("unexpected", unexpected)) if names)
    raise PrunelabError(f"{path}: the weights do not match the architecture config.json builds: {found}."
                        f"{_export_hint(config)}")


def _export_hint(config) -> str:
    return (" It is a prunelab export with per-layer shapes (modeling_prunelab.py): evaluate the deliverable it was "
            "exported from, or load it in transformers with trust_remote_code=True."
            if getattr(config, "prunelab_slots", None) else "")


def _config(folder: Path):
    transformers = _transformers()
    try:
        return transformers.AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError, KeyError) as error:
        raise PrunelabError(f"{folder}: config.json is not a model config transformers knows: "
                            f"{str(error).splitlines()[0]}") from error


def _check_architecture(config, source) -> None:
    """Refuse before loading any weights when the config names no causal LM of a supported layout."""
    transformers = _transformers()
    try:
        model = transformers.AutoModelForCausalLM.from_config(_tiny_copy(config))
    except ValueError as error:
        raise PrunelabError(f"{source}: architecture {', '.join(config.architectures or [config.model_type])} "
                            f"is not a causal LM transformers can build; supported: {SUPPORTED}") from error
    layout = next((layout for layout in LAYOUTS if layout.matches(model)), None)
    if layout is None:
        architectures = config.architectures or [type(model).__name__]
        raise PrunelabError(f"{source}: architecture {', '.join(architectures)} is not supported; supported: {SUPPORTED}")
    _check_parameters(layout(model, None), model, str(source))


def _tiny_copy(config):
    """The same architecture with one layer and a small vocabulary: built in milliseconds to inspect its modules.
    Its padding token is dropped: the real one (Phi-3's 32000) lies outside the small vocabulary."""

    tiny = copy.deepcopy(config)
    for key in ("num_hidden_layers", "n_layer"):
        if hasattr(tiny, key):
            setattr(tiny, key, 1)
    if hasattr(tiny, "vocab_size"):
        tiny.vocab_size = 16
        tiny.pad_token_id = None
    return tiny


def require_gguf(what: str) -> None:
    """transformers' GGUF reader needs gguf and accelerate (the `gguf` extra): one line naming the missing one."""
    for package in ("gguf", "accelerate"):
        try:
            __import__(package)
        except ImportError:
            raise PrunelabError(f"{what} needs the packages gguf and accelerate (pip install 'prunelab[gguf]'); "
                                f"{package} is not installed") from None


def _load_gguf(path: Path) -> HFCausalLM:
    require_gguf(f"{path}: loading a GGUF file")
    transformers = _transformers()
    tokenizer = _tokenizer(path.parent, gguf_file=path.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    return adapter_for(model, tokenizer, str(path))


def write_hf_folder(folder: Path, lm: HFCausalLM, config=None) -> None:
    """An ordinary Hugging Face folder of `lm` (its `config`, or the model's): config.json, model.safetensors,
    the tokenizer files and sentence_boundaries.json."""

    (config or lm.config).save_pretrained(folder)
    lm.tokenizer.hf.save_pretrained(folder)
    write_boundaries(folder, lm.tokenizer.boundaries)
    save_model(lm.model, str(folder / WEIGHTS), metadata={"format": "pt"})


# ---- deliverables ----

def save_hf_deliverable(lm: HFCausalLM, path: str | Path, info: dict | None = None) -> Path:
    """Write the deliverable folder atomically: a temporary folder beside it, renamed when complete."""

    path = Path(path)
    with atomic_folder(path) as staging:
        write_hf_folder(staging, lm)
        if lm.masks:
            save_file({name: mask.to(torch.uint8).contiguous() for name, mask in lm.masks.items()}, str(staging / MASKS))
        manifest = {"format": MANIFEST_FORMAT, "version": 1, "layout": lm.layout, "tied": lm.tied,
                    "slots": lm.slot_shapes(), "masks": sorted(lm.masks), "params": lm.param_counts(),
                    "info": json.loads(json.dumps(info or {}, default=float))}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def load_hf_deliverable(folder: str | Path) -> HFCausalLM:
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise PrunelabError(f"{folder / MANIFEST}: not readable JSON: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise PrunelabError(f"{folder / MANIFEST}: not a prunelab deliverable manifest")
    transformers = _transformers()
    config = _config(folder)
    tokenizer = _tokenizer(folder)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    lm = adapter_for(model, tokenizer, str(folder), read_boundaries(folder))
    if manifest.get("layout") != lm.layout:
        raise PrunelabError(f"{folder}: the manifest says layout {manifest.get('layout')!r}, the config builds {lm.layout!r}")
    try:
        lm.apply_slot_shapes(manifest["slots"])
        missing, unexpected = load_model(lm.model, str(folder / WEIGHTS), strict=True)
    except (ValueError, RuntimeError, KeyError, OSError) as error:
        raise PrunelabError(f"{folder}: the manifest does not match its weights: {str(error).splitlines()[0]}") from error
    if manifest["masks"]:
        masks = load_file(str(folder / MASKS))
        lm.masks.update({name: masks[name].bool() for name in manifest["masks"]})
    lm.info = manifest.get("info", {})
    lm.model.eval()
    return lm


def folder_payload(lm: HFCausalLM) -> dict:
    """The deliverable folder's files as bytes: plain data that Ray's object store carries to every node."""
    with tempfile.TemporaryDirectory() as folder:
        saved = save_hf_deliverable(lm, Path(folder) / "model")
        files = {p.name: p.read_bytes() for p in saved.iterdir() if p.is_file()}
    return {"kind": "hf", "files": files, "source": lm.source}


def hf_from_payload(payload: dict) -> HFCausalLM:
    with tempfile.TemporaryDirectory() as folder:
        for name, data in payload["files"].items():
            (Path(folder) / name).write_bytes(data)
        lm = load_hf_deliverable(folder)
    lm.source = payload.get("source", "")
    return lm
