"""Modeling code that an exported folder carries as `modeling_prunelab.py`, for
`AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)` with only torch and transformers.

This file imports nothing from prunelab: it is copied as is (prunelab imports `sync_layer` from it, so both
sides give a pruned layer the same head counts). The folder's config.json is the stock config of the base
(its own `model_type`, one head count and FFN width) plus `prunelab_slots`: every matrix's [out, in] shape
and rank (a rank means two factors, `second @ first`). `auto_map` names `Prunelab<StockClass>`, e.g.
`PrunelabQwen3ForCausalLM`: the stock class transformers maps that model type to, built as usual, then each
matrix given its pruned shape before the weights load (the way models with per-layer shapes ship their code).
A tied, factorised output matrix stays one pair of factors: the input embedding reads the output layer's."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers
from transformers.pytorch_utils import Conv1D

CLASS_PREFIX = "Prunelab"


class LowRankLinear(nn.Module):
    """`second(first(x))`: a matrix stored as two factors (rank x in, out x rank)."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=bias)
        self.in_features, self.out_features, self.rank = in_features, out_features, rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.first.weight), self.second.weight, self.second.bias)


class TiedFactorizedEmbedding(nn.Module):
    """The input embedding of a tied, factorised output layer: `second.weight[ids] @ first.weight`. It holds the
    output layer by reference, not as a submodule, so the factors are stored, loaded and counted once."""

    def __init__(self, head: LowRankLinear):
        super().__init__()
        object.__setattr__(self, "head", head)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.head.second.weight) @ self.head.first.weight


def in_features(module: nn.Module) -> int:
    return module.nx if isinstance(module, Conv1D) else module.in_features


def out_features(module: nn.Module) -> int:
    return module.nf if isinstance(module, Conv1D) else module.out_features


def sync_layer(layer: nn.Module) -> None:
    """Give a decoder layer's attention the head counts of its (pruned) matrices, where the stock code keeps
    them in attributes or reads them from the config instead of from the tensors' shapes."""
    attention = getattr(layer, "self_attn", None) or getattr(layer, "attn", None)
    if hasattr(attention, "c_attn"):  # GPT-2: q, k and v fused, split by width
        heads = out_features(attention.c_attn) // (3 * attention.head_dim)
        attention.num_heads, attention.split_size = heads, heads * attention.head_dim
    elif hasattr(attention, "qkv_proj"):  # Phi-3: query rows (as many as the config's heads), then keys, values
        heads = in_features(attention.o_proj) // attention.head_dim
        kv_heads = (out_features(attention.qkv_proj) - heads * attention.head_dim) // (2 * attention.head_dim)
        attention.num_key_value_heads = kv_heads
        attention.config = copy.copy(attention.config)  # this layer's own counts; the model's config is unchanged
        attention.config.num_attention_heads, attention.config.num_key_value_heads = heads, kv_heads


def _shaped(module: nn.Module, out_size: int, in_size: int, rank) -> nn.Module:
    has_bias = getattr(module, "bias", None) is not None
    if rank is not None:
        return LowRankLinear(in_size, out_size, rank, bias=has_bias)
    if isinstance(module, Conv1D):
        return Conv1D(out_size, in_size)
    return nn.Linear(in_size, out_size, bias=has_bias)


def apply_prunelab_slots(model: nn.Module, slots: dict, embedding_factorized: bool) -> None:
    for name, entry in slots.items():
        (out_size, in_size), rank = entry["shape"], entry["rank"]
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, _shaped(getattr(parent, attr), out_size, in_size, rank))
    if embedding_factorized:
        model.set_input_embeddings(TiedFactorizedEmbedding(model.lm_head))
    for layer in getattr(model.base_model, "layers", None) or getattr(model.base_model, "h", []):
        sync_layer(layer)


def _pruned_class(stock: type) -> type:
    def __init__(self, config):
        stock.__init__(self, config)
        apply_prunelab_slots(self, config.prunelab_slots, config.prunelab_embedding_factorized)

    return type(f"{CLASS_PREFIX}{stock.__name__}", (stock,), {"__init__": __init__, "__module__": __name__})


def __getattr__(name: str) -> type:
    """`Prunelab<StockClass>` (what config.json's auto_map names): the stock class with the pruned shapes."""
    stock = getattr(transformers, name[len(CLASS_PREFIX):], None) if name.startswith(CLASS_PREFIX) else None
    if not (isinstance(stock, type) and issubclass(stock, transformers.PreTrainedModel)):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = _pruned_class(stock)
    return globals()[name]
