"""Pruning methods: what is removed. Each method turns a model into a smaller one of a given size.

- `unstructured`: element-wise masks (kept through fine-tuning), stored sparsely;
- `structured`: whole attention heads and FFN neurons (and embedding columns) removed, smaller dense layers;
- `lowrank`: matrices replaced by two factors, ranks allocated globally by the criterion's scores.

Methods talk only to the model adapter (`prunelab.lm.adapter`): slots, unit groups and edits; no method knows
a module name. A method instance lives for one pruning run: it may keep state across the stages of an incremental schedule
(masks; ranks only ever shrink, heads and neurons once removed stay removed)."""
from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Callable

import torch

from prunelab.errors import PrunelabError
from prunelab.lm.adapter import ModelAdapter, Slot, factors
from prunelab.lm.train import summed_output_loss
from prunelab.prune.calibration import Calibration
from prunelab.prune.criteria import Criterion
from prunelab.prune.size import stored_params


class UnreachableSize(PrunelabError, ValueError):
    """A target size the method cannot reach on this model: one line for the user, no traceback."""


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


class Method(ABC):
    """What pruning removes. `base_params`: the base model's stored parameters, against which every target size
    is a fraction; `prune_embedding`: whether the embedding/output matrix may be pruned too; `leave_choice`:
    a method that removes units (structured) decides only how many each group keeps and leaves which ones to
    least-squares reconstruction (`prune.reconstruct.compensated_choice`), which `left_choice` hands over."""

    name = ""

    def __init__(self, base_params: int, prune_embedding: bool = True, leave_choice: bool = False):
        self.base_params = base_params
        self.prune_embedding = prune_embedding
        self.leave_choice = leave_choice
        self._left: dict[int, dict[str, int]] = {}

    def left_choice(self) -> dict[int, dict[str, int]]:
        """Per layer, how many units of each group kind the last `prune` left to choose (emptied when read)."""
        left, self._left = self._left, {}
        return left

    @abstractmethod
    def prune(self, lm: ModelAdapter, size: float, criterion: Criterion, calib: Calibration | None) -> ModelAdapter:
        """Edit `lm` in place down to `size` (a fraction of the base's stored parameters); returns it.

        `criterion` ranks what to remove, from `calib`'s statistics when it is data-driven (None otherwise).
        Raises `UnreachableSize` when the method cannot reach `size` on this model."""

    def stored_params(self, lm: ModelAdapter) -> int:
        return stored_params(lm)

    def after_step(self, lm: ModelAdapter) -> None:  # noqa: B027 (optional hook, nothing to do by default)
        """Called after every fine-tuning optimizer step (unstructured pruning re-applies its masks)."""


class Unstructured(Method):
    name = "unstructured"

    def prune(self, lm, size, criterion, calib):
        slots = lm.prunable_slots(self.prune_embedding)
        prunable = sum(slot.param.numel() for slot in slots)
        dense_total = lm.param_counts()["params_total"] + sum(m.numel() - int(m.sum()) for m in lm.masks.values())
        keep_total = size * self.base_params - (dense_total - prunable)
        if keep_total <= 0:
            raise UnreachableSize(f"size {size} needs fewer parameters than the unprunable ones")
        fraction = keep_total / prunable
        with torch.no_grad():
            for slot in slots:
                name, weight = slot.param_name, slot.view()
                scores = criterion(name, weight, calib).clone().float()
                if name in lm.masks:
                    scores[~lm.masks[name]] = -torch.inf
                keep = min(int(round(fraction * weight.numel())), weight.numel())
                mask = torch.zeros(weight.numel(), dtype=torch.bool, device=weight.device)
                mask[scores.flatten().topk(keep).indices] = True
                lm.masks[name] = mask.view(weight.shape)
                weight.mul_(lm.masks[name])
        return lm

    def after_step(self, lm):
        lm.apply_masks()


