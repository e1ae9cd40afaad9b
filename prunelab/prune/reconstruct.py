"""Reconstruction: after a method has chosen what to remove, the remaining weights are refit in closed form so
that each pruned matrix reproduces the reference model's output (the model before this stage) on calibration
text. `least-squares` is the published family of closed-form updates (FLAP's bias compensation, SlimGPT's
least-squares refit of the matrices that read kept units, SVD-LLM's whitened low-rank, SparseGPT's masked
update), applied generically to every matrix slot:

- a dense matrix (a structured method's `o_proj` over kept heads and `down_proj` over kept neurons, or a matrix
  the method left whole) is the ridge least-squares solution `W = C^T (G + lambda I)^-1`, where `G = X^T X` is the
  Gram matrix of its input in the pruned model and `C = X^T Y` the cross-product with the reference's output `Y`;
  a bias is refit with it (the data centred, `b = mean(y) - W mean(x)`): FLAP's bias compensation;
- a factorised matrix keeps its rank: the least-squares solution is truncated in the input's whitened space
  (SVD of `W L`, `L` the Cholesky factor of the Gram matrix, factors `U_r S_r^1/2` and `S_r^1/2 V_r^T L^-1`),
  which minimises the output error at that rank (SVD-LLM);
- a masked matrix (unstructured) keeps its mask: the least-squares solution is pruned column by column with the
  optimal-brain-surgeon update of the columns not yet visited (SparseGPT with the criterion's mask).

Sequential, layer by layer, as the published methods do: layer l's statistics are taken with layers below it
already pruned and refit, and inside a layer each matrix's input is taken after the matrices before it were
refit. Only one layer's inputs for the calibration batches are held (for the pruned model and the reference),
never the whole model's activations; the reference's outputs are those of its dense layer on its own inputs,
so upstream error is compensated too."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from prunelab.lm.adapter import ModelAdapter, Slot

RIDGE = 1e-2  # lambda as a fraction of the Gram matrix's mean diagonal


class _Captured(Exception):
    """Raised by a hook once it has what it needs: nothing after it needs to run."""


@dataclass
class LayerCall:
    """One calibration batch's call of a decoder layer: its positional and keyword arguments, the hidden
    states being the first positional (or the `hidden_states` keyword)."""

    args: tuple
    kwargs: dict

    def with_hidden(self, hidden: torch.Tensor) -> LayerCall:
        if self.args:
            return LayerCall((hidden, *self.args[1:]), self.kwargs)
        return LayerCall(self.args, {**self.kwargs, "hidden_states": hidden})

    def run(self, layer: nn.Module) -> torch.Tensor:
        out = layer(*self.args, **self.kwargs)
        return out[0] if isinstance(out, (tuple, list)) else out

    def run_until_captured(self, layer: nn.Module) -> None:
        """Run the layer for its hooks, which may stop it early by raising `_Captured`."""
        try:
            self.run(layer)
        except _Captured:
            pass


def first_layer_calls(lm: ModelAdapter, batches: list[torch.Tensor]) -> list[LayerCall]:
    """How the model calls its first decoder layer on each batch (embeddings, positions, masks computed by the
    model itself), without running any layer."""
    calls: list[LayerCall] = []

    def catch(_module, args, kwargs):
        calls.append(LayerCall(tuple(args), dict(kwargs)))
        raise _Captured

    handle = lm.decoder_layers()[0].register_forward_pre_hook(catch, with_kwargs=True)
    try:
        for tokens in batches:
            try:
                lm.hidden(tokens.to(lm.device))
            except _Captured:
                pass
    finally:
        handle.remove()
    return calls


@dataclass
class _Moments:
    """Sums over calibration tokens of a matrix's input x and the reference output y: x^T x, x^T y, x, y."""

    gram: torch.Tensor
    cross: torch.Tensor
    sum_x: torch.Tensor
    sum_y: torch.Tensor
    count: int = 0

    @classmethod
    def empty(cls, in_features: int, out_features: int, device) -> _Moments:
        zeros = lambda *shape: torch.zeros(*shape, dtype=torch.float64, device=device)  # noqa: E731
        return cls(zeros(in_features, in_features), zeros(in_features, out_features), zeros(in_features),
                   zeros(out_features))

    def add(self, x: torch.Tensor, y: torch.Tensor, gram: torch.Tensor | None = None) -> torch.Tensor:
        """Add one batch (products in float32, sums in float64: a batch's rounding stays far below the ridge);
        `gram`: this batch's x^T x when another matrix reading the same input computed it. Returns that."""
        x = x.reshape(-1, x.shape[-1]).float()
        y = y.reshape(-1, y.shape[-1]).float()
        gram = x.t() @ x if gram is None else gram
        self.gram += gram
        self.cross += x.t() @ y
        self.sum_x += x.sum(0)
        self.sum_y += y.sum(0)
        self.count += x.shape[0]
        return gram


