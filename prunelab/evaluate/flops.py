"""The arithmetic a model needs per scored token, relative to another: the limit of its speed-up.

`ModelAdapter.macs_per_token` counts every matrix product (block matrices, factor pairs, the output layer,
attention scores and mixing at an average position). Masked (unstructured) weights count as dense: dense
kernels multiply the zeros too, which is what the speed measurement runs."""
from __future__ import annotations

from prunelab.lm.adapter import ModelAdapter


def flop_ratio(lm: ModelAdapter, base: ModelAdapter, seq_len: int = 12) -> float:
    return lm.macs_per_token(seq_len) / base.macs_per_token(seq_len)