def _loss_without(lm: ModelAdapter, groups, unit_scores, kept, embedding, columns, kept_columns, batches) -> float:
    """Mean next-token loss on calibration `batches` with the units beyond each group's `kept` best (and the
    embedding columns beyond `kept_columns`) zeroed where they are read: what removing them does, measured
    without changing any shape. The weights are restored afterwards."""
    saved = []
    with torch.no_grad():
        for group, scores, k in zip(groups, unit_scores, kept):
            removed = scores.float().argsort(descending=True)[k:].cpu()
            for slot, dim, indices in group.members:
                if dim == 1 and len(removed):
                    columns_out = indices[removed].flatten().to(slot.param.device)
                    view = slot.view()
                    saved.append((view, columns_out, view[:, columns_out].clone()))
                    view[:, columns_out] = 0
        if embedding is not None and not embedding.factorized and kept_columns is not None:
            view = embedding.view()
            gone = columns.float().argsort(descending=True)[kept_columns:].to(view.device)
            saved.append((view, gone, view[:, gone].clone()))
            view[:, gone] = 0
        try:
            return calibration_loss(lm, batches)
        finally:
            for view, index, values in reversed(saved):
                view[:, index] = values


def calibration_loss(lm: ModelAdapter, batches) -> float:
    """Mean next-token loss of `lm` on calibration `batches` of (inputs, targets)."""
    total = count = 0.0
    with torch.no_grad():
        for inputs, targets in batches:
            inputs, targets = inputs.to(lm.device), targets.to(lm.device)
            total += float(summed_output_loss(lm.decode, lm.hidden(inputs), targets))  # logits a chunk at a time
            count += targets.numel()
    return total / count


SPREAD = 0.25      # how far a layer's FFN keep fraction moves per unit of relative sensitivity (s_l / mean s - 1)
SPREAD_LIMIT = 0.15  # and at most this far from the layer's fraction before
SENSITIVITY_BATCHES = 2  # calibration batches each layer's sensitivity is measured on
RANK_SENSITIVITY_POWER = 1.5  # low-rank: a layer's energy shares are scaled by (s_l / mean s) ** this,
RANK_SCALE_LIMIT = 16.0  # s_l / mean s taken within [1/16, 16] (SmolLM2's layers span 0.15-14.5)


def spread_by_sensitivity(groups, costs, kept, sensitivity: list[float]) -> list[int]:
    """Units per group moved between groups (one kind, e.g. every layer's FFN neurons) by measured sensitivity,
    the stored parameters they take unchanged: group i's keep fraction f_i becomes
    f_i + SPREAD (s_i / mean s - 1), within SPREAD_LIMIT of f_i, all shifted by one amount to fit the budget
    (at least one unit, at most all, per group); what rounding leaves goes to the most sensitive groups first."""
    budget = sum(k * c for k, c in zip(kept, costs))
    mean = sum(sensitivity) / len(sensitivity)
    if mean <= 0:
        return list(kept)
    fractions = [k / g.n_units for k, g in zip(kept, groups)]
    wanted = [min(f + SPREAD_LIMIT, max(f - SPREAD_LIMIT, f + SPREAD * (s / mean - 1)))
              for f, s in zip(fractions, sensitivity)]

    def counts(shift: float) -> list[int]:
        return [min(g.n_units, max(1, int((w + shift) * g.n_units))) for w, g in zip(wanted, groups)]

    shift = _bisect(lambda d: sum(k * c for k, c in zip(counts(d), costs)), budget, -1.0, 1.0)
    spread = counts(shift)
    spare = budget - sum(k * c for k, c in zip(spread, costs))
    for i in sorted(range(len(groups)), key=lambda i: -sensitivity[i]):
        if spread[i] < groups[i].n_units and costs[i] <= spare:
            spread[i] += 1
            spare -= costs[i]
    return spread


