"""Pruning methods: what is removed. Each method turns a model into a smaller one of a given size.

- `unstructured`: element-wise masks (kept through fine-tuning), stored sparsely;
- `structured`: whole attention heads and FFN neurons (and embedding columns) removed, smaller dense layers;
- `lowrank`: matrices replaced by two factors, ranks allocated globally by the criterion's scores.

A method instance lives for one pruning run: it may keep state across the stages of an incremental schedule
(masks; ranks only ever shrink, heads and neurons once removed stay removed)."""
from __future__ import annotations

import heapq
from collections.abc import Callable

import torch
import torch.nn as nn

from prunelab.lm.model import FactorizedTiedEmbedding, LMConfig, LowRankLinear, TransformerLM
from prunelab.prune.calibration import Calibration, prunable_matrices
from prunelab.prune.criteria import Criterion
from prunelab.prune.dense import densify, effective_embedding, effective_weight
from prunelab.prune.size import stored_params


class UnreachableSize(ValueError):
    pass


def _bisect(total_for: Callable[[float], int], budget: float, low: float = 0.0, high: float = 1.0) -> float:
    """The largest q in [low, high] with total_for(q) <= budget (total_for non-decreasing in q)."""
    if total_for(low) > budget:
        raise UnreachableSize("target size is below what this method can reach")
    for _ in range(60):
        mid = (low + high) / 2
        if total_for(mid) <= budget:
            low = mid
        else:
            high = mid
    return low


class Method:
    name = ""

    def __init__(self, base_params: int, prune_embedding: bool = True):
        self.base_params = base_params
        self.prune_embedding = prune_embedding

    def prune(self, model: TransformerLM, size: float, criterion: Criterion, calib: Calibration | None) -> TransformerLM:
        raise NotImplementedError

    def stored_params(self, model: TransformerLM) -> int:
        return stored_params(model)

    def after_step(self, model: TransformerLM) -> None:
        """Called after every fine-tuning optimizer step."""


class Unstructured(Method):
    name = "unstructured"

    def prune(self, model, size, criterion, calib):
        matrices = prunable_matrices(model, self.prune_embedding)
        prunable = sum(w.numel() for w in matrices.values())
        dense_total = model.param_counts()["params_total"] + sum(m.numel() - int(m.sum()) for m in model.masks.values())
        keep_total = size * self.base_params - (dense_total - prunable)
        if keep_total <= 0:
            raise UnreachableSize(f"size {size} needs fewer parameters than the unprunable ones")
        fraction = keep_total / prunable
        with torch.no_grad():
            for name, weight in matrices.items():
                scores = criterion(name, weight, calib).clone().float()
                if name in model.masks:
                    scores[~model.masks[name]] = -torch.inf
                keep = min(int(round(fraction * weight.numel())), weight.numel())
                mask = torch.zeros(weight.numel(), dtype=torch.bool)
                mask[scores.flatten().topk(keep).indices] = True
                model.masks[name] = mask.view_as(weight)
                weight.mul_(model.masks[name])
        return model

    def after_step(self, model):
        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name, mask in model.masks.items():
                parameters[name].mul_(mask)


