"""Batched log-probabilities of whole sentences under a language model (any model adapter, inference mode)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from prunelab.lm.adapter import ModelAdapter
from prunelab.lm.precision import output_logits, scoring_autocast

# Sentences per forward pass of the blocks, and scored tokens per call of the output layer. The two are
# separate because they want different sizes: the blocks run best on large batches (fewer, larger matrix
# products), the output layer on chunks whose (tokens x vocab) logits stay in cache. Measured here with the
# small base on 2 threads (median of 5, 200 test utterances): 16 sentences per pass for both (the former
# single setting) took 1.29 s, 128 sentences with 128-token output chunks 1.13 s; a 50% low-rank model went
# from 1.34x to 1.49x the base's speed and a 50% structured model from 1.61x to 1.68x. Chunks of 512 tokens
# lost (1.43 s).
SCORING_BATCH = 128
DECODE_CHUNK = 128


def _windows(length: int, context: int) -> list[tuple[int, int, int]]:
    """(start, end, first_scored) windows over targets 0..length-1 so each target sees <= context tokens."""
    if length <= context:
        return [(0, length, 0)]
    stride = context // 2
    windows, start = [(0, context, 0)], stride
    while start + context < length:
        windows.append((start, start + context, start + context - stride))
        start += stride
    windows.append((length - context, length, windows[-1][1]))
    return windows


@torch.inference_mode()
def sequence_logprobs(lm: ModelAdapter, sequences: list[list[int]], batch_size: int = SCORING_BATCH,
                      decode_chunk: int = DECODE_CHUNK, precision: str = "fp32") -> list[float]:
    """Sum of natural-log probabilities of each sequence's tokens after the first (`<s>` is the first).

    Sequences are sorted by length and padded per batch of `batch_size`; sequences longer than the context
    are scored in half-overlapping windows, each token conditioned on up to `context` previous tokens.
    The output layer runs on the scored positions only, `decode_chunk` at a time. `precision` is that of
    `prunelab.lm.precision.scoring_autocast` ('fp32', 'bf16', or 'auto').
    """
    with scoring_autocast(precision, lm.device, lm.dtype):
        return _sequence_logprobs(lm, sequences, batch_size, decode_chunk)


def _sequence_logprobs(lm: ModelAdapter, sequences: list[list[int]], batch_size: int,
                       decode_chunk: int) -> list[float]:
    lm.eval()
    context = lm.context
    pieces: list[tuple[int, list[int], int]] = []  # (sequence index, tokens, number of leading targets to skip)
    for index, seq in enumerate(sequences):
        for start, end, first in _windows(len(seq) - 1, context):
            pieces.append((index, seq[start:end + 1], first - start))
    pieces.sort(key=lambda piece: len(piece[1]))
    totals = [0.0] * len(sequences)
    device = lm.device
    for batch_start in range(0, len(pieces), batch_size):
        batch = pieces[batch_start:batch_start + batch_size]
        width = max(len(tokens) for _, tokens, _ in batch) - 1
        inputs = torch.zeros(len(batch), width, dtype=torch.long)
        targets = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.bool)
        for row, (_, tokens, skip) in enumerate(batch):
            n = len(tokens) - 1
            inputs[row, :n] = torch.tensor(tokens[:-1])
            targets[row, :n] = torch.tensor(tokens[1:])
            mask[row, skip:n] = True
        hidden, scored = lm.hidden(inputs.to(device))[mask.to(device)], targets[mask].to(device)
        token_logprobs = torch.empty(len(scored))
        for start in range(0, len(scored), decode_chunk):
            # log p(target) from one fused log-softmax + gather kernel
            logits = output_logits(lm.decode, hidden[start:start + decode_chunk])
            token_logprobs[start:start + decode_chunk] = -F.cross_entropy(
                logits, scored[start:start + decode_chunk], reduction="none").cpu()
        logprobs = torch.zeros(len(batch), width)
        logprobs[mask] = token_logprobs
        sums = logprobs.sum(dim=1).tolist()
        for (index, _, _), value in zip(batch, sums):
            totals[index] += value
    return totals


def sentence_logprobs(lm: ModelAdapter, sentences: list[str], batch_size: int = SCORING_BATCH,
                      precision: str = "fp32") -> list[float]:
    """log P(sentence + end of sentence) in nats, minus the tokenizer's penalty (the word vocabulary's
    `oov_penalty` per out-of-vocabulary word; none for subword tokenizers)."""
    tokenizer = lm.tokenizer
    scores = sequence_logprobs(lm, [tokenizer.ids(s) for s in sentences], batch_size, precision=precision)
    return [score - tokenizer.penalty(s) for score, s in zip(scores, sentences)]


def perplexity(lm: ModelAdapter, sentences: list[str], batch_size: int = SCORING_BATCH,
               precision: str = "fp32") -> float:
    """exp of the mean negative log-probability per word (words + end of sentence), without penalties.

    For the word LM a word is a token (`<unk>` included): the closed-vocabulary perplexity that the n-gram
    baseline reports too. For a subword LM the sentence's log-probability is spread over its words, so the
    figures of word and subword LMs compare directly."""

    scores = sequence_logprobs(lm, [lm.tokenizer.ids(s) for s in sentences], batch_size, precision=precision)
    words = sum(len(s.split()) + 1 for s in sentences)
    return math.exp(-sum(scores) / words)