class Structured(Method):
    """Removes structured units (attention heads, or key/value groups with their query heads; FFN neurons) and,
    with the embedding, columns of the output matrix (stored as a (vocab x kept) table and a (kept x d_model)
    selection). Inside each group the criterion's unit scores say which units go first.

    How many units each group keeps: the same fraction of each kind in every layer (at least one unit). The
    attention units are coarse (a key/value group is a third of SmolLM2's attention), so the split between
    attention and FFN neurons decides most of the damage:
    - with calibration statistics (data-driven criteria) it is measured: each attention fraction that fits
      (1/n, 2/n, ... of the n units), FFN neurons filling the rest of the budget, is scored by the calibration
      loss of the model with the removed units zeroed, and the lowest wins; then FFN neurons move between
      layers by each layer's measured sensitivity (`spread_by_sensitivity`);
    - without (magnitude), attention and FFN neurons keep the same fraction.
    Tried on SmolLM2 at 0.7 with reconstruction: per-layer budgets from each unit's removal error per parameter
    (relative to its layer's output energy: ppl 239; to the residual stream: 220) lost to the same fraction in
    every layer (attention kept, FFN neurons alone: 142), as a few layers lost nearly all their neurons; the
    bounded spread by each layer's measured loss (128 calibration sequences, FFN neurons alone) won: 114.6 at
    SPREAD 0.25 and 115.2 at 0.1, against 122.2 for the same fraction everywhere (layer 0 is ten times as
    sensitive as the median layer; `python benchmarks/layer_budget.py`)."""

    name = "structured"

    def _scores(self, lm, groups, criterion, calib):
        element_scores = {slot.param_name: criterion(slot.param_name, slot.view(), calib)
                          for group in groups for slot, _, _ in group.members}
        units = [criterion.unit_score(group.unit_elements(element_scores), dim=1) for group in groups]
        columns = None
        if self.prune_embedding:
            slot = lm.embedding_slot()
            columns = criterion.unit_score(criterion(slot.param_name, slot.weight(), calib), dim=0)
        return units, columns

    def prune(self, lm, size, criterion, calib):
        groups = [group for layer in range(lm.n_layers) for group in lm.unit_groups(layer)]
        unit_scores, columns = self._scores(lm, groups, criterion, calib)
        costs = [group.unit_cost() for group in groups]
        coarse = [group.kind == "attention" for group in groups]
        embedding = lm.embedding_slot() if columns is not None else None
        if embedding is not None:
            weight = embedding.weight()
            vocab_size, d_model = weight.shape
            alive_columns = weight.abs().sum(0) > 0
            n_alive = int(alive_columns.sum())
        variable = sum(group.n_units * cost for group, cost in zip(groups, costs))
        if embedding is not None:
            variable += embedding.rank * (vocab_size + d_model) if embedding.factorized else vocab_size * d_model
        budget = size * self.base_params - (lm.param_counts()["params_total"] - variable)

        def counts(q: float, coarse_q: float):
            kept = [min(g.n_units, max(1, round((coarse_q if c else q) * g.base_units))) for g, c in zip(groups, coarse)]
            return kept, None if embedding is None else min(n_alive, max(1, round(q * d_model)))

        def total(kept, kept_columns):
            emb = 0 if kept_columns is None else kept_columns * (vocab_size + d_model)
            return sum(k * cost for k, cost in zip(kept, costs)) + emb

        def total_exact(q):  # fractional units: continuous, to choose the coarse fraction
            units = sum(min(g.n_units, q * g.base_units) * cost for g, cost in zip(groups, costs))
            return units + (0 if embedding is None else min(float(n_alive), q * d_model) * (vocab_size + d_model))

        def allocation(coarse_q: float):
            q = _bisect(lambda q: total(*counts(q, coarse_q)), budget)
            kept, kept_columns = counts(q, coarse_q)
            # the fine-grained units (FFN neurons) fill what the coarse ones (heads, embedding columns) left over
            spare = budget - total(kept, kept_columns)
            while True:
                open_groups = [i for i, c in enumerate(coarse) if not c and kept[i] < groups[i].n_units]
                if not open_groups:
                    break
                i = min(open_groups, key=lambda i: kept[i])
                if costs[i] > spare:
                    break
                kept[i] += 1
                spare -= costs[i]
            return kept, kept_columns

        if criterion.data_driven and calib is not None and calib.batches:
            # measured: every split of the budget between attention and FFN neurons that fits, each scored by the
            # calibration loss of the model with those units zeroed; the lowest wins
            steps = max((g.base_units for g, c in zip(groups, coarse) if c), default=1)
            feasible = [k / steps for k in range(1, steps + 1) if total(*counts(0.0, k / steps)) <= budget]
            if not feasible:
                raise UnreachableSize("target size is below what structured pruning can reach")
            options = [allocation(c) for c in feasible]
            losses = [_loss_without(lm, groups, unit_scores, kept, embedding, columns, kept_columns, calib.batches)
                      for kept, kept_columns in options]
            kept, kept_columns = options[min(range(len(options)), key=losses.__getitem__)]
            # then FFN neurons move between layers by each layer's measured sensitivity: the calibration loss's
            # increase with that layer's removed neurons zeroed alone
            fine = [i for i, c in enumerate(coarse) if not c and kept[i] < groups[i].n_units]
            if len(fine) > 1:
                batches = calib.batches[:SENSITIVITY_BATCHES]
                before = calibration_loss(lm, batches)
                sensitivity = [_loss_without(lm, [groups[i]], [unit_scores[i]], [kept[i]], None, None, None, batches)
                               - before for i in fine]
                moved = spread_by_sensitivity([groups[i] for i in fine], [costs[i] for i in fine],
                                              [kept[i] for i in fine], sensitivity)
                for i, k in zip(fine, moved):
                    kept[i] = k
        else:
            coarse_q = _bisect(total_exact, budget)
            if total(*counts(0.0, coarse_q)) > budget:  # few coarse units (two key/value groups): rounding overshot
                coarse_q = _bisect(lambda c: total(*counts(0.0, c)), budget)
            kept, kept_columns = allocation(coarse_q)
        for group, scores, k in zip(groups, unit_scores, kept):
            if k < group.n_units and self.leave_choice:
                self._left.setdefault(group.layer, {})[group.kind] = k
            elif k < group.n_units:
                lm.keep_units(group, scores.topk(k).indices.sort().values.cpu())
        if embedding is not None:
            scores = columns.clone().float()
            scores[~alive_columns] = -torch.inf
            keep = scores.topk(kept_columns).indices.sort().values
            lm.factorize(embedding, torch.eye(d_model, dtype=weight.dtype, device=weight.device)[keep], weight[:, keep])
        return lm


