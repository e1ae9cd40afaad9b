"""Model adapters: what pruning, scoring and training need to know about a language model, and nothing more.

A `ModelAdapter` wraps one model (the built-in word LM, or a Hugging Face causal LM of a supported layout) and
its tokenizer. Criteria, methods and schedulers talk only to it:

- `Slot`: one weight matrix that pruning may edit, always seen as [out, in] (GPT-2's `Conv1D` stores [in, out]);
  its name is the module path, the key of its calibration statistics and masks.
- `UnitGroup`: the structured units of one layer (attention heads or key/value groups with their query heads,
  FFN neurons), each unit being index slices of rows or columns of several slots.
- edits: `factorize` a slot into two factors, `set_dense` a slot, `keep_units` of a group, masks on slots.
- forward: `hidden` (final hidden states) and `decode` (the output layer), `context` (longest input), and
  `tokenizer` (sentences to token ids, with the model's BOS / EOS and the out-of-vocabulary rule).

The adapter of each model family implements the layout-specific parts; the module surgery on `nn.Linear`,
`Conv1D` and `LowRankLinear` modules is shared here (the modules are replaced, the model class is kept).
"""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from prunelab.lm.model import FactorizedTiedEmbedding, LowRankLinear


def _is_conv1d(module: nn.Module) -> bool:
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")  # transformers.pytorch_utils.Conv1D