class Structured(Method):
    """Removes attention heads and FFN neurons per layer, keeping the same fraction of each (at least one
    head and one neuron per layer), and, with the embedding, columns of the tied embedding matrix
    (stored as a (vocab x kept) table and a (kept x d_model) selection)."""

    name = "structured"

    def _scores(self, model, criterion, calib):
        config, hd = model.config, model.config.head_dim
        heads, neurons = [], []
        for layer, block in enumerate(model.blocks):
            prefix = f"blocks.{layer}"
            qkv = criterion(f"{prefix}.attn.qkv.weight", block.attn.qkv.weight, calib)
            proj = criterion(f"{prefix}.attn.proj.weight", block.attn.proj.weight, calib)
            n = config.heads(layer)
            per_head = [torch.cat([qkv[part * n * hd + h * hd: part * n * hd + (h + 1) * hd].flatten()
                                   for part in range(3)] + [proj[:, h * hd:(h + 1) * hd].flatten()]) for h in range(n)]
            heads.append(criterion.unit_score(torch.stack(per_head), dim=1))
            up = criterion(f"{prefix}.ff.up.weight", block.ff.up.weight, calib)
            down = criterion(f"{prefix}.ff.down.weight", block.ff.down.weight, calib)
            neurons.append(criterion.unit_score(torch.cat([up, down.t()], dim=1), dim=1))
        columns = None
        if self.prune_embedding:
            columns = criterion.unit_score(criterion("embed.weight", effective_embedding(model.embed), calib), dim=0)
        return heads, neurons, columns

    def prune(self, model, size, criterion, calib):
        heads, neurons, columns = self._scores(model, criterion, calib)
        config = model.config
        d, hd, vocab = config.d_model, config.head_dim, config.vocab_size
        alive_columns = (effective_embedding(model.embed).abs().sum(0) > 0) if columns is not None else None
        fixed = model.param_counts()["params_total"] - self._variable_params(model)
        budget = size * self.base_params - fixed

        def counts(q: float, head_q: float | None = None):
            hq = q if head_q is None else head_q
            kept_heads = [min(config.heads(l), max(1, round(hq * config.n_head))) for l in range(config.n_layer)]
            kept_ff = [min(config.ff(l), max(1, round(q * config.d_ff))) for l in range(config.n_layer)]
            kept_cols = None if columns is None else min(int(alive_columns.sum()), max(1, round(q * d)))
            return kept_heads, kept_ff, kept_cols

        def total(kept_heads, kept_ff, kept_cols):
            attn = sum(h * hd * (3 * d + 3) + h * hd * d for h in kept_heads)
            ff = sum(f * (2 * d + 1) for f in kept_ff)
            emb = d * vocab if kept_cols is None else kept_cols * (vocab + d)
            return attn + ff + emb

        def total_exact(q):  # fractional heads: continuous, to choose the head fraction
            attn = sum(min(config.heads(l), q * config.n_head) * hd * (4 * d + 3) for l in range(config.n_layer))
            ff = sum(min(config.ff(l), q * config.d_ff) * (2 * d + 1) for l in range(config.n_layer))
            emb = d * vocab if columns is None else min(float(alive_columns.sum()), q * d) * (vocab + d)
            return attn + ff + emb

        head_q = _bisect(total_exact, budget)
        q = _bisect(lambda q: total(*counts(q, head_q)), budget)
        kept_heads, kept_ff, kept_cols = counts(q, head_q)
        # the fine-grained units (FFN neurons) fill what the coarse ones (heads, embedding columns) left over
        neuron_cost, spare = 2 * d + 1, budget - total(kept_heads, kept_ff, kept_cols)
        while spare >= neuron_cost:
            open_layers = [l for l in range(config.n_layer) if kept_ff[l] < config.ff(l)]
            if not open_layers:
                break
            layer = min(open_layers, key=lambda l: kept_ff[l])
            kept_ff[layer] += 1
            spare -= neuron_cost
        return self._build(model, heads, neurons, columns, alive_columns, kept_heads, kept_ff, kept_cols)

    @staticmethod
    def _variable_params(model):
        total = 0
        for block in model.blocks:
            total += sum(p.numel() for m in (block.attn.qkv, block.attn.proj, block.ff.up) for p in m.parameters())
            total += block.ff.down.weight.numel()
        return total + sum(p.numel() for p in model.embed.parameters())

    def _build(self, model, head_scores, neuron_scores, column_scores, alive, kept_heads, kept_ff, kept_cols):
        config = model.config
        hd = config.head_dim
        ranks = dict(config.ranks)
        if kept_cols is not None:
            ranks["embed"] = kept_cols
        new_config = LMConfig(**{**config.to_dict(), "layer_heads": kept_heads, "layer_d_ff": kept_ff, "ranks": ranks})
        new = TransformerLM(new_config)
        state = {k: v for k, v in model.state_dict().items() if k.startswith(("pos.", "ln_out."))}
        for layer, block in enumerate(model.blocks):
            prefix, n = f"blocks.{layer}", config.heads(layer)
            top_heads = head_scores[layer].topk(kept_heads[layer]).indices.sort().values
            rows = torch.cat([torch.arange(part * n * hd + h * hd, part * n * hd + (h + 1) * hd)
                              for part in range(3) for h in top_heads.tolist()])
            cols = torch.cat([torch.arange(h * hd, (h + 1) * hd) for h in top_heads.tolist()])
            top_neurons = neuron_scores[layer].topk(kept_ff[layer]).indices.sort().values
            state.update({
                f"{prefix}.ln_attn.weight": block.ln_attn.weight, f"{prefix}.ln_attn.bias": block.ln_attn.bias,
                f"{prefix}.ln_ff.weight": block.ln_ff.weight, f"{prefix}.ln_ff.bias": block.ln_ff.bias,
                f"{prefix}.attn.qkv.weight": block.attn.qkv.weight[rows], f"{prefix}.attn.qkv.bias": block.attn.qkv.bias[rows],
                f"{prefix}.attn.proj.weight": block.attn.proj.weight[:, cols], f"{prefix}.attn.proj.bias": block.attn.proj.bias,
                f"{prefix}.ff.up.weight": block.ff.up.weight[top_neurons], f"{prefix}.ff.up.bias": block.ff.up.bias[top_neurons],
                f"{prefix}.ff.down.weight": block.ff.down.weight[:, top_neurons], f"{prefix}.ff.down.bias": block.ff.down.bias,
            })
        embedding = effective_embedding(model.embed)
        if kept_cols is None:
            state["embed.weight"] = embedding
        else:
            scores = column_scores.clone().float()
            scores[~alive] = -torch.inf
            keep = scores.topk(kept_cols).indices.sort().values
            state["embed.table"] = embedding[:, keep]
            state["embed.proj"] = torch.eye(config.d_model)[keep]
        new.load_state_dict({k: v.detach().clone() for k, v in state.items()})
        return new.train(model.training)