class LowRank(Method):
    """Each matrix W ~= U diag(S) Vh (criterion's factorisation) truncated to rank r and stored as two factors;
    a matrix whose factors would not be smaller stays dense. Ranks are allocated globally: directions are
    kept in order of their share of their matrix's energy (S_i^2 / sum S^2) until the size budget is spent.
    With a data-driven criterion the shares are then weighted per layer by measured sensitivity (the calibration
    loss's increase with the layer's matrices truncated alone to the first allocation's ranks), scaled by
    (s_l / mean s) ** RANK_SENSITIVITY_POWER, and the ranks allocated again.
    Tried on SmolLM2 at 0.7 with reconstruction (128 calibration sequences, embedding kept): shares of the
    whitened spectra that the refit truncates (SVD of W L) gave ppl 218.3 where the criterion's gave 214.1;
    the sensitivity weighting at powers 0.5 / 1 / 1.5 / 2: 190.6 / 167.9 / 149.6 / 152.8 (layer 0 is 50 times
    as sensitive as the median layer; `python benchmarks/rank_budget.py`).
    Ranks only shrink across stages: the incremental variant factorises once and then truncates."""

    name = "lowrank"

    def _targets(self, lm):
        return lm.block_slots() + ([lm.embedding_slot()] if self.prune_embedding else [])

    def prune(self, lm, size, criterion, calib):
        factors, caps = {}, {}
        targets = self._targets(lm)
        for slot in targets:
            weight = slot.weight()
            caps[slot.name] = slot.rank if slot.factorized else min(weight.shape)
            u, s, vh = criterion.factorize(slot.param_name, weight, calib)
            factors[slot.name] = (u, s, vh, tuple(weight.shape))
        energy = {n: share(f[1]) for n, f in factors.items()}
        compressed = sum(effective_cost(f[3], caps[n], caps[n] < min(f[3])) for n, f in factors.items())
        budget = size * self.base_params - (lm.param_counts()["params_total"] - compressed)

        def allocate(weight_of: dict[str, float]) -> dict[str, int]:
            return allocate_ranks({n: (energy[n] * weight_of.get(n, 1.0), factors[n][3], caps[n]) for n in factors},
                                  budget, slack=0.005 * self.base_params)

        ranks = allocate({})
        if criterion.data_driven and calib is not None and calib.batches and lm.n_layers > 1:
            # then directions move between layers by each layer's measured sensitivity: the calibration loss's
            # increase with that layer's matrices truncated to these ranks alone; a layer's shares are scaled
            # by (s_l / mean s) ** RANK_SENSITIVITY_POWER
            sensitivity = truncation_sensitivity(lm, factors, ranks, calib.batches[:SENSITIVITY_BATCHES])
            mean = sum(sensitivity) / len(sensitivity)
            if mean > 0:
                scale = [min(RANK_SCALE_LIMIT, max(1 / RANK_SCALE_LIMIT, s / mean)) ** RANK_SENSITIVITY_POWER
                         for s in sensitivity]
                ranks = allocate({slot.name: scale[layer] for layer in range(lm.n_layers)
                                  for slot in lm.layer_slots(layer)})
        for slot in targets:
            u, s, vh, shape = factors[slot.name]
            r = ranks[slot.name]
            if r * sum(shape) < shape[0] * shape[1]:
                root = s[:r].sqrt()
                lm.factorize(slot, root[:, None] * vh[:r], u[:, :r] * root[None, :])
            elif r < min(shape):  # too high a rank to store as factors: the truncated product, dense
                lm.set_dense(slot, (u[:, :r] * s[:r][None, :]) @ vh[:r])
            elif slot.factorized:
                lm.set_dense(slot, slot.weight())
        return lm


