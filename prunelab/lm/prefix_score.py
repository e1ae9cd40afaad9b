"""Prefix-shared scoring of N-best lists: each utterance's hypotheses as a token trie, every prefix computed once.

The hypotheses of one utterance share long prefixes (a trie of the shipped benchmarks' hypotheses holds 1.76x to
1.99x fewer words than the hypotheses). An utterance's trie is packed as one sequence of its inner nodes (the
nodes that have a child; a hypothesis's last token is only ever a target): node i sits at position = its depth and
attends to its ancestors and itself only (a tree attention mask), so its hidden state is exactly the one it has in
every hypothesis that passes through it. The output layer runs once per inner node, and its log-softmax gives
the log-probability of every child. A hypothesis's score is the sum along its path, as independent scoring
(`prunelab.lm.score.sequence_logprobs`) sums it; the two agree to float rounding (tested within 1e-4).

Tries are sorted by size and batched (length buckets: rows padded to the batch's largest, at most
`TOKEN_BUDGET` padded positions per batch). Hypotheses longer than the model's context are scored
independently (in windows)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from prunelab.lm.adapter import ModelAdapter
from prunelab.lm.precision import output_logits, scoring_autocast
from prunelab.lm.score import DECODE_CHUNK, sequence_logprobs

TOKEN_BUDGET = 2048  # padded positions per forward pass (the independent path's 128 sentences x ~16 tokens)


@dataclass
class Trie:
    """One utterance's token sequences. `inputs` are the inner nodes (parents before children, so a node's
    ancestors precede it); `edges` every (parent inner node, token) pair once; `ends[h]` the edge that ends
    sequence h, whose score is the sum of the edge log-probs on its path (`edge_parent_edge` links them)."""

    input_tokens: list[int] = field(default_factory=list)
    input_parent: list[int] = field(default_factory=list)   # inner node of the parent, -1 for a root
    input_depth: list[int] = field(default_factory=list)
    edge_source: list[int] = field(default_factory=list)    # inner node whose distribution scores the edge
    edge_token: list[int] = field(default_factory=list)
    edge_parent_edge: list[int] = field(default_factory=list)  # the edge before it on the path, -1 at the start
    ends: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, sequences: list[list[int]]) -> Trie:
        trie = cls()
        roots: dict[int, int] = {}                   # first token -> inner node
        inner: dict[tuple[int, int], int] = {}        # (edge) -> the inner node it leads to
        edges: dict[tuple[int, int], int] = {}        # (source inner node, token) -> edge
        for sequence in sequences:
            if len(sequence) < 2:  # nothing to score
                trie.ends.append(-1)
                continue
            if sequence[0] not in roots:
                roots[sequence[0]] = trie._add_input(sequence[0], -1, 0)
            node, edge = roots[sequence[0]], -1
            for depth, token in enumerate(sequence[1:], start=1):
                key = (node, token)
                if key not in edges:
                    edges[key] = len(trie.edge_token)
                    trie.edge_source.append(node)
                    trie.edge_token.append(token)
                    trie.edge_parent_edge.append(edge)
                edge = edges[key]
                if depth < len(sequence) - 1:  # the edge leads on: its node is an input
                    if edge not in inner:
                        inner[edge] = trie._add_input(token, node, depth)
                    node = inner[edge]
            trie.ends.append(edge)
        return trie

    def _add_input(self, token: int, parent: int, depth: int) -> int:
        self.input_tokens.append(token)
        self.input_parent.append(parent)
        self.input_depth.append(depth)
        return len(self.input_tokens) - 1

    def __len__(self) -> int:
        return len(self.input_tokens)


def tree_mask(tries: list[Trie], width: int) -> torch.Tensor:
    """(batch, width, width) bool: row i of a trie attends to its ancestors and itself; padding to itself only."""
    mask = np.zeros((len(tries), width, width), dtype=bool)
    mask[:, np.arange(width), np.arange(width)] = True
    for row, trie in enumerate(tries):
        rows = mask[row]
        for node, parent in enumerate(trie.input_parent):
            if parent >= 0:
                rows[node] |= rows[parent]
    return torch.from_numpy(mask)


def _batches(tries: list[Trie]) -> list[list[int]]:
    """Indices of tries (non-empty), by size, grouped so that rows x the largest row <= TOKEN_BUDGET."""
    order = sorted((i for i, trie in enumerate(tries) if len(trie)), key=lambda i: len(tries[i]))
    batches, current = [], []
    for index in order:
        if current and (len(current) + 1) * len(tries[index]) > TOKEN_BUDGET:
            batches.append(current)
            current = []
        current.append(index)
    return batches + ([current] if current else [])


@torch.inference_mode()
def _edge_logprobs(lm: ModelAdapter, tries: list[Trie], batch: list[int]) -> list[torch.Tensor]:
    """log p(edge token | its path) of every edge of each trie of the batch."""
    device = lm.device
    rows = [tries[i] for i in batch]
    width = max(len(trie) for trie in rows)
    tokens = torch.zeros(len(rows), width, dtype=torch.long)
    positions = torch.zeros(len(rows), width, dtype=torch.long)
    for row, trie in enumerate(rows):
        tokens[row, :len(trie)] = torch.tensor(trie.input_tokens)
        positions[row, :len(trie)] = torch.tensor(trie.input_depth)
    hidden = lm.tree_hidden(tokens.to(device), positions.to(device), tree_mask(rows, width).to(device))
    hidden = hidden.reshape(len(rows) * width, -1)
    sources = torch.cat([row * width + torch.tensor(trie.edge_source) for row, trie in enumerate(rows)])
    targets = torch.cat([torch.tensor(trie.edge_token) for trie in rows])
    decoded, inverse = torch.unique(sources, return_inverse=True)  # each inner node's distribution once
    logprobs = torch.empty(len(targets))
    for start in range(0, len(decoded), DECODE_CHUNK):
        chunk = decoded[start:start + DECODE_CHUNK]
        node_logprobs = F.log_softmax(output_logits(lm.decode, hidden[chunk.to(device)]), dim=-1).cpu()
        in_chunk = (inverse >= start) & (inverse < start + len(chunk))
        logprobs[in_chunk] = node_logprobs[inverse[in_chunk] - start, targets[in_chunk]]
    return list(logprobs.split([len(trie.edge_token) for trie in rows]))


def _path_sums(trie: Trie, edge_logprobs: torch.Tensor) -> list[float]:
    totals = edge_logprobs.double().tolist()
    for edge, before in enumerate(trie.edge_parent_edge):  # an edge's predecessor always comes first
        if before >= 0:
            totals[edge] += totals[before]
    return [totals[end] if end >= 0 else 0.0 for end in trie.ends]


def grouped_sequence_logprobs(lm: ModelAdapter, groups: list[list[list[int]]],
                              precision: str = "fp32") -> list[list[float]]:
    """`sequence_logprobs` of each group's sequences (one group per utterance), every shared prefix once, in
    `precision` ('fp32', 'bf16' or 'auto': `prunelab.lm.precision.scoring_autocast`)."""
    with scoring_autocast(precision, lm.device, lm.dtype):
        return _grouped_sequence_logprobs(lm, groups, precision)


def _grouped_sequence_logprobs(lm: ModelAdapter, groups: list[list[list[int]]], precision: str) -> list[list[float]]:
    lm.eval()
    fits = [[len(seq) - 1 <= lm.context for seq in group] for group in groups]
    tries = [Trie.of([seq for seq, ok in zip(group, ok_row) if ok]) for group, ok_row in zip(groups, fits)]
    shared: list[list[float]] = [[] for _ in groups]
    for batch in _batches(tries):
        for index, edge_logprobs in zip(batch, _edge_logprobs(lm, tries, batch)):
            shared[index] = _path_sums(tries[index], edge_logprobs)
    for index, trie in enumerate(tries):
        if not len(trie):  # sequences of one token, or none: nothing to score
            shared[index] = [0.0] * len(trie.ends)
    long_sequences = [seq for group, ok_row in zip(groups, fits) for seq, ok in zip(group, ok_row) if not ok]
    independent = iter(sequence_logprobs(lm, long_sequences, precision=precision) if long_sequences else [])
    result = []
    for index, ok_row in enumerate(fits):
        from_trie = iter(shared[index])
        result.append([next(from_trie) if ok else next(independent) for ok in ok_row])
    return result


def grouped_sentence_logprobs(lm: ModelAdapter, groups: list[list[str]], precision: str = "fp32") -> list[list[float]]:
    """`sentence_logprobs` of each utterance's hypotheses (tokenizer penalties included), prefixes shared."""
    tokenizer = lm.tokenizer
    scores = grouped_sequence_logprobs(lm, [[tokenizer.ids(text) for text in group] for group in groups], precision)
    return [[score - tokenizer.penalty(text) for score, text in zip(row, group)] for row, group in zip(scores, groups)]
