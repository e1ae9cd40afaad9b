"""Adapters of Hugging Face causal LMs: the Llama layout and GPT-2.

The layout is recognised from the model's modules, not its class name, so the models that share a layout
(Llama, SmolLM2, Mistral-style GQA models, Qwen2 with q/k/v biases) are one adapter:

- Llama layout: `layers[i].self_attn.{q,k,v,o}_proj` (grouped-query attention: `num_key_value_heads` key/value
  heads, each shared by a group of query heads), `layers[i].mlp.{gate,up,down}_proj` (gate optional), tied or
  untied `lm_head`. An attention unit is one key/value group with its query heads (q rows, k and v rows,
  o columns), so the grouping ratio and head_dim (RoPE) never change.
- GPT-2: `h[i].attn.c_attn` (q, k, v fused, `Conv1D` stored [in, out]), `h[i].attn.c_proj`, `h[i].mlp.c_fc`,
  `h[i].mlp.c_proj`, tied `lm_head`. An attention unit is one head.

Slot names are module paths (`model.layers.0.self_attn.q_proj`, `lm_head`). The output matrix (`lm_head`)
is the embedding slot; when it is tied to the input embedding, factorising it factorises both (one shared
pair of factors), and masking it masks both."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from prunelab.lm.adapter import ModelAdapter, Slot, UnitGroup, blank_module, contiguous_units, factors
from prunelab.lm.model import LowRankLinear

HF_CONTEXT = 128  # tokens per scoring window and per training window (N-best sentences are far shorter)


class FactorizedEmbedding(nn.Module):
    """Input embedding `table[ids] @ proj` sharing its factors with a tied, factorised output layer."""

    def __init__(self, table: nn.Parameter, proj: nn.Parameter):
        super().__init__()
        self.table, self.proj = table, proj

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.table) @ self.proj


@dataclass
class HFCausalLM(ModelAdapter):
    """What the Hugging Face layouts share: forward, the output matrix and its tying, sizes, saving."""

    layout = ""
    suffix = ""  # a deliverable is a folder

    @property
    def config(self):
        return self.model.config

    @property
    def context(self) -> int:
        positions = getattr(self.config, "max_position_embeddings", None) or getattr(self.config, "n_positions", HF_CONTEXT)
        return min(positions, HF_CONTEXT)

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.base_model(input_ids=tokens, use_cache=False).last_hidden_state

    def decode(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(hidden)

    @property
    def tied(self) -> bool:
        head = self.model.lm_head
        embedding = self.model.get_input_embeddings()
        if isinstance(head, LowRankLinear):
            return isinstance(embedding, FactorizedEmbedding) and embedding.table is head.second.weight
        return head.weight is embedding.weight

    def embedding_slot(self) -> Slot:
        return Slot("lm_head", self.model, "lm_head")

    def layers(self) -> nn.ModuleList:
        raise NotImplementedError

    @property
    def n_layers(self) -> int:
        return len(self.layers())

    # ---- the output matrix, tied or not ----
    def factorize(self, slot: Slot, first: torch.Tensor, second: torch.Tensor) -> None:
        tied = slot.name == "lm_head" and self.tied
        super().factorize(slot, first, second)
        if tied:
            head = self.model.lm_head
            self.model.set_input_embeddings(FactorizedEmbedding(head.second.weight, head.first.weight))

    def set_dense(self, slot: Slot, weight: torch.Tensor) -> None:
        tied = slot.name == "lm_head" and self.tied
        if not tied:
            super().set_dense(slot, weight)
            return
        embedding = nn.Embedding(*weight.shape, dtype=weight.dtype, device=weight.device)
        embedding.weight.data = weight.detach().contiguous().clone()
        head = nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=weight.dtype, device=weight.device)
        head.weight = embedding.weight
        self.model.set_input_embeddings(embedding)
        self.model.lm_head = head

    # ---- sizes ----
    def embedding_param_names(self) -> set[str]:
        embedding_modules = {id(self.model.get_input_embeddings()), id(self.model.lm_head)}
        positions = getattr(self.model.base_model, "wpe", None)
        if positions is not None:
            embedding_modules.add(id(positions))
        names = set()
        for module_name, module in self.model.named_modules():
            if id(module) in embedding_modules:
                names |= {f"{module_name}.{n}" if module_name else n for n, _ in module.named_parameters()}
        return names

    def output_macs(self) -> float:
        slot = self.embedding_slot()
        out_features, in_features = slot.shape
        if slot.factorized:
            extra = in_features * slot.rank if self.tied else 0  # the input side's projection
            return slot.rank * (out_features + in_features) + extra
        return out_features * in_features

    # ---- shapes, for saving and loading pruned layouts ----
    def slot_shapes(self) -> dict[str, dict]:
        return {slot.name: {"shape": list(slot.shape), "rank": slot.rank} for slot in self.all_slots()}

    def apply_slot_shapes(self, shapes: dict[str, dict]) -> None:
        """Give the modules the recorded [out, in] shapes and ranks (uninitialised; weights load afterwards)."""
        slots = {slot.name: slot for slot in self.all_slots()}
        unknown = set(shapes) - set(slots)
        if unknown:
            raise ValueError(f"the manifest names matrices this model does not have: {sorted(unknown)[:3]}")
        for name, entry in shapes.items():
            slot = slots[name]
            (out_features, in_features), rank = entry["shape"], entry["rank"]
            if [*slot.shape] == [out_features, in_features] and slot.rank == rank:
                continue
            if name == "lm_head":
                if rank is not None:
                    self.factorize(slot, torch.empty(rank, in_features), torch.empty(out_features, rank))
                continue
            setattr(slot.parent, slot.attr, blank_module(slot, out_features, in_features, rank))
        for layer in range(self.n_layers):
            self._sync_layer(layer)

    def _units_changed(self, group: UnitGroup, kept: int) -> None:
        self._sync_layer(group.layer)

    def _sync_layer(self, layer: int) -> None:
        """Layout bookkeeping after a layer's matrices changed shape."""

    def save(self, path, info: dict | None = None):
        from prunelab.lm.hf_load import save_hf_deliverable

        return save_hf_deliverable(self, path, info)

    def payload(self) -> dict:
        from prunelab.lm.hf_load import folder_payload

        return folder_payload(self)