class LowRank(Method):
    """Each matrix W ~= U diag(S) Vh (criterion's factorisation) truncated to rank r and stored as two factors;
    a matrix whose factors would not be smaller stays dense. Ranks are allocated globally: directions are
    kept in order of their share of their matrix's energy (S_i^2 / sum S^2) until the size budget is spent.
    Ranks only shrink across stages: the incremental variant factorises once and then truncates."""

    name = "lowrank"

    def _targets(self, model):
        names = [f"blocks.{n}" for n, m in model.blocks.named_modules() if isinstance(m, (nn.Linear, LowRankLinear))
                 and not n.endswith((".first", ".second"))]
        return names + (["embed"] if self.prune_embedding else [])

    def prune(self, model, size, criterion, calib):
        modules = dict(model.named_modules())
        factors, caps = {}, {}
        for name in self._targets(model):
            if name == "embed":
                weight = effective_embedding(model.embed)
                caps[name] = model.embed.rank if isinstance(model.embed, FactorizedTiedEmbedding) else min(weight.shape)
            else:
                weight = effective_weight(modules[name])
                caps[name] = modules[name].rank if isinstance(modules[name], LowRankLinear) else min(weight.shape)
            key = "embed.weight" if name == "embed" else f"{name}.weight"
            u, s, vh = criterion.factorize(key, weight, calib)
            factors[name] = (u, s, vh, weight.shape)
        energy = {n: (f[1].double() ** 2 / (f[1].double() ** 2).sum().clamp_min(1e-30)) for n, f in factors.items()}
        compressed = sum(effective_cost(f[3], caps[n], caps[n] < min(f[3])) for n, f in factors.items())
        fixed = model.param_counts()["params_total"] - compressed
        budget = size * self.base_params - fixed

        ranks = allocate_ranks({n: (energy[n], factors[n][3], caps[n]) for n in factors}, budget,
                               slack=0.005 * self.base_params)
        return self._build(model, factors, ranks)

    def _build(self, model, factors, ranks):
        new_ranks = dict(model.config.ranks)
        for name, r in ranks.items():
            out_features, in_features = factors[name][3]
            if r * (out_features + in_features) < out_features * in_features:
                new_ranks[name] = r
            else:
                new_ranks.pop(name, None)
        new = TransformerLM(LMConfig(**{**model.config.to_dict(), "ranks": new_ranks}))
        state = densify(model).state_dict()
        for name, r in ranks.items():
            u, s, vh, shape = factors[name]
            key = "embed.weight" if name == "embed" else f"{name}.weight"
            if name in new_ranks:
                root = s[:r].sqrt()
                first, second = root[:, None] * vh[:r], u[:, :r] * root[None, :]
                del state[key]
                if name == "embed":
                    state["embed.table"], state["embed.proj"] = second, first
                else:
                    state[f"{name}.first.weight"], state[f"{name}.second.weight"] = first, second
                    if f"{name}.bias" in state:
                        state[f"{name}.second.bias"] = state.pop(f"{name}.bias")
            elif r < min(shape):  # too high a rank to store as factors: the truncated product, dense
                state[key] = (u[:, :r] * s[:r][None, :]) @ vh[:r]
        new.load_state_dict({k: v.detach().clone().contiguous() for k, v in state.items()})
        return new.train(model.training)


