"""The Hugging Face layouts prunelab prunes, each an adapter recognised from the model's modules.

- `LlamaLayout`: `layers[i].self_attn.{q,k,v,o}_proj`, `layers[i].mlp.{gate,up,down}_proj` (gate optional),
  tied or untied `lm_head`. Grouped-query attention: an attention unit is one key/value group with its query
  heads (q rows, k and v rows, o columns), so the grouping ratio and head_dim (RoPE) never change. The families
  in this layout differ only in what the layer may hold beside its matrices: Llama and Mistral nothing, Qwen2
  q/k/v biases (their entries go with their rows), Qwen3 per-head q/k RMS norms (one head_dim-wide weight
  shared by every head, so it keeps its shape whatever heads go).
- `Phi3Layout`: Phi-3 / Phi-4-mini: `self_attn.qkv_proj` (query rows, then key rows, then value rows) and
  `mlp.gate_up_proj` (gate rows, then up rows, split in halves): a unit takes its rows from each part, so
  the parts stay in order and of equal width. The stock attention reads its query head count from the config,
  so a pruned layer gets a copy of the config with its own counts (`remote_code.sync_layer`).
- `GPT2Layout`: `h[i].attn.c_attn` (q, k, v fused, `Conv1D` stored [in, out]), `h[i].attn.c_proj`,
  `h[i].mlp.c_fc`, `h[i].mlp.c_proj`, tied `lm_head`. An attention unit is one head.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from prunelab.lm.adapter import Slot, UnitGroup, contiguous_units
from prunelab.lm.hf_adapter import HFCausalLM
from prunelab.lm.remote_code import sync_layer

HIDDEN_NORMS = (r"(input_layernorm|post_attention_layernorm)\.weight", "hidden")
LLAMA_STYLE_MODEL = ((r"model\.embed_tokens\.weight", "any"), (r"model\.norm\.weight", "hidden"),
                     (r"lm_head\.(weight|bias)", "any"))


def _has_linears(module: nn.Module | None, names: tuple[str, ...]) -> bool:
    return all(isinstance(getattr(module, name, None), nn.Linear) for name in names)


def _decoder_layers(model: nn.Module, name: str) -> nn.ModuleList | None:
    layers = getattr(getattr(model, "base_model", None), name, None)
    if not isinstance(layers, nn.ModuleList) or not len(layers) or not hasattr(model, "lm_head"):
        return None
    return layers


@dataclass
class LlamaLayout(HFCausalLM):
    kind = "hf"
    layout = "llama"
    layer_parameters = (HIDDEN_NORMS,
                        (r"self_attn\.(q|k|v|o)_proj\.(weight|bias)", "any"),
                        (r"self_attn\.(q|k)_norm\.weight", "head_dim"),  # Qwen3
                        (r"mlp\.(gate|up|down)_proj\.(weight|bias)", "any"))
    model_parameters = LLAMA_STYLE_MODEL

    @staticmethod
    def matches(model: nn.Module) -> bool:
        layers = _decoder_layers(model, "layers")
        if layers is None:
            return False
        attention, mlp = getattr(layers[0], "self_attn", None), getattr(layers[0], "mlp", None)
        return (_has_linears(attention, ("q_proj", "k_proj", "v_proj", "o_proj")) and _has_linears(mlp, ("up_proj", "down_proj"))
                and hasattr(attention, "head_dim") and hasattr(attention, "num_key_value_groups"))

    def layers(self) -> nn.ModuleList:
        return self.model.base_model.layers

    def layer_prefix(self, layer: int) -> str:
        return f"{self.model.base_model_prefix}.layers.{layer}"

    def head_dim(self, layer: int) -> int:
        return self.layers()[layer].self_attn.head_dim

    def _slots(self, layer: int, part: str, names: tuple[str, ...]) -> list[Slot]:
        parent = getattr(self.layers()[layer], part)
        return [Slot(f"{self.layer_prefix(layer)}.{part}.{n}", parent, n) for n in names if hasattr(parent, n)]

    def _attention_slots(self, layer: int) -> list[Slot]:
        return self._slots(layer, "self_attn", ("q_proj", "k_proj", "v_proj", "o_proj"))

    def _mlp_slots(self, layer: int) -> list[Slot]:
        return self._slots(layer, "mlp", ("gate_proj", "up_proj", "down_proj"))

    def block_slots(self) -> list[Slot]:
        return [slot for layer in range(self.n_layers) for slot in self._attention_slots(layer) + self._mlp_slots(layer)]

    def unit_groups(self, layer: int) -> list[UnitGroup]:
        attention = self.layers()[layer].self_attn
        hd, ratio = attention.head_dim, attention.num_key_value_groups
        q, k, v, o = self._attention_slots(layer)
        groups = k.shape[0] // hd
        *inputs, down = self._mlp_slots(layer)
        width = down.shape[1]
        return [
            UnitGroup("attention", layer, self.config.num_key_value_heads,
                      [(q, 0, contiguous_units(groups, ratio * hd)), (k, 0, contiguous_units(groups, hd)),
                       (v, 0, contiguous_units(groups, hd)), (o, 1, contiguous_units(groups, ratio * hd))]),
            UnitGroup("mlp", layer, self.config.intermediate_size,
                      [(slot, 0, contiguous_units(width, 1)) for slot in inputs] + [(down, 1, contiguous_units(width, 1))]),
        ]

    def attention_width(self, layer: int) -> tuple[int, int]:
        hd = self.head_dim(layer)
        return self._attention_slots(layer)[3].shape[1] // hd, hd

    def _sync_layer(self, layer: int) -> None:
        sync_layer(self.layers()[layer])


def _parts(n_units: int, width: int, parts: list[tuple[int, int]]) -> torch.Tensor:
    """Units spread over the parts of a fused matrix: part (offset, width per unit); unit u's rows in every part."""
    return torch.cat([contiguous_units(n_units, part_width, offset) for offset, part_width in parts], dim=1)