def _out_features(module: nn.Module) -> int:
    pair = factors(module)
    if pair is not None:
        return pair[1].shape[0]
    if type(module).__name__ == "Conv1D":
        return module.weight.shape[1]
    return module.weight.shape[0]


@dataclass
class LlamaLayout(HFCausalLM):
    kind = "hf"
    layout = "llama"

    @staticmethod
    def matches(model: nn.Module) -> bool:
        layers = getattr(getattr(model, "base_model", None), "layers", None)
        if not isinstance(layers, nn.ModuleList) or not len(layers) or not hasattr(model, "lm_head"):
            return False
        attention, mlp = getattr(layers[0], "self_attn", None), getattr(layers[0], "mlp", None)
        return (all(isinstance(getattr(attention, n, None), nn.Linear) for n in ("q_proj", "k_proj", "v_proj", "o_proj"))
                and all(isinstance(getattr(mlp, n, None), nn.Linear) for n in ("up_proj", "down_proj"))
                and hasattr(attention, "head_dim") and hasattr(attention, "num_key_value_groups"))

    def layers(self) -> nn.ModuleList:
        return self.model.base_model.layers

    def _prefix(self, layer: int) -> str:
        return f"{self.model.base_model_prefix}.layers.{layer}"

    def _attention_slots(self, layer: int) -> list[Slot]:
        prefix, attention = self._prefix(layer), self.layers()[layer].self_attn
        return [Slot(f"{prefix}.self_attn.{n}", attention, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")]

    def _mlp_slots(self, layer: int) -> list[Slot]:
        prefix, mlp = self._prefix(layer), self.layers()[layer].mlp
        names = [n for n in ("gate_proj", "up_proj", "down_proj") if hasattr(mlp, n)]
        return [Slot(f"{prefix}.mlp.{n}", mlp, n) for n in names]

    def block_slots(self) -> list[Slot]:
        return [slot for layer in range(self.n_layers) for slot in self._attention_slots(layer) + self._mlp_slots(layer)]

    def unit_groups(self, layer: int) -> list[UnitGroup]:
        attention = self.layers()[layer].self_attn
        hd, ratio = attention.head_dim, attention.num_key_value_groups
        q, k, v, o = self._attention_slots(layer)
        groups = _out_features(k.module) // hd
        *inputs, down = self._mlp_slots(layer)
        width = _out_features(inputs[0].module)
        return [
            UnitGroup("attention", layer, self.config.num_key_value_heads,
                      [(q, 0, contiguous_units(groups, ratio * hd)), (k, 0, contiguous_units(groups, hd)),
                       (v, 0, contiguous_units(groups, hd)), (o, 1, contiguous_units(groups, ratio * hd))]),
            UnitGroup("mlp", layer, self.config.intermediate_size,
                      [(slot, 0, contiguous_units(width, 1)) for slot in inputs] + [(down, 1, contiguous_units(width, 1))]),
        ]

    def attention_width(self, layer: int) -> tuple[int, int]:
        attention = self.layers()[layer].self_attn
        return _out_features(attention.q_proj) // attention.head_dim, attention.head_dim


@dataclass
class GPT2Layout(HFCausalLM):
    kind = "hf"
    layout = "gpt2"

    @staticmethod
    def matches(model: nn.Module) -> bool:
        layers = getattr(getattr(model, "base_model", None), "h", None)
        if not isinstance(layers, nn.ModuleList) or not len(layers) or not hasattr(model, "lm_head"):
            return False
        attention, mlp = getattr(layers[0], "attn", None), getattr(layers[0], "mlp", None)
        return (all(type(getattr(attention, n, None)).__name__ == "Conv1D" for n in ("c_attn", "c_proj"))
                and all(type(getattr(mlp, n, None)).__name__ == "Conv1D" for n in ("c_fc", "c_proj"))
                and hasattr(attention, "split_size") and not getattr(attention, "is_cross_attention", False))

    def layers(self) -> nn.ModuleList:
        return self.model.base_model.h

    def _prefix(self, layer: int) -> str:
        return f"{self.model.base_model_prefix}.h.{layer}"

    def block_slots(self) -> list[Slot]:
        slots = []
        for layer, block in enumerate(self.layers()):
            prefix = self._prefix(layer)
            slots += [Slot(f"{prefix}.attn.c_attn", block.attn, "c_attn"), Slot(f"{prefix}.attn.c_proj", block.attn, "c_proj"),
                      Slot(f"{prefix}.mlp.c_fc", block.mlp, "c_fc"), Slot(f"{prefix}.mlp.c_proj", block.mlp, "c_proj")]
        return slots

    def unit_groups(self, layer: int) -> list[UnitGroup]:
        block, prefix = self.layers()[layer], self._prefix(layer)
        hd = block.attn.head_dim
        heads = _out_features(block.attn.c_attn) // (3 * hd)
        qkv_rows = torch.cat([contiguous_units(heads, hd, part * heads * hd) for part in range(3)], dim=1)
        width = _out_features(block.mlp.c_fc)
        return [
            UnitGroup("attention", layer, self.config.n_head,
                      [(Slot(f"{prefix}.attn.c_attn", block.attn, "c_attn"), 0, qkv_rows),
                       (Slot(f"{prefix}.attn.c_proj", block.attn, "c_proj"), 1, contiguous_units(heads, hd))]),
            UnitGroup("mlp", layer, self.config.n_inner or 4 * self.config.n_embd,
                      [(Slot(f"{prefix}.mlp.c_fc", block.mlp, "c_fc"), 0, contiguous_units(width, 1)),
                       (Slot(f"{prefix}.mlp.c_proj", block.mlp, "c_proj"), 1, contiguous_units(width, 1))]),
        ]

    def attention_width(self, layer: int) -> tuple[int, int]:
        attention = self.layers()[layer].attn
        return _out_features(attention.c_attn) // (3 * attention.head_dim), attention.head_dim

    def _sync_layer(self, layer: int) -> None:
        attention = self.layers()[layer].attn
        heads, _ = self.attention_width(layer)
        attention.num_heads, attention.split_size = heads, heads * attention.head_dim


LAYOUTS = (LlamaLayout, GPT2Layout)
SUPPORTED = "Llama layout (LlamaForCausalLM and models sharing it: GQA, q/k/v biases, tied or untied head), GPT-2"