def _solve(moments: _Moments, with_bias: bool, ridge: float, prior: torch.Tensor | None = None):
    """Ridge least squares of y on x, shrunk towards `prior` ([out, in]; zero when None): W minimises
    ||X W^T - Y||^2 + lambda ||W - prior||^2. Returns (W [out, in], the regularised Gram matrix, its Cholesky
    factor), on centred data when a bias is fit (`_bias` then gives the bias of whatever matrix replaces W)."""
    gram, cross = moments.gram, moments.cross
    if with_bias:
        mean_x, mean_y = moments.sum_x / moments.count, moments.sum_y / moments.count
        gram = gram - moments.count * torch.outer(mean_x, mean_x)
        cross = cross - moments.count * torch.outer(mean_x, mean_y)
    damp = ridge * gram.diagonal().mean().clamp_min(1e-12)
    gram = gram + damp * torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    if prior is not None:
        cross = cross + damp * prior.t().to(cross.dtype)
    factor = torch.linalg.cholesky(gram)
    return torch.cholesky_solve(cross, factor).t(), gram, factor


def _bias(moments: _Moments, weight: torch.Tensor) -> torch.Tensor:
    """The bias that makes `weight`'s mean output the reference's: mean(y) - W mean(x)."""
    return (moments.sum_y - weight @ moments.sum_x) / moments.count


def _low_rank(weight: torch.Tensor, factor: torch.Tensor, rank: int):
    """The rank-`rank` matrix closest to `weight` on inputs of Gram L L^T: (first [r, in], second [out, r])."""
    u, s, vh = torch.linalg.svd(weight @ factor, full_matrices=False)
    root = s[:rank].sqrt()
    first = torch.linalg.solve_triangular(factor, root[:, None] * vh[:rank], upper=False, left=False)  # B L^-1
    return first, u[:, :rank] * root[None, :]


def _masked(weight: torch.Tensor, gram: torch.Tensor, mask: torch.Tensor, block: int = 128) -> torch.Tensor:
    """`weight` with the entries outside `mask` removed one column at a time, each removal's error spread over
    the columns not yet visited by the optimal-brain-surgeon update (SparseGPT's sweep, with a given mask)."""
    weight = weight.clone()
    inverse = torch.cholesky_inverse(torch.linalg.cholesky(gram))
    upper = torch.linalg.cholesky(inverse, upper=True)
    removed = ~mask.to(weight.device)
    columns = weight.shape[1]
    for start in range(0, columns, block):
        end = min(start + block, columns)
        part, errors = weight[:, start:end].clone(), torch.zeros_like(weight[:, start:end])
        local = upper[start:end, start:end]
        for j in range(end - start):
            error = part[:, j] * removed[:, start + j] / local[j, j]
            part[:, j:] -= error[:, None] * local[j, j:][None, :]
            errors[:, j] = error
        weight[:, start:end] = part
        weight[:, end:] -= errors @ upper[start:end, end:]
    weight[removed] = 0
    return weight


