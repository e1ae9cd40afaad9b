"""What the adapters of Hugging Face causal LMs share (the layouts themselves are in `prunelab.lm.hf_families`).

An adapter recognises a layout from the model's modules, not its class name, and then checks the model's
parameter inventory: every parameter must be one the layout knows (a matrix it prunes, or a norm or bias whose
width pruning never changes). A layer holding anything else (a norm over the pruned query width, a gate, an
extra projection) is refused in one line naming it, never pruned around.

Slot names are module paths (`model.layers.0.self_attn.q_proj`, `lm_head`). The output matrix (`lm_head`)
is the embedding slot; when it is tied to the input embedding, factorising it factorises both (one shared
pair of factors), and masking it masks both. The residual width (hidden size) is never cut: structured
pruning of the embedding keeps a (vocab x kept) table and a (kept x hidden) selection, so every norm and
bias of the hidden width keeps its shape."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from prunelab.lm.adapter import ModelAdapter, Slot, UnitGroup, blank_module
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
    # The parameters the layout knows: (regular expression of a name, its width). Layer patterns are relative
    # to a layer (`model.layers.3.`), model patterns to the model. Widths: "any" (a matrix slot's weight or bias,
    # which pruning edits), "hidden" (a vector of the hidden width), "head_dim" (a per-head vector).
    layer_parameters: ClassVar[tuple[tuple[str, str], ...]] = ()
    model_parameters: ClassVar[tuple[tuple[str, str], ...]] = ()

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

    def tree_hidden(self, tokens: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # transformers passes a 4D mask to the attention as it is: SDPA takes it as bool (True: attend), the
        # eager attention adds it to the scores
        attention = mask[:, None]
        if self.config._attn_implementation != "sdpa":
            dtype = next(self.model.parameters()).dtype
            attention = torch.zeros(attention.shape, dtype=dtype, device=mask.device).masked_fill(
                ~attention, torch.finfo(dtype).min)
        return self.model.base_model(input_ids=tokens, position_ids=positions, attention_mask=attention,
                                     use_cache=False).last_hidden_state

    @property
    def tied(self) -> bool:
        head = self.model.lm_head
        embedding = self.model.get_input_embeddings()
        if isinstance(head, LowRankLinear):
            return isinstance(embedding, FactorizedEmbedding) and embedding.table is head.second.weight
        return head.weight is embedding.weight

    def layer_prefix(self, layer: int) -> str:
        raise NotImplementedError

    def head_dim(self, layer: int) -> int:
        raise NotImplementedError

    def unknown_parameters(self) -> list[str]:
        """Parameters of the model that the layout does not know, or of a width it does not expect:
        `name [shape]`, in model order."""
        layers = re.escape(self.layer_prefix(0).rpartition(".")[0])
        unknown = []
        for name, parameter in self.model.named_parameters(remove_duplicate=False):
            inside = re.fullmatch(rf"{layers}\.(\d+)\.(.+)", name)
            layer, local = (int(inside.group(1)), inside.group(2)) if inside else (None, name)
            patterns = self.layer_parameters if inside else self.model_parameters
            width = next((width for pattern, width in patterns if re.fullmatch(pattern, local)), None)
            if width is None or (width != "any" and tuple(parameter.shape) != self._width(width, layer)):
                unknown.append(f"{name} {list(parameter.shape)}")
        return unknown

    def _width(self, width: str, layer: int | None) -> tuple[int]:
        return (self.config.hidden_size,) if width == "hidden" else (self.head_dim(layer),)

    def embedding_slot(self) -> Slot:
        return Slot("lm_head", self.model, "lm_head")

    def layers(self) -> nn.ModuleList:
        raise NotImplementedError

    def decoder_layers(self) -> nn.ModuleList:
        return self.layers()

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