def allocate_ranks(matrices: dict[str, tuple[torch.Tensor, tuple[int, int], int]], budget: float,
                   slack: float) -> dict[str, int]:
    """Ranks that fit `budget` stored weights, dropping the least important directions first.

    `matrices` maps a name to (energy share of each direction, largest first; matrix shape; current rank).
    A removal that would land more than `slack` below the budget is skipped while other (smaller) removals
    can still close the gap, so coarse matrices (the embedding) do not overshoot. Matrices that end up no
    smaller as factors than dense keep all their directions (dense storage costs the same)."""
    ranks = {n: cap for n, (_, _, cap) in matrices.items()}
    cost = {n: effective_cost(shape, ranks[n], True) for n, (_, shape, _) in matrices.items()}
    total = sum(cost.values())
    for strict in (True, False):
        queue = [(float(e[ranks[n] - 1]), n) for n, (e, _, _) in matrices.items() if ranks[n] > 0]
        heapq.heapify(queue)
        while queue and total > budget:
            _, name = heapq.heappop(queue)
            energy, shape, _ = matrices[name]
            saving = cost[name] - effective_cost(shape, ranks[name] - 1, True)
            if strict and saving and total - saving < budget - slack:
                continue
            ranks[name] -= 1
            cost[name] -= saving
            total -= saving
            if ranks[name] > 0:
                heapq.heappush(queue, (float(energy[ranks[name] - 1]), name))
        if total <= budget:
            break
    if total > budget:
        raise UnreachableSize("target size is below what low-rank factors can reach")
    for name, (_, shape, cap) in matrices.items():
        if ranks[name] * sum(shape) >= shape[0] * shape[1]:
            ranks[name] = cap
    return ranks


def effective_cost(shape, rank: int, allow_factors: bool) -> int:
    """Stored weights of an (out x in) matrix at `rank`: two factors when smaller, else the dense matrix."""
    out_features, in_features = shape
    dense = out_features * in_features
    return min(rank * (out_features + in_features), dense) if allow_factors else dense


METHODS = {m.name: m for m in (Unstructured, Structured, LowRank)}


def make_method(name: str, base_params: int, prune_embedding: bool = True) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
    return METHODS[name](base_params, prune_embedding)
