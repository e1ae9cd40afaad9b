"""Low-rank adaptation (LoRA) of a Hugging Face model's block matrices: each `nn.Linear` (or GPT-2 `Conv1D`)
inside the layers gains a trainable update `scale * B @ A` beside its frozen weight; `merge_lora` adds the
update into the weight and puts the plain module back, so what is saved is an ordinary model.

The update is rounded to bfloat16 before it is merged, both after training and when a saved adapter is
applied (`apply_adapter`), so a model rebuilt from a shipped adapter equals the one `prunelab adapt` wrote."""
from __future__ import annotations

import math

import torch
from torch import nn

from prunelab.errors import PrunelabError
from prunelab.lm.adapter import _is_conv1d

ADAPTER_DTYPE = torch.bfloat16  # how an adapter's factors are stored and merged


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Module, rank: int, alpha: float):
        super().__init__()
        weight = base.weight
        out_features, in_features = (weight.shape[1], weight.shape[0]) if _is_conv1d(base) else weight.shape
        self.base = base
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, in_features, dtype=weight.dtype, device=weight.device))
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        for parameter in base.parameters():
            parameter.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale

    def delta(self) -> torch.Tensor:
        """The update as an [out, in] matrix, from the bfloat16-rounded factors."""
        a, b = (f.detach().to(ADAPTER_DTYPE).float() for f in (self.lora_a, self.lora_b))
        return (b @ a) * self.scale


def _block_matrices(model: nn.Module) -> list[tuple[str, nn.Module]]:
    layers = model.base_model.layers if hasattr(model.base_model, "layers") else model.base_model.h
    prefix = next(name for name, module in model.named_modules() if module is layers)
    return [(f"{prefix}.{name}", module) for name, module in layers.named_modules()
            if isinstance(module, nn.Linear) or _is_conv1d(module)]


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, module)


def add_lora(model: nn.Module, rank: int, alpha: float) -> list[str]:
    """Freeze the model and wrap every block matrix; returns the wrapped modules' names."""
    if rank < 1:
        raise PrunelabError(f"LoRA rank must be >= 1, got {rank}")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    names = []
    for name, module in _block_matrices(model):
        _set_module(model, name, LoRALinear(module, rank, alpha))
        names.append(name)
    if not names:
        raise PrunelabError("the model has no linear layers in its blocks for LoRA to adapt")
    return names


def lora_modules(model: nn.Module) -> dict[str, LoRALinear]:
    return {name: module for name, module in model.named_modules() if isinstance(module, LoRALinear)}


def _add_delta(base: nn.Module, delta: torch.Tensor) -> None:
    with torch.no_grad():
        base.weight += (delta.t() if _is_conv1d(base) else delta).to(base.weight.dtype)


def merge_lora(model: nn.Module) -> None:
    """Add each update into its weight and put the plain module back (every parameter trainable again)."""
    for name, module in lora_modules(model).items():
        _add_delta(module.base, module.delta())
        _set_module(model, name, module.base)
    for parameter in model.parameters():
        parameter.requires_grad_(True)


def adapter_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The factors as stored in an adapter file: `NAME.lora_a`, `NAME.lora_b` (bfloat16) and `NAME.scale`."""
    tensors = {}
    for name, module in lora_modules(model).items():
        tensors[f"{name}.lora_a"] = module.lora_a.detach().to(ADAPTER_DTYPE).contiguous()
        tensors[f"{name}.lora_b"] = module.lora_b.detach().to(ADAPTER_DTYPE).contiguous()
        tensors[f"{name}.scale"] = torch.tensor([module.scale])
    return tensors


def apply_adapter(model: nn.Module, tensors: dict[str, torch.Tensor]) -> int:
    """Merge a stored adapter into a plain model; returns the number of matrices it changed."""
    names = sorted({key.rsplit(".", 1)[0] for key in tensors})
    modules = dict(model.named_modules())
    for name in names:
        if name not in modules:
            raise PrunelabError(f"the adapter changes {name}, which this model does not have")
        a, b = tensors[f"{name}.lora_a"].float(), tensors[f"{name}.lora_b"].float()
        base = modules[name]
        expected = (base.weight.shape[1], base.weight.shape[0]) if _is_conv1d(base) else tuple(base.weight.shape)
        if (b.shape[0], a.shape[1]) != expected:
            raise PrunelabError(f"the adapter's update of {name} is {b.shape[0]}x{a.shape[1]}, the model's weight "
                                f"{expected[0]}x{expected[1]}")
        _add_delta(base, (b @ a) * float(tensors[f"{name}.scale"]))
    return len(names)
