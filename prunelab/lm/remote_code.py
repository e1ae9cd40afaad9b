"""Modeling code that an exported folder carries as `modeling_prunelab.py`, for
`AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)` with only torch and transformers.

This file imports nothing from prunelab: it is copied as is. The folder's config.json holds the stock
config of the base (one head count and FFN width) plus `prunelab_slots`: every matrix's [out, in] shape and
rank (a rank means two factors, `second @ first`). The model class builds the stock layout, then gives each
matrix its pruned shape before the weights load, the way models with per-layer shapes ship their code."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import GPT2LMHeadModel, LlamaForCausalLM
from transformers.pytorch_utils import Conv1D


class LowRankLinear(nn.Module):
    """`second(first(x))`: a matrix stored as two factors (rank x in, out x rank)."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=bias)
        self.in_features, self.out_features, self.rank = in_features, out_features, rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.first.weight), self.second.weight, self.second.bias)


class FactorizedEmbedding(nn.Module):
    """An input embedding stored as `table[ids] @ proj` (the factors of a tied, factorised output matrix)."""

    def __init__(self, vocab_size: int, hidden_size: int, rank: int):
        super().__init__()
        self.table = nn.Parameter(torch.empty(vocab_size, rank))
        self.proj = nn.Parameter(torch.empty(rank, hidden_size))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.table) @ self.proj


def _shaped(module: nn.Module, out_features: int, in_features: int, rank) -> nn.Module:
    has_bias = getattr(module, "bias", None) is not None
    if rank is not None:
        return LowRankLinear(in_features, out_features, rank, bias=has_bias)
    if isinstance(module, Conv1D):
        return Conv1D(out_features, in_features)
    return nn.Linear(in_features, out_features, bias=has_bias)


def apply_prunelab_slots(model: nn.Module, slots: dict, embedding_factorized: bool) -> None:
    for name, entry in slots.items():
        (out_features, in_features), rank = entry["shape"], entry["rank"]
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        module = getattr(parent, attr)
        setattr(parent, attr, _shaped(module, out_features, in_features, rank))
        if name == "lm_head" and rank is not None and embedding_factorized:
            model.set_input_embeddings(FactorizedEmbedding(out_features, in_features, rank))
    for block in getattr(model.base_model, "h", []):  # GPT-2 splits its fused q/k/v by width
        heads = block.attn.c_attn.nf // (3 * block.attn.head_dim)
        block.attn.num_heads, block.attn.split_size = heads, heads * block.attn.head_dim


class PrunelabLlamaForCausalLM(LlamaForCausalLM):
    def __init__(self, config):
        super().__init__(config)
        apply_prunelab_slots(self, config.prunelab_slots, config.prunelab_embedding_factorized)


class PrunelabGPT2LMHeadModel(GPT2LMHeadModel):
    def __init__(self, config):
        super().__init__(config)
        apply_prunelab_slots(self, config.prunelab_slots, config.prunelab_embedding_factorized)
