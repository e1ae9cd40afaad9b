"""Calibration statistics for data-driven criteria, from a few batches of training text.

One pass collects, for every prunable matrix: the accumulated first-order Taylor importance
|w * dL/dw| (summed over batches), the squared gradients (Fisher diagonal), and the L2 norm of each
input feature over all calibration tokens (for `activation` criteria)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from prunelab.data.text import Corpus
from prunelab.lm.model import TiedEmbedding, TransformerLM
from prunelab.lm.train import random_batch, summed_output_loss, token_stream
from prunelab.lm.vocab import Vocab


@dataclass
class Calibration:
    taylor: dict[str, torch.Tensor]       # name -> sum over batches of |w * grad|
    fisher: dict[str, torch.Tensor]       # name -> sum over batches of grad ** 2
    input_norms: dict[str, torch.Tensor]  # name -> ||x_j|| over all calibration tokens, per input feature
    n_sequences: int


def prunable_matrices(model: TransformerLM, include_embedding: bool = True) -> dict[str, torch.Tensor]:
    """Weight matrices pruning may touch, by name: every Linear weight in the blocks (and the tied
    embedding / output matrix). A low-rank factor pair counts as its two Linears."""
    matrices = {name: module.weight for name, module in _named_linears(model)}
    if include_embedding and isinstance(model.embed, TiedEmbedding):
        matrices["embed.weight"] = model.embed.weight
    return matrices


def calibrate(model: TransformerLM, vocab: Vocab, corpus: Corpus, n_sequences: int = 256, batch_size: int = 8,
              seed: int = 1234, stream: torch.Tensor | None = None) -> Calibration:
    """Collect statistics over `n_sequences` random context windows of the training text (`stream`: the
    corpus's token stream when the caller has it already)."""
    matrices = prunable_matrices(model)
    squares: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in _named_linears(model):
        def record(_module, inputs, _output, key=name):
            x = inputs[0].detach().float()
            total = x.pow(2).reshape(-1, x.shape[-1]).sum(0)
            squares[key] = squares.get(key, 0) + total
        hooks.append(module.register_forward_hook(record))
    taylor = {n: torch.zeros_like(w) for n, w in matrices.items()}
    fisher = {n: torch.zeros_like(w) for n, w in matrices.items()}
    stream = token_stream(corpus.train, vocab) if stream is None else stream
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    done = 0
    try:
        while done < n_sequences:
            size = min(batch_size, n_sequences - done)
            inputs, targets = random_batch(stream, size, model.config.context, generator)
            model.zero_grad(set_to_none=True)
            hidden = model.hidden(inputs)
            if isinstance(model.embed, TiedEmbedding):  # the output layer's input is the final hidden state
                x = hidden.detach().float()
                squares["embed.weight"] = squares.get("embed.weight", 0) + x.pow(2).reshape(-1, x.shape[-1]).sum(0)
            (summed_output_loss(model.embed, hidden, targets) / targets.numel()).backward()
            for name, weight in matrices.items():
                if weight.grad is not None:
                    taylor[name].add_(weight.grad.mul(weight.detach()).abs_())  # one temporary per matrix
                    fisher[name].addcmul_(weight.grad, weight.grad)
            done += size
    finally:
        for hook in hooks:
            hook.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return Calibration(taylor, fisher, {k: v.sqrt() for k, v in squares.items()}, done)


def _named_linears(model: TransformerLM):
    return [(f"blocks.{name}.weight", module) for name, module in model.blocks.named_modules()
            if isinstance(module, nn.Linear)]