@dataclass
class Phi3Layout(LlamaLayout):
    layout = "phi3"
    layer_parameters = (HIDDEN_NORMS,
                        (r"self_attn\.(qkv|o)_proj\.(weight|bias)", "any"),
                        (r"mlp\.(gate_up|down)_proj\.(weight|bias)", "any"))

    @staticmethod
    def matches(model: nn.Module) -> bool:
        layers = _decoder_layers(model, "layers")
        if layers is None:
            return False
        attention, mlp = getattr(layers[0], "self_attn", None), getattr(layers[0], "mlp", None)
        return (_has_linears(attention, ("qkv_proj", "o_proj")) and _has_linears(mlp, ("gate_up_proj", "down_proj"))
                and hasattr(attention, "head_dim") and hasattr(attention, "num_key_value_groups"))

    def _attention_slots(self, layer: int) -> list[Slot]:
        return self._slots(layer, "self_attn", ("qkv_proj", "o_proj"))

    def _mlp_slots(self, layer: int) -> list[Slot]:
        return self._slots(layer, "mlp", ("gate_up_proj", "down_proj"))

    def attention_width(self, layer: int) -> tuple[int, int]:
        hd = self.head_dim(layer)
        return self._attention_slots(layer)[1].shape[1] // hd, hd

    def unit_groups(self, layer: int) -> list[UnitGroup]:
        attention = self.layers()[layer].self_attn
        hd, ratio = attention.head_dim, attention.num_key_value_groups
        qkv, o = self._attention_slots(layer)
        gate_up, down = self._mlp_slots(layer)
        groups = o.shape[1] // (ratio * hd)
        q_rows, kv_rows = groups * ratio * hd, groups * hd
        width = down.shape[1]
        return [
            UnitGroup("attention", layer, self.config.num_key_value_heads,
                      [(qkv, 0, _parts(groups, hd, [(0, ratio * hd), (q_rows, hd), (q_rows + kv_rows, hd)])),
                       (o, 1, contiguous_units(groups, ratio * hd))]),
            UnitGroup("mlp", layer, self.config.intermediate_size,
                      [(gate_up, 0, _parts(width, 1, [(0, 1), (width, 1)])), (down, 1, contiguous_units(width, 1))]),
        ]


