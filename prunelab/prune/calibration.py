"""Calibration statistics for data-driven criteria, from a few batches of training text.

One pass collects, for every matrix pruning may touch (the adapter's slots, in [out, in] layout): the L2 norm of
each input feature over all calibration tokens (for `activation` criteria), a few of its token batches (where a
method measures a loss: structured budgets) and, only when asked
(`gradients=True`, the `taylor` criterion), the accumulated first-order Taylor importance |w * dL/dw| and the squared
gradients (Fisher diagonal). Without gradients the pass is forward-only and holds no per-weight statistics, so its
memory is the model's and one batch's activations.
Run it on a dense model (`ModelAdapter.densified`): statistics are keyed by the dense matrices' names."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from prunelab.data.text import Corpus
from prunelab.lm.adapter import ModelAdapter
from prunelab.lm.train import random_batch, summed_output_loss

LOSS_BATCHES = 4


@dataclass
class Calibration:
    taylor: dict[str, torch.Tensor]       # name -> sum over batches of |w * grad|
    fisher: dict[str, torch.Tensor]       # name -> sum over batches of grad ** 2
    input_norms: dict[str, torch.Tensor]  # name -> ||x_j|| over all calibration tokens, per input feature
    n_sequences: int
    batches: list = field(default_factory=list)  # up to LOSS_BATCHES (inputs, targets): where methods measure a loss


def calibrate(lm: ModelAdapter, corpus: Corpus, n_sequences: int = 256, batch_size: int = 8,
              seed: int = 1234, stream: torch.Tensor | None = None, gradients: bool = True) -> Calibration:
    """Collect statistics over `n_sequences` random context windows of the training text (`stream`: the
    corpus's token stream when the caller has it already)."""
    slots = [slot for slot in lm.all_slots() if not slot.factorized] if gradients else []
    squares: dict[str, torch.Tensor] = {}
    kept_batches = []
    hooks = []
    for slot in lm.block_slots():
        def record(_module, inputs, _output, key=slot.param_name):
            x = inputs[0].detach().float()
            total = x.pow(2).reshape(-1, x.shape[-1]).sum(0)
            squares[key] = squares.get(key, 0) + total
        hooks.append(slot.module.register_forward_hook(record))
    device = lm.device
    taylor = {slot.param_name: torch.zeros(slot.shape, device=device) for slot in slots}
    fisher = {slot.param_name: torch.zeros(slot.shape, device=device) for slot in slots}
    embedding = lm.embedding_slot()
    stream = lm.tokenizer.stream(corpus.train) if stream is None else stream
    generator = torch.Generator().manual_seed(seed)
    was_training = lm.training
    lm.eval()
    done = 0
    try:
        while done < n_sequences:
            size = min(batch_size, n_sequences - done)
            inputs, targets = random_batch(stream, size, lm.context, generator)
            inputs, targets = inputs.to(device), targets.to(device)
            lm.model.zero_grad(set_to_none=True)
            with torch.set_grad_enabled(gradients):
                hidden = lm.hidden(inputs)
            if len(kept_batches) < LOSS_BATCHES:
                kept_batches.append((inputs.detach(), targets.detach()))
            if embedding is not None and not embedding.factorized:  # the output layer's input: final hidden states
                x = hidden.detach().float()
                key = embedding.param_name
                squares[key] = squares.get(key, 0) + x.pow(2).reshape(-1, x.shape[-1]).sum(0)
            if gradients:
                (summed_output_loss(lm.decode, hidden, targets) / targets.numel()).backward()
            for slot in slots:
                grad = slot.param.grad
                if grad is not None:
                    grad = slot.as_out_in(grad).float()
                    taylor[slot.param_name].add_(grad.mul(slot.view().detach().float()).abs_())
                    fisher[slot.param_name].addcmul_(grad, grad)
            done += size
    finally:
        for hook in hooks:
            hook.remove()
        lm.model.zero_grad(set_to_none=True)
        lm.train(was_training)
    return Calibration(taylor, fisher, {k: v.sqrt() for k, v in squares.items()}, done,
                       kept_batches)