def compensated_choice(weight: torch.Tensor, gram: torch.Tensor, units: torch.Tensor, keep: int, ridge: float,
                       rounds: int = 32) -> torch.Tensor:
    """Which `keep` units of a matrix's input to keep when the matrix is refit on what remains: the units are
    column blocks of `weight` ([out, in]; `units[u]` are unit u's columns) and `gram` its input's Gram matrix.
    Greedy, a batch of units per round: the units whose removal costs the least output error after the
    optimal-brain-surgeon update of the columns left (for one column j: ||W[:, j]||^2 / [G^-1]_jj; for a block B:
    tr(W_B [G^-1]_BB^-1 W_B^T)), then the update and the inverse's downdate (SlimGPT's structured OBS).
    Returns the kept unit indices, sorted."""
    weight = weight.detach().double().clone()
    gram = gram.double()
    damp = ridge * gram.diagonal().mean().clamp_min(1e-12)
    inverse = torch.cholesky_inverse(torch.linalg.cholesky(
        gram + damp * torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)))
    alive = torch.ones(len(units), dtype=torch.bool)
    step = max(1, -(-(len(units) - keep) // rounds))
    eye = torch.eye(units.shape[1], dtype=gram.dtype, device=gram.device)
    while int(alive.sum()) > keep:
        candidates = alive.nonzero().flatten()
        columns = units[candidates].to(weight.device)                          # [n, width]
        if columns.shape[1] == 1:  # single columns (FFN neurons): ||W[:, j]||^2 / [G^-1]_jj
            scores = (weight[:, columns[:, 0]] ** 2).sum(0) / (inverse[columns[:, 0], columns[:, 0]] + 1e-12)
        else:
            blocks = inverse[columns[:, :, None], columns[:, None, :]] + 1e-12 * eye  # [n, width, width]
            parts = weight[:, columns].permute(1, 0, 2)                            # [n, out, width]
            scores = (torch.linalg.solve(blocks, parts.transpose(1, 2)).transpose(1, 2) * parts).sum((1, 2))
        take = candidates[scores.topk(min(step, len(candidates) - keep), largest=False).indices.cpu()]
        removed = units[take].flatten().to(weight.device)
        update = torch.linalg.solve(inverse[removed][:, removed], inverse[removed])  # [|S|, in]
        weight -= weight[:, removed] @ update
        inverse -= inverse[:, removed] @ update
        weight[:, removed] = 0
        inverse[removed] = 0
        inverse[:, removed] = 0
        alive[take] = False
    return alive.nonzero().flatten()


def _choose_units(lm: ModelAdapter, layer: int, calls: list[LayerCall], counts: dict[str, int],
                  ridge: float) -> dict[str, torch.Tensor]:
    """Keep `counts[kind]` units of each of the layer's unit groups named there, chosen by `compensated_choice`
    on the Gram matrix of the group's reading matrix (o_proj, down_proj) in the pruned model; one group at a
    time, so that the FFN's choice sees the attention already pruned. Returns, for each matrix that lost rows
    (q/k/v, gate/up), the rows it kept: the reference's outputs there are what its refit reproduces."""
    module = lm.decoder_layers()[layer]
    kept_rows: dict[str, torch.Tensor] = {}
    for kind, keep in counts.items():
        group = next(group for group in lm.unit_groups(layer) if group.kind == kind)
        if keep >= group.n_units:
            continue
        reader, _, units = next(member for member in group.members if member[1] == 1)
        gram: list = [0.0]

        def record(_module, inputs):
            x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).float()
            gram[0] = gram[0] + (x.t() @ x).double()
            raise _Captured  # nothing after the reading matrix's input is needed

        handle = reader.module.register_forward_pre_hook(record)
        try:
            for call in calls:
                call.run_until_captured(module)
        finally:
            handle.remove()
        kept = compensated_choice(reader.weight(), gram[0], units, keep, ridge)
        for slot, dim, indices in group.members:
            if dim == 0:
                kept_rows[slot.name] = indices[kept].flatten().sort().values
        lm.keep_units(group, kept)
    return kept_rows


def _refit(lm: ModelAdapter, slot: Slot, moments: _Moments, ridge: float, reference: Slot) -> None:
    """Refit one matrix, shrunk towards the reference's weights where the shapes agree, else towards its own (a
    structured method's kept columns): with little data, the refit stays near what it was."""
    with_bias = slot.bias is not None
    prior = reference.weight() if reference.shape == slot.shape else slot.weight()
    weight, gram, factor = _solve(moments, with_bias, ridge, prior.double())
    mask = lm.masks.get(slot.param_name)
    dtype = slot.weight().dtype
    with torch.no_grad():
        if slot.factorized:
            first, second = _low_rank(weight, factor, slot.rank)
            lm.factorize(slot, first.to(dtype), second.to(dtype))
            weight = second @ first
        else:
            if mask is not None:
                weight = _masked(weight, gram, mask)
            slot.view().copy_(weight.to(dtype))
        if with_bias:
            slot.bias.copy_(_bias(moments, weight).to(dtype))


def _reference_outputs(reference: ModelAdapter, layer: int, calls: list[LayerCall], names: list[str]):
    """The reference layer's outputs of the named matrices on its own inputs, and its outputs (next inputs)."""
    module = reference.decoder_layers()[layer]
    outputs: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    handles = [reference.slot(name).module.register_forward_hook(
        lambda _m, _i, out, name=name: outputs[name].append(out.detach())) for name in names]
    try:
        following = [call.with_hidden(call.run(module)) for call in calls]
    finally:
        for handle in handles:
            handle.remove()
    return outputs, following


def _refit_layer(lm: ModelAdapter, reference: ModelAdapter, layer: int, calls: list[LayerCall],
                 targets: dict[str, list[torch.Tensor]], ridge: float) -> list[LayerCall]:
    """Refit the layer's matrices in model order, matrices that read the same input together; returns the
    layer's calls for the next layer (its outputs after refitting)."""
    module = lm.decoder_layers()[layer]
    pending = [slot.name for slot in lm.layer_slots(layer) if slot.name in targets]
    while pending:
        # this round: the first pending matrix reached and those after it that read the very same input tensor
        # (q, k and v; gate and up), found on the first batch; each pass stops once they have their input
        moments: dict[str, _Moments] = {}
        ready: list[str] = []
        shared: list = [None, None]  # this round's input in this batch and its x^T x

        def record(_module, inputs, _output, name, batch):
            x = inputs[0].detach()
            if batch == 0 and ready and x is not shared[0]:
                raise _Captured  # a later input: this round's matrices are all seen
            if batch == 0:
                ready.append(name)
            y = targets[name][batch]
            if name not in moments:
                moments[name] = _Moments.empty(x.shape[-1], y.shape[-1], x.device)
            gram = moments[name].add(x, y, shared[1] if shared[0] is x else None)
            shared[:] = [x, gram]
            if batch > 0 and name == ready[-1]:
                raise _Captured

        for batch, call in enumerate(calls):
            handles = [lm.slot(name).module.register_forward_hook(
                lambda m, i, o, name=name, batch=batch: record(m, i, o, name, batch))
                for name in (pending if batch == 0 else ready)]
            try:
                call.run_until_captured(module)
            finally:
                shared[:] = [None, None]
                for handle in handles:
                    handle.remove()
        for name in ready:
            _refit(lm, lm.slot(name), moments[name], ridge, reference.slot(name))
            pending.remove(name)
        del moments
    return [call.with_hidden(call.run(module)) for call in calls]


def reconstruct(lm: ModelAdapter, reference: ModelAdapter, batches: list[torch.Tensor], ridge: float = RIDGE,
                log: Callable[[str], None] | None = None,
                choose: dict[int, dict[str, int]] | None = None) -> ModelAdapter:
    """Refit `lm`'s block matrices, layer by layer, to reproduce `reference`'s (same layout, unpruned shapes)
    on the calibration `batches` of token ids; in place, returns `lm`. `choose`: per layer, how many units of
    each unit group kind to keep, chosen here by `compensated_choice` before the layer is refit (a structured
    method that left the choice to reconstruction)."""
    was_training = (lm.training, reference.training)
    lm.eval()
    reference.eval()
    try:
        with torch.no_grad():
            calls = first_layer_calls(lm, batches)
            reference_calls = first_layer_calls(reference, batches)
            for layer in range(lm.n_layers):
                kept_rows = _choose_units(lm, layer, calls, choose[layer], ridge) if choose and choose.get(layer) else {}
                # every matrix whose output the pruning left at the reference's width, changed or not: those left
                # whole compensate the changes upstream (measured on `small` at 0.5, embedding pruned: ppl 213 where
                # refitting only the changed matrices gives 298); and those whose kept rows are known (units chosen
                # here), on the reference's outputs of those rows
                names = [slot.name for slot in lm.layer_slots(layer)
                         if slot.shape[0] == reference.slot(slot.name).shape[0] or slot.name in kept_rows]
                targets, reference_calls = _reference_outputs(reference, layer, reference_calls, names)
                for name, rows in kept_rows.items():
                    targets[name] = [output[..., rows.to(output.device)] for output in targets[name]]
                calls = _refit_layer(lm, reference, layer, calls, targets, ridge)
                del targets
                if log is not None:
                    log(f"reconstruction: layer {layer + 1}/{lm.n_layers} refit")
    finally:
        lm.train(was_training[0])
        reference.train(was_training[1])
    return lm