def truncation_sensitivity(lm: ModelAdapter, factors: dict[str, tuple], ranks: dict[str, int], batches) -> list[float]:
    """Each layer's sensitivity: the calibration loss's increase on `batches` with that layer's matrices (those
    named in `factors`: name -> (u, s, vh, ...)) truncated to `ranks` alone. The weights are restored."""
    before = calibration_loss(lm, batches)
    sensitivity = []
    for layer in range(lm.n_layers):
        restore = [_truncate_in_place(slot, *factors[slot.name][:3], ranks[slot.name])
                   for slot in lm.layer_slots(layer) if slot.name in factors]
        try:
            sensitivity.append(calibration_loss(lm, batches) - before)
        finally:
            for undo in restore:
                undo()
    return sensitivity


def _truncate_in_place(slot: Slot, u: torch.Tensor, s: torch.Tensor, vh: torch.Tensor, rank: int) -> Callable[[], None]:
    """Make `slot` apply its rank-`rank` truncation (of u diag(s) vh) without changing any shape (a factorised
    slot's extra directions are zeroed); returns what puts the weights back."""
    pair = factors(slot.module)
    with torch.no_grad():
        if pair is None:
            view = slot.view()
            saved = view.clone()
            view.copy_((u[:, :rank] * s[:rank][None, :]) @ vh[:rank])

            def undo() -> None:
                with torch.no_grad():
                    view.copy_(saved)
            return undo
        first, second = pair
        kept = (first.clone(), second.clone())
        root = s[:rank].sqrt()
        first.zero_()
        second.zero_()
        first[:rank] = root[:, None] * vh[:rank]
        second[:, :rank] = u[:, :rank] * root[None, :]

        def undo_factors() -> None:
            with torch.no_grad():
                first.copy_(kept[0])
                second.copy_(kept[1])
        return undo_factors


def share(singular_values: torch.Tensor) -> torch.Tensor:
    """Each direction's share of its matrix's energy, S_i^2 / sum S^2 (float64)."""
    energy = singular_values.double() ** 2
    return energy / energy.sum().clamp_min(1e-30)


def allocate_ranks(matrices: dict[str, tuple[torch.Tensor, tuple[int, int], int]], budget: float,
                   slack: float) -> dict[str, int]:
    """Ranks that fit `budget` stored weights, dropping the least important directions first.

    `matrices` maps a name to (energy share of each direction, largest first; matrix shape; current rank).
    A removal that would land more than `slack` below the budget is skipped while other (smaller) removals
    can still close the gap, so coarse matrices (the embedding) do not overshoot. Matrices that end up no
    smaller as factors than dense keep all their directions (dense storage costs the same); every matrix keeps
    at least one direction."""
    ranks = {n: cap for n, (_, _, cap) in matrices.items()}
    cost = {n: effective_cost(shape, ranks[n], True) for n, (_, shape, _) in matrices.items()}
    total = sum(cost.values())
    for strict in (True, False):
        queue = [(float(e[ranks[n] - 1]), n) for n, (e, _, _) in matrices.items() if ranks[n] > 1]
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
            if ranks[name] > 1:  # every matrix keeps a direction: at rank 0 the layers above it read zeros
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


def make_method(name: str, base_params: int, prune_embedding: bool = True, leave_choice: bool = False) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
    return METHODS[name](base_params, prune_embedding, leave_choice)
