"""Converting between a compressed model and its effective dense form (same layer shapes)."""
from __future__ import annotations

import torch
import torch.nn as nn

from prunelab.lm.model import FactorizedTiedEmbedding, LMConfig, LowRankLinear, TransformerLM


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The (out x in) matrix a Linear or LowRankLinear applies."""
    if isinstance(module, LowRankLinear):
        return module.second.weight.detach() @ module.first.weight.detach()
    return module.weight.detach()


def effective_embedding(embed: nn.Module) -> torch.Tensor:
    if isinstance(embed, FactorizedTiedEmbedding):
        return embed.table.detach() @ embed.proj.detach()
    return embed.weight.detach()


def densify(model: TransformerLM) -> TransformerLM:
    """A copy where every factor pair is one Linear and the embedding one matrix (heads/FFN widths kept)."""
    config = LMConfig(**{**model.config.to_dict(), "ranks": {}})
    dense = TransformerLM(config)
    state = {}
    for name, module in model.named_modules():
        if isinstance(module, LowRankLinear):
            state[f"{name}.weight"] = effective_weight(module)
            if module.second.bias is not None:
                state[f"{name}.bias"] = module.second.bias.detach()
    for name, value in model.state_dict().items():
        if ".first." in name or ".second." in name or name.startswith("embed."):
            continue
        state[name] = value
    state["embed.weight"] = effective_embedding(model.embed)
    dense.load_state_dict(state)
    return dense.train(model.training)
