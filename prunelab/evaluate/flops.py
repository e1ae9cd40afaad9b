"""Multiply-accumulates per scored token: the arithmetic a model needs, hence the limit of its speed-up.

Counts every matrix product (Linear, factor pairs, the output layer, attention scores and mixing at an
average position of a sequence of `seq_len` tokens). Masked (unstructured) weights count as dense: dense
kernels multiply the zeros too, which is what the speed measurement runs."""
from __future__ import annotations

import torch.nn as nn

from prunelab.lm.model import FactorizedTiedEmbedding, TransformerLM


def macs_per_token(model: TransformerLM, seq_len: int = 12) -> float:
    config = model.config
    total = 0.0
    for module in model.blocks.modules():
        if isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
    attended = (seq_len + 1) / 2  # average number of earlier positions under a causal mask
    for layer in range(config.n_layer):
        total += 2 * attended * config.heads(layer) * config.head_dim  # q.k scores and the weighted sum of v
    embed = model.embed
    if isinstance(embed, FactorizedTiedEmbedding):
        total += embed.rank * (config.vocab_size + 2 * config.d_model)  # decode (and the encode projection)
    else:
        total += config.vocab_size * config.d_model
    return total


def flop_ratio(model: TransformerLM, base: TransformerLM, seq_len: int = 12) -> float:
    return macs_per_token(model, seq_len) / macs_per_token(base, seq_len)