def factors(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(first [rank, in], second [out, rank]) of a factorized matrix, whose product second @ first it applies."""
    if isinstance(module, LowRankLinear):
        return module.first.weight, module.second.weight
    if isinstance(module, FactorizedTiedEmbedding):
        return module.proj, module.table
    return None


@dataclass
class Slot:
    """One weight matrix of a model: `getattr(parent, attr)` is the module (Linear, Conv1D, LowRankLinear or
    an embedding); `name` is its module path, `param_name` the key of its statistics and masks."""

    name: str
    parent: nn.Module
    attr: str

    @property
    def module(self) -> nn.Module:
        return getattr(self.parent, self.attr)

    @property
    def param_name(self) -> str:
        return f"{self.name}.weight"

    @property
    def transposed(self) -> bool:
        return _is_conv1d(self.module)

    @property
    def factorized(self) -> bool:
        return factors(self.module) is not None

    @property
    def rank(self) -> int | None:
        pair = factors(self.module)
        return None if pair is None else pair[0].shape[0]

    @property
    def param(self) -> nn.Parameter:
        """The stored matrix (unfactorized slots only)."""
        return self.module.weight

    def as_out_in(self, tensor: torch.Tensor) -> torch.Tensor:
        """A tensor in the stored layout (the parameter, its gradient) seen as [out, in]."""
        return tensor.t() if self.transposed else tensor

    def view(self) -> torch.Tensor:
        """The stored matrix as an [out, in] view (writes go to the parameter)."""
        return self.as_out_in(self.param)

    def weight(self) -> torch.Tensor:
        """The [out, in] matrix the slot applies (the product of factors when factorized), detached."""
        pair = factors(self.module)
        if pair is not None:
            return pair[1].detach() @ pair[0].detach()
        return self.view().detach()

    @property
    def shape(self) -> tuple[int, int]:
        pair = factors(self.module)
        if pair is not None:
            return pair[1].shape[0], pair[0].shape[1]
        return tuple(self.view().shape)

    @property
    def bias(self) -> torch.Tensor | None:
        module = self.module
        return module.second.bias if isinstance(module, LowRankLinear) else getattr(module, "bias", None)


@dataclass
class UnitGroup:
    """The structured units of one layer of one kind ("attention" or "mlp").

    `members` are (slot, dim, indices): dim 0 takes rows (with their bias entries), dim 1 columns;
    `indices[u]` are the rows or columns of unit u in that slot. `base_units` is the count in the unpruned
    base, which fractions of a schedule refer to."""

    kind: str
    layer: int
    base_units: int
    members: list[tuple[Slot, int, torch.Tensor]]

    @property
    def n_units(self) -> int:
        return len(self.members[0][2])

    def unit_cost(self) -> int:
        """Stored parameters of one unit (all units of a group have the same shape)."""
        cost = 0
        for slot, dim, indices in self.members:
            out_features, in_features = slot.shape
            width = indices.shape[1]
            cost += width * (in_features + (slot.bias is not None)) if dim == 0 else width * out_features
        return cost

    def unit_elements(self, scores: dict[str, torch.Tensor]) -> torch.Tensor:
        """(units x elements): each unit's element scores over all its slices, from per-slot [out, in] scores."""
        parts = []
        for slot, dim, indices in self.members:
            matrix = scores[slot.param_name]
            n, width = indices.shape
            if dim == 0:
                parts.append(matrix[indices.flatten()].reshape(n, -1))
            else:
                parts.append(matrix[:, indices.flatten()].reshape(matrix.shape[0], n, width).transpose(0, 1).reshape(n, -1))
        return torch.cat(parts, dim=1)


def contiguous_units(n_units: int, width: int, offset: int = 0) -> torch.Tensor:
    """Indices of `n_units` consecutive blocks of `width`: unit u covers offset + [u*width, (u+1)*width)."""
    return offset + torch.arange(n_units * width).view(n_units, width)


# ---- module surgery shared by every adapter ----

def sliced_module(module: nn.Module, dim: int, index: torch.Tensor) -> nn.Module:
    """A smaller copy of a Linear or Conv1D keeping rows (dim 0: outputs, with their bias) or columns
    (dim 1: inputs) of its [out, in] matrix."""
    if isinstance(module, LowRankLinear):
        raise ValueError("structured pruning of a factorized matrix is not supported")
    transposed = _is_conv1d(module)
    weight = module.weight.detach()
    weight = weight.t() if transposed else weight
    new_weight = weight[index] if dim == 0 else weight[:, index]
    bias = module.bias.detach() if module.bias is not None else None
    if bias is not None and dim == 0:
        bias = bias[index]
    out_features, in_features = new_weight.shape
    if transposed:
        new = copy.deepcopy(module)
        new.weight = nn.Parameter(new_weight.t().contiguous())
        new.bias = nn.Parameter(bias.clone()) if bias is not None else None
        new.nf, new.nx = out_features, in_features
        return new
    new = nn.Linear(in_features, out_features, bias=bias is not None, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        new.weight.copy_(new_weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new


def factorized_module(slot: Slot, first: torch.Tensor, second: torch.Tensor) -> LowRankLinear:
    """`second @ first` ([out, r] @ [r, in]) in place of the slot's matrix; the bias stays."""
    rank, in_features = first.shape
    out_features = second.shape[0]
    bias = slot.bias
    new = LowRankLinear(in_features, out_features, rank, bias=bias is not None)
    new.to(dtype=first.dtype, device=first.device)
    with torch.no_grad():
        new.first.weight.copy_(first)
        new.second.weight.copy_(second)
        if bias is not None:
            new.second.bias.copy_(bias.detach())
    return new


def dense_module(slot: Slot, weight: torch.Tensor) -> nn.Module:
    """A dense Linear (or Conv1D, as the slot stored it) applying `weight` ([out, in]); the bias stays."""
    module = slot.module
    bias = slot.bias
    if _is_conv1d(module):
        new = copy.deepcopy(module)
        new.weight = nn.Parameter(weight.t().contiguous().clone())
        return new
    out_features, in_features = weight.shape
    new = nn.Linear(in_features, out_features, bias=bias is not None, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias.detach())
    return new


def blank_module(slot: Slot, out_features: int, in_features: int, rank: int | None) -> nn.Module:
    """A module of the slot's kind and bias with the given [out, in] shape (or a factor pair of `rank`),
    uninitialised: loading weights into a pruned layout fills it."""
    module, has_bias = slot.module, slot.bias is not None
    dtype = next(module.parameters()).dtype
    if rank is not None:
        return LowRankLinear(in_features, out_features, rank, bias=has_bias).to(dtype)
    if _is_conv1d(module):
        new = copy.deepcopy(module)
        new.weight = nn.Parameter(torch.empty(in_features, out_features, dtype=dtype))
        new.bias = nn.Parameter(torch.empty(out_features, dtype=dtype)) if has_bias else None
        new.nf, new.nx = out_features, in_features
        return new
    return nn.Linear(in_features, out_features, bias=has_bias, dtype=dtype)


def matrix_macs(slot: Slot) -> int:
    out_features, in_features = slot.shape
    return slot.rank * (out_features + in_features) if slot.factorized else out_features * in_features


@dataclass
class ModelAdapter(ABC):
    """One model and its tokenizer, seen the way pruning, scoring and training need (see the module text).

    Subclasses implement the layout: the slots, unit groups and embedding of their model family."""

    model: nn.Module
    tokenizer: object
    masks: dict[str, torch.Tensor] = field(default_factory=dict)  # param name -> kept entries, [out, in]
    info: dict = field(default_factory=dict)  # what its checkpoint or folder says about it (training, pruning)
    source: str = ""                          # where it was loaded from

    kind = ""
    suffix = ""  # a deliverable's name after `size-0.50`: ".pt" for a checkpoint file, "" for a folder

    # ---- forward ----
    @property
    @abstractmethod
    def context(self) -> int:
        """The longest sequence of token ids the model scores in one window."""

    @abstractmethod
    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        """Final hidden states (batch, time, d_model) of right-padded token ids: with causal attention the
        padding after a sentence never changes its positions' states, so no attention mask is needed."""

    @abstractmethod
    def decode(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits (..., vocabulary) of the output layer for `hidden` states (..., d_model)."""

    @abstractmethod
    def tree_hidden(self, tokens: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Final hidden states of packed prefix trees (`prunelab.lm.prefix_score`): token t at position
        `positions[b, t]`, attending to the tokens where `mask[b, t]` (batch, time, time) is True."""

    # ---- structure ----
    @property
    @abstractmethod
    def n_layers(self) -> int:
        """The number of Transformer blocks (`decoder_layers()`'s length)."""

    @abstractmethod
    def decoder_layers(self) -> nn.ModuleList:
        """The Transformer blocks, each called with the hidden states as its first argument."""

    @abstractmethod
    def block_slots(self) -> list[Slot]:
        """Every matrix of the Transformer blocks, in model order."""

    @abstractmethod
    def embedding_slot(self) -> Slot | None:
        """The output matrix [vocab, d_model] (tied models: also the input embedding), if pruning may touch it."""

    @abstractmethod
    def unit_groups(self, layer: int) -> list[UnitGroup]:
        """The units structured pruning removes whole in block `layer` (0-based): its query heads or key/value
        groups and its FFN neurons, each group naming every (slot, dimension, indices) a unit spans."""

    @abstractmethod
    def attention_width(self, layer: int) -> tuple[int, int]:
        """(query heads, head_dim) of a layer: the attention arithmetic per token."""

    def layer_slots(self, layer: int) -> list[Slot]:
        """The block slots inside decoder layer `layer` (0-based), in model order."""
        inside = {id(module) for module in self.decoder_layers()[layer].modules()}
        return [slot for slot in self.block_slots() if id(slot.module) in inside]

    def all_slots(self) -> list[Slot]:
        embedding = self.embedding_slot()
        return self.block_slots() + ([embedding] if embedding is not None else [])

    def slot(self, name: str) -> Slot:
        for slot in self.all_slots():
            if slot.name == name:
                return slot
        raise KeyError(name)

    def prunable_slots(self, include_embedding: bool = True) -> list[Slot]:
        """Slots whose elements unstructured pruning masks (dense, unfactorized ones)."""
        slots = [s for s in self.block_slots() if not s.factorized]
        embedding = self.embedding_slot()
        if include_embedding and embedding is not None and not embedding.factorized:
            slots.append(embedding)
        return slots

    # ---- edits ----
    def factorize(self, slot: Slot, first: torch.Tensor, second: torch.Tensor) -> None:
        setattr(slot.parent, slot.attr, factorized_module(slot, first, second))
        self.masks.pop(slot.param_name, None)

    def set_dense(self, slot: Slot, weight: torch.Tensor) -> None:
        setattr(slot.parent, slot.attr, dense_module(slot, weight))

    def keep_units(self, group: UnitGroup, kept: torch.Tensor) -> None:
        """Keep units `kept` of a group: its slots shrink, the layer's shape follows. The kept rows and columns
        stay in their stored order (a packed q/k/v matrix keeps all q rows first)."""
        for slot, dim, indices in group.members:
            index = indices[kept.cpu()].flatten().sort().values
            setattr(slot.parent, slot.attr, sliced_module(slot.module, dim, index.to(slot.param.device)))
        self._units_changed(group, len(kept))

    @abstractmethod
    def _units_changed(self, group: UnitGroup, kept: int) -> None:
        """Layout-specific bookkeeping after `keep_units` (head counts, config)."""

    def apply_masks(self) -> None:
        slots = {s.param_name: s for s in self.prunable_slots()}
        with torch.no_grad():
            for name, mask in self.masks.items():
                slots[name].view().mul_(mask)

    # ---- sizes ----
    @abstractmethod
    def embedding_param_names(self) -> set[str]:
        """Names (as in `model.named_parameters()`) of the embedding and output parameters: counted apart from
        the blocks' in `param_counts`."""

    def param_counts(self) -> dict[str, int]:
        """Stored parameters (a masked matrix stores only its kept entries; shared matrices count once)."""
        embedding_names = self.embedding_param_names()
        embedding = blocks = 0
        for name, parameter in self.model.named_parameters():
            if name in embedding_names:
                embedding += parameter.numel()
            else:
                blocks += parameter.numel()
        for name, mask in self.masks.items():
            removed = mask.numel() - int(mask.sum())
            if name in embedding_names or self._is_embedding_slot_name(name):
                embedding -= removed
            else:
                blocks -= removed
        return {"params_total": embedding + blocks, "params_embedding": embedding, "params_blocks": blocks}

    def _is_embedding_slot_name(self, name: str) -> bool:
        slot = self.embedding_slot()
        return slot is not None and slot.param_name == name

    def macs_per_token(self, seq_len: int = 12) -> float:
        """Multiply-accumulates per scored token: every block matrix, attention scores and mixing at an
        average position of `seq_len` tokens, and the output layer. Masked weights count as dense (dense
        kernels multiply the zeros too)."""
        total = float(sum(matrix_macs(slot) for slot in self.block_slots()))
        attended = (seq_len + 1) / 2  # average number of earlier positions under a causal mask
        for layer in range(self.n_layers):
            heads, head_dim = self.attention_width(layer)
            total += 2 * attended * heads * head_dim
        return total + self.output_macs()

    @abstractmethod
    def output_macs(self) -> float:
        """Multiply-accumulates per token of the output layer (a factorised one counts its two factors)."""

    # ---- lifecycle ----
    def clone(self) -> ModelAdapter:
        """A deep copy of the model and masks; the tokenizer is shared (it is never edited)."""
        memo = {id(self.tokenizer): self.tokenizer}
        return copy.deepcopy(self, memo)

    def densified(self) -> ModelAdapter:
        """A copy where every factor pair is one dense matrix (shapes of heads and FFN kept)."""
        dense = self.clone()
        for slot in dense.all_slots():
            if slot.factorized:
                dense.set_dense(slot, slot.weight())
        return dense

    def parameters(self):
        return self.model.parameters()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def to(self, device: str | torch.device) -> ModelAdapter:
        """Move the model and its masks (in place)."""
        self.model.to(device)
        for name in list(self.masks):
            self.masks[name] = self.masks[name].to(device)
        return self

    def train(self, mode: bool = True) -> ModelAdapter:
        self.model.train(mode)
        return self

    def eval(self) -> ModelAdapter:
        return self.train(False)

    @property
    def training(self) -> bool:
        return self.model.training
