"""`prunelab export-model`: a deliverable as a folder that plain transformers loads.

- Where the pruned shapes fit the stock config (unstructured pruning; structured pruning of a Llama-layout
  model with the same key/value groups and FFN width in every layer; an FFN-only change in GPT-2), the folder
  is an ordinary `save_pretrained` folder with an adjusted config: no remote code.
- Otherwise (per-layer shapes, factorised matrices) the folder carries `modeling_prunelab.py` and an
  `auto_map` in config.json: `AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)`.

The remote code builds the stock class of the base's own model type (`Prunelab<StockClass>`, see
`prunelab.lm.remote_code`). Masked weights are exported as zeros in dense matrices (transformers has no sparse
storage). A tied, factorised output matrix is written once, as the output layer's two factors, which the
remote code's input embedding reads: the folder holds the parameters the deliverable holds."""
from __future__ import annotations

import inspect
from pathlib import Path

from safetensors.torch import save_file

from prunelab.atomic import atomic_folder
from prunelab.errors import PrunelabError
from prunelab.lm import remote_code
from prunelab.lm.adapter import ModelAdapter
from prunelab.lm.hf_load import write_boundaries

REMOTE_CODE = "modeling_prunelab.py"


def stock_config_changes(lm) -> dict | None:
    """The config keys that describe the pruned shapes with the stock modeling code, or None if it cannot."""
    if any(slot.factorized for slot in lm.all_slots()):
        return None
    attention = [lm.attention_width(layer)[0] for layer in range(lm.n_layers)]
    widths = [group.n_units for layer in range(lm.n_layers) for group in lm.unit_groups(layer) if group.kind == "mlp"]
    if len(set(attention)) > 1 or len(set(widths)) > 1:
        return None
    config = lm.config
    if lm.layout in ("llama", "phi3"):
        heads, head_dim = lm.attention_width(0)
        ratio = config.num_attention_heads // config.num_key_value_heads
        return {"num_attention_heads": heads, "num_key_value_heads": heads // ratio, "head_dim": head_dim,
                "intermediate_size": widths[0]}
    if lm.layout == "gpt2":
        if attention[0] != config.n_head:  # GPT-2 derives head_dim from the width: fewer heads need remote code
            return None
        return {"n_inner": widths[0]}
    return None


def export_model(lm: ModelAdapter, out: str | Path) -> dict:
    """Write the export folder atomically; returns what was written (`remote_code`: whether it needs it)."""
    if lm.kind != "hf":
        raise PrunelabError(f"{lm.source or 'this model'}: export to a transformers folder is for Hugging Face "
                            f"deliverables; a word-LM checkpoint loads with prunelab (`prunelab eval`)")


    with atomic_folder(out) as staging:
        exported = lm.clone()
        exported.apply_masks()
        config = exported.config.__class__.from_dict(exported.config.to_dict())
        changes = stock_config_changes(exported)
        if changes is not None:
            for key, value in changes.items():
                setattr(config, key, value)
            exported.model.config = config
            exported.model.save_pretrained(staging)
        else:

            tied_factors = exported.embedding_slot().factorized and exported.tied
            config.prunelab_slots = exported.slot_shapes()
            config.prunelab_embedding_factorized = tied_factors
            if exported.embedding_slot().factorized:
                config.tie_word_embeddings = False  # the remote code ties the factors itself
            remote_class = f"{remote_code.CLASS_PREFIX}{type(exported.model).__name__}"  # the stock class, pruned
            config.auto_map = {"AutoModelForCausalLM": f"{REMOTE_CODE[:-3]}.{remote_class}"}
            config.save_pretrained(staging)
            state = exported.model.state_dict()
            if tied_factors:  # stored once, as the output layer's factors
                embedding = {f"{name}." for name, module in exported.model.named_modules()
                             if module is exported.model.get_input_embeddings()}
                state = {name: tensor for name, tensor in state.items() if not any(map(name.startswith, embedding))}
            state = {name: tensor.detach().contiguous().clone() for name, tensor in state.items()}
            save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
            (staging / REMOTE_CODE).write_text(inspect.getsource(remote_code))
        exported.tokenizer.hf.save_pretrained(staging)
        write_boundaries(staging, exported.tokenizer.boundaries)  # prunelab reloads it scoring the same way
    return {"out": str(out), "remote_code": changes is None}
