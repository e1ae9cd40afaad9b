"""A small word-level causal Transformer LM (pre-LayerNorm, learned positions, tied embeddings).

The config also describes pruned shapes, so that a pruned model is an ordinary checkpoint: heads and FFN
width per layer (structured pruning) and low-rank factorisations of chosen matrices (`ranks`, by module name;
"embed" factorises the tied embedding / output matrix)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class LMConfig:
    vocab_size: int
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 256
    d_ff: int = 1024
    context: int = 64
    dropout: float = 0.0
    layer_heads: list[int] | None = None   # heads kept in each layer (default n_head everywhere)
    layer_d_ff: list[int] | None = None    # FFN width of each layer (default d_ff everywhere)
    ranks: dict[str, int] = field(default_factory=dict)  # module name -> rank of its two-factor replacement

    def __post_init__(self):
        if self.d_model % self.n_head:
            raise ValueError("d_model must be a multiple of n_head")
        for name, values in (("layer_heads", self.layer_heads), ("layer_d_ff", self.layer_d_ff)):
            if values is not None and len(values) != self.n_layer:
                raise ValueError(f"{name} needs one value per layer ({self.n_layer})")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def heads(self, layer: int) -> int:
        return self.n_head if self.layer_heads is None else self.layer_heads[layer]

    def ff(self, layer: int) -> int:
        return self.d_ff if self.layer_d_ff is None else self.layer_d_ff[layer]

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, dict] = {
    "tiny": dict(n_layer=2, n_head=2, d_model=128, d_ff=512, context=32, vocab=8000),
    "small": dict(n_layer=4, n_head=4, d_model=256, d_ff=1024, context=64, vocab=20000),
}


class LowRankLinear(nn.Module):
    """`second(first(x))`: a Linear of rank `rank`, (in + out) * rank weights instead of in * out."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=bias)
        self.in_features, self.out_features, self.rank = in_features, out_features, rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # functional calls: two small matmuls without two module dispatches (measurable at small batches)
        return F.linear(F.linear(x, self.first.weight), self.second.weight, self.second.bias)


def make_linear(config: LMConfig, name: str, in_features: int, out_features: int, bias: bool = True) -> nn.Module:
    rank = config.ranks.get(name)
    return nn.Linear(in_features, out_features, bias) if rank is None else LowRankLinear(in_features, out_features, rank, bias)


class TiedEmbedding(nn.Module):
    """One (vocab x d_model) matrix used to embed tokens and, transposed, to produce logits."""

    def __init__(self, vocab_size: int, d_model: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab_size, d_model))

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, self.weight)

    def decode(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.weight.t()


class FactorizedTiedEmbedding(nn.Module):
    """The tied matrix as `table @ proj` (vocab x rank, rank x d_model): embed = table[t] @ proj,
    logits = (h @ proj^T) @ table^T."""

    def __init__(self, vocab_size: int, d_model: int, rank: int):
        super().__init__()
        self.table = nn.Parameter(torch.empty(vocab_size, rank))
        self.proj = nn.Parameter(torch.empty(rank, d_model))
        self.rank = rank

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, self.table) @ self.proj

    def decode(self, hidden: torch.Tensor) -> torch.Tensor:
        return (hidden @ self.proj.t()) @ self.table.t()


class SelfAttention(nn.Module):
    def __init__(self, config: LMConfig, layer: int):
        super().__init__()
        self.n_head, self.head_dim = config.heads(layer), config.head_dim
        inner = self.n_head * self.head_dim
        self.qkv = make_linear(config, f"blocks.{layer}.attn.qkv", config.d_model, 3 * inner)
        self.proj = make_linear(config, f"blocks.{layer}.attn.proj", inner, config.d_model)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Causal attention, or with `mask` (batch, time, time; True: may attend) the positions it allows."""
        batch, time, _ = x.shape
        q, k, v = self.qkv(x).split(self.n_head * self.head_dim, dim=2)
        q, k, v = (t.view(batch, time, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask[:, None],
                                           is_causal=mask is None, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(batch, time, -1))


class FeedForward(nn.Module):
    def __init__(self, config: LMConfig, layer: int):
        super().__init__()
        self.up = make_linear(config, f"blocks.{layer}.ff.up", config.d_model, config.ff(layer))
        self.down = make_linear(config, f"blocks.{layer}.ff.down", config.ff(layer), config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, config: LMConfig, layer: int):
        super().__init__()
        self.ln_attn = nn.LayerNorm(config.d_model)
        self.attn = SelfAttention(config, layer)
        self.ln_ff = nn.LayerNorm(config.d_model)
        self.ff = FeedForward(config, layer)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln_attn(x), mask))
        return x + self.drop(self.ff(self.ln_ff(x)))


class TransformerLM(nn.Module):
    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = config
        rank = config.ranks.get("embed")
        self.embed = (TiedEmbedding(config.vocab_size, config.d_model) if rank is None
                      else FactorizedTiedEmbedding(config.vocab_size, config.d_model, rank))
        self.pos = nn.Embedding(config.context, config.d_model)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.ln_out = nn.LayerNorm(config.d_model)
        self.masks: dict[str, torch.Tensor] = {}  # parameter name -> kept entries (unstructured pruning)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, (TiedEmbedding, FactorizedTiedEmbedding)):
            for parameter in module.parameters():
                nn.init.normal_(parameter, std=0.02)

    def hidden(self, tokens: torch.Tensor, positions: torch.Tensor | None = None,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """Final hidden states (batch, time, d_model), the input of the output layer; time <= context. With
        `positions` (batch, time) and `mask` (batch, time, time), tokens sit at those positions and attend where
        the mask allows (a packed prefix tree, `prunelab.lm.prefix_score`); positions < context."""
        time = tokens.shape[1]
        if positions is None:
            if time > self.config.context:
                raise ValueError(f"sequence of {time} tokens exceeds the context of {self.config.context}")
            positions = torch.arange(time, device=tokens.device)
        x = self.embed.encode(tokens) + self.pos(positions)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_out(x)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (batch, time, vocab) for next-token prediction."""
        return self.embed.decode(self.hidden(tokens))

    def param_counts(self) -> dict[str, int]:
        """Stored parameters (a masked matrix stores only its kept entries); positions count as embedding,
        the final LayerNorm as blocks."""
        embedding = sum(p.numel() for p in self.embed.parameters()) + self.pos.weight.numel()
        blocks = sum(p.numel() for p in self.blocks.parameters()) + sum(p.numel() for p in self.ln_out.parameters())
        for name, mask in self.masks.items():
            removed = mask.numel() - int(mask.sum())
            if name.startswith("embed."):
                embedding -= removed
            else:
                blocks -= removed
        return {"params_total": embedding + blocks, "params_embedding": embedding, "params_blocks": blocks}