@dataclass
class GPT2Layout(HFCausalLM):
    kind = "hf"
    layout = "gpt2"
    layer_parameters = ((r"ln_(1|2)\.(weight|bias)", "hidden"), (r"attn\.c_(attn|proj)\.(weight|bias)", "any"),
                        (r"mlp\.c_(fc|proj)\.(weight|bias)", "any"))
    model_parameters = ((r"transformer\.(wte|wpe)\.weight", "any"), (r"transformer\.ln_f\.(weight|bias)", "hidden"),
                        (r"lm_head\.weight", "any"))

    @staticmethod
    def matches(model: nn.Module) -> bool:
        layers = _decoder_layers(model, "h")
        if layers is None:
            return False
        attention, mlp = getattr(layers[0], "attn", None), getattr(layers[0], "mlp", None)
        return (all(type(getattr(attention, n, None)).__name__ == "Conv1D" for n in ("c_attn", "c_proj"))
                and all(type(getattr(mlp, n, None)).__name__ == "Conv1D" for n in ("c_fc", "c_proj"))
                and hasattr(attention, "split_size") and not getattr(attention, "is_cross_attention", False))

    def layers(self) -> nn.ModuleList:
        return self.model.base_model.h

    def layer_prefix(self, layer: int) -> str:
        return f"{self.model.base_model_prefix}.h.{layer}"

    def head_dim(self, layer: int) -> int:
        return self.layers()[layer].attn.head_dim

    def _slots(self, layer: int) -> list[Slot]:
        block, prefix = self.layers()[layer], self.layer_prefix(layer)
        return [Slot(f"{prefix}.attn.c_attn", block.attn, "c_attn"), Slot(f"{prefix}.attn.c_proj", block.attn, "c_proj"),
                Slot(f"{prefix}.mlp.c_fc", block.mlp, "c_fc"), Slot(f"{prefix}.mlp.c_proj", block.mlp, "c_proj")]

    def block_slots(self) -> list[Slot]:
        return [slot for layer in range(self.n_layers) for slot in self._slots(layer)]

    def unit_groups(self, layer: int) -> list[UnitGroup]:
        hd = self.head_dim(layer)
        c_attn, c_proj, c_fc, mlp_proj = self._slots(layer)
        heads = c_attn.shape[0] // (3 * hd)
        width = c_fc.shape[0]
        return [
            UnitGroup("attention", layer, self.config.n_head,
                      [(c_attn, 0, _parts(heads, hd, [(part * heads * hd, hd) for part in range(3)])),
                       (c_proj, 1, contiguous_units(heads, hd))]),
            UnitGroup("mlp", layer, self.config.n_inner or 4 * self.config.n_embd,
                      [(c_fc, 0, contiguous_units(width, 1)), (mlp_proj, 1, contiguous_units(width, 1))]),
        ]

    def attention_width(self, layer: int) -> tuple[int, int]:
        hd = self.head_dim(layer)
        return self._slots(layer)[0].shape[0] // (3 * hd), hd

    def _sync_layer(self, layer: int) -> None:
        sync_layer(self.layers()[layer])


LAYOUTS = (LlamaLayout, Phi3Layout, GPT2Layout)
SUPPORTED = ("Llama layout (Llama, Mistral, Qwen2, Qwen3, SmolLM and others with separate q/k/v/o and gate/up/down "
             "projections), Phi-3 layout (fused qkv_proj and gate_up_proj), GPT-2")
