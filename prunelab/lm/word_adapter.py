"""The adapter of the built-in word LM (`TransformerLM` + its word vocabulary).

Slots are named by module path: `blocks.{l}.attn.qkv` (packed q, k, v rows), `blocks.{l}.attn.proj`,
`blocks.{l}.ff.up`, `blocks.{l}.ff.down`, and `embed` (the tied embedding / output matrix). An attention unit
is one head: its q, k and v rows of `qkv` and its columns of `proj`; an MLP unit is one neuron. The model's
config is rebuilt from its modules when it is saved, so a pruned model is an ordinary checkpoint."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from prunelab.lm.adapter import ModelAdapter, Slot, UnitGroup, contiguous_units
from prunelab.lm.model import FactorizedTiedEmbedding, LMConfig, TiedEmbedding, TransformerLM
from prunelab.lm.tokenizer import WordTokenizer


@dataclass
class WordLM(ModelAdapter):
    kind = "word"
    suffix = ".pt"  # a deliverable is one checkpoint file

    def __post_init__(self):
        self.model.masks = self.masks  # one dict: the checkpoint format stores the masks on the model

    @classmethod
    def of(cls, model: TransformerLM, vocab) -> WordLM:
        return cls(model, WordTokenizer(vocab), model.masks)

    @property
    def vocab(self):
        return self.tokenizer.vocab

    # ---- forward ----
    @property
    def context(self) -> int:
        return self.model.config.context

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.hidden(tokens)

    def tree_hidden(self, tokens: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.hidden(tokens, positions, mask)

    def decode(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.embed.decode(hidden)

    # ---- structure ----
    @property
    def n_layers(self) -> int:
        return self.model.config.n_layer

    def decoder_layers(self):
        return self.model.blocks

    def block_slots(self) -> list[Slot]:
        slots = []
        for layer, block in enumerate(self.model.blocks):
            prefix = f"blocks.{layer}"
            slots += [Slot(f"{prefix}.attn.qkv", block.attn, "qkv"), Slot(f"{prefix}.attn.proj", block.attn, "proj"),
                      Slot(f"{prefix}.ff.up", block.ff, "up"), Slot(f"{prefix}.ff.down", block.ff, "down")]
        return slots

    def embedding_slot(self) -> Slot:
        return Slot("embed", self.model, "embed")

    def unit_groups(self, layer: int) -> list[UnitGroup]:
        config, block = self.model.config, self.model.blocks[layer]
        prefix, heads, hd = f"blocks.{layer}", block.attn.n_head, config.head_dim
        # head h's rows of the packed qkv: its q rows, then its k rows, then its v rows
        qkv_rows = torch.cat([contiguous_units(heads, hd, part * heads * hd) for part in range(3)], dim=1)
        neurons = block.ff.down.in_features
        return [
            UnitGroup("attention", layer, config.n_head,
                      [(Slot(f"{prefix}.attn.qkv", block.attn, "qkv"), 0, qkv_rows),
                       (Slot(f"{prefix}.attn.proj", block.attn, "proj"), 1, contiguous_units(heads, hd))]),
            UnitGroup("mlp", layer, config.d_ff,
                      [(Slot(f"{prefix}.ff.up", block.ff, "up"), 0, contiguous_units(neurons, 1)),
                       (Slot(f"{prefix}.ff.down", block.ff, "down"), 1, contiguous_units(neurons, 1))]),
        ]

    def attention_width(self, layer: int) -> tuple[int, int]:
        return self.model.blocks[layer].attn.n_head, self.model.config.head_dim

    def _units_changed(self, group: UnitGroup, kept: int) -> None:
        if group.kind == "attention":
            self.model.blocks[group.layer].attn.n_head = kept

    # ---- edits of the tied embedding ----
    def factorize(self, slot: Slot, first: torch.Tensor, second: torch.Tensor) -> None:
        if slot.name != "embed":
            super().factorize(slot, first, second)
        else:
            vocab_size, d_model = second.shape[0], first.shape[1]
            embed = FactorizedTiedEmbedding(vocab_size, d_model, first.shape[0])
            embed.table.data, embed.proj.data = second.detach().contiguous().clone(), first.detach().contiguous().clone()
            self.model.embed = embed
            self.masks.pop(slot.param_name, None)

    def set_dense(self, slot: Slot, weight: torch.Tensor) -> None:
        if slot.name != "embed":
            super().set_dense(slot, weight)
        else:
            embed = TiedEmbedding(*weight.shape)
            embed.weight.data = weight.detach().clone()
            self.model.embed = embed

    def current_config(self) -> LMConfig:
        """The config that describes the modules as they are now (heads, FFN widths, factorized matrices); edits
        change the modules only, and saving writes this config (the shapes are never kept twice)."""
        config = self.model.config
        heads = [block.attn.n_head for block in self.model.blocks]
        widths = [block.ff.down.in_features for block in self.model.blocks]
        ranks = {slot.name: slot.rank for slot in self.all_slots() if slot.factorized}
        return LMConfig(**{**config.to_dict(), "ranks": ranks,
                           "layer_heads": None if all(h == config.n_head for h in heads) else heads,
                           "layer_d_ff": None if all(w == config.d_ff for w in widths) else widths})

    # ---- sizes ----
    def embedding_param_names(self) -> set[str]:
        return {name for name, _ in self.model.named_parameters() if name.startswith(("embed.", "pos."))}

    def output_macs(self) -> float:
        config, slot = self.model.config, self.embedding_slot()
        if slot.factorized:
            return slot.rank * (config.vocab_size + 2 * config.d_model)  # decode and the encode projection
        return config.vocab_size * config.d_model


