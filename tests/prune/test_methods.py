"""Every method through the model adapter, on every model family (`family_lm`: see tests/prune/conftest.py)."""
import pytest
import torch

from prunelab.lm.load import load_model, save_model
from prunelab.prune.calibration import calibrate
from prunelab.prune.criteria import CRITERIA
from prunelab.prune.methods import LowRank, Structured, Unstructured, make_method
from prunelab.prune.size import SIZE_TOLERANCE

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def logits(lm, tokens):
    return lm.decode(lm.hidden(tokens))


@pytest.fixture(scope="module")
def calib(family_lm, small_corpus):
    return calibrate(family_lm.densified(), small_corpus, n_sequences=16, batch_size=8)


@pytest.fixture
def tokens(family_lm):
    return torch.randint(0, family_lm.model.config.vocab_size if hasattr(family_lm.model.config, "vocab_size")
                         else len(family_lm.tokenizer), (3, 8), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("method", ["unstructured", "structured", "lowrank"])
@pytest.mark.parametrize("criterion", ["magnitude", "taylor", "activation"])
@pytest.mark.parametrize("target", [0.8, 0.5, 0.3])
def test_achieved_size_is_within_tolerance(family_lm, calib, method, criterion, target):
    base = family_lm.param_counts()["params_total"]
    pruner = make_method(method, base)
    pruned = pruner.prune(family_lm.clone(), target, CRITERIA[criterion], calib)
    assert abs(pruner.stored_params(pruned) / base - target) <= SIZE_TOLERANCE


def test_lowrank_at_full_rank_reproduces_the_dense_outputs(family_lm, tokens):
    full = family_lm.clone()
    for slot in full.all_slots():
        u, s, vh = CRITERIA["magnitude"].factorize(slot.param_name, slot.weight(), None)
        root = s.sqrt()
        full.factorize(slot, root[:, None] * vh, u * root[None, :])  # forced: factors at full rank
    assert all(slot.factorized for slot in full.all_slots())
    with torch.no_grad():
        assert torch.allclose(logits(full, tokens), logits(family_lm, tokens), atol=1e-4)
        # and the method at a size that keeps everything changes nothing
        kept = LowRank(family_lm.param_counts()["params_total"]).prune(family_lm.clone(), 1.0, CRITERIA["magnitude"], None)
        assert torch.allclose(logits(kept, tokens), logits(family_lm, tokens), atol=1e-4)


def test_lowrank_replaces_matrices_by_two_factors_and_ranks_only_shrink(family_lm):
    pruner = LowRank(family_lm.param_counts()["params_total"])
    half = pruner.prune(family_lm.clone(), 0.5, CRITERIA["magnitude"], None)
    ranks = {slot.name: slot.rank for slot in half.all_slots() if slot.factorized}
    assert ranks
    third = pruner.prune(half.clone(), 0.3, CRITERIA["magnitude"], None)
    for slot in third.all_slots():
        if slot.factorized:
            assert slot.rank <= ranks.get(slot.name, 10**9)


def masked_equivalent(lm, kept_units, kept_columns):
    """The dense model with the removed units' rows and columns (and embedding columns) zeroed: same shapes."""
    masked = lm.clone()
    with torch.no_grad():
        for (kind, layer), kept in kept_units.items():
            (group,) = [g for g in masked.unit_groups(layer) if g.kind == kind]
            removed = sorted(set(range(group.n_units)) - set(kept.tolist()))
            for slot, dim, indices in group.members:
                index = indices[removed].flatten()
                if dim == 0:
                    slot.view()[index] = 0
                    if slot.bias is not None:
                        slot.bias[index] = 0
                else:
                    slot.view()[:, index] = 0
        if kept_columns is not None:
            view = masked.embedding_slot().view()
            removed = torch.ones(view.shape[1], dtype=torch.bool)
            removed[kept_columns] = False
            view[:, removed] = 0
    return masked


@pytest.mark.parametrize("criterion", ["magnitude", "taylor"])
def test_structured_pruning_equals_the_masked_dense_model(family_lm, calib, criterion, tokens):
    pruned, kept_units, kept_columns = family_lm.clone(), {}, {}
    keep_units, factorize = pruned.keep_units, pruned.factorize

    def record_units(group, kept):
        kept_units[(group.kind, group.layer)] = kept
        keep_units(group, kept)

    def record_columns(slot, first, second):
        kept_columns["embed"] = first.abs().sum(0).nonzero().flatten()
        factorize(slot, first, second)

    pruned.keep_units, pruned.factorize = record_units, record_columns
    Structured(family_lm.param_counts()["params_total"]).prune(pruned, 0.5, CRITERIA[criterion], calib)
    # magnitude takes the same fraction of each kind everywhere; data-driven budgets may leave a kind whole
    assert {kind for kind, _ in kept_units} == {"attention", "mlp"} if criterion == "magnitude" else kept_units
    masked = masked_equivalent(family_lm, kept_units, kept_columns.get("embed"))
    with torch.no_grad():
        assert torch.allclose(logits(pruned, tokens), logits(masked, tokens), atol=1e-5)


def test_unstructured_masks_are_monotone_across_stages(family_lm, calib):
    pruner = Unstructured(family_lm.param_counts()["params_total"])
    pruned = pruner.prune(family_lm.clone(), 0.7, CRITERIA["activation"], calib)
    first = {k: v.clone() for k, v in pruned.masks.items()}
    pruned = pruner.prune(pruned, 0.4, CRITERIA["activation"], calib)
    for name, mask in pruned.masks.items():
        assert not torch.any(mask & ~first[name])  # nothing pruned comes back


@pytest.mark.parametrize("method", ["unstructured", "structured", "lowrank"])
def test_pruned_models_reload_with_identical_outputs(family_lm, calib, method, tmp_path, tokens):
    pruned = make_method(method, family_lm.param_counts()["params_total"]).prune(
        family_lm.clone(), 0.4, CRITERIA["activation"], calib)
    loaded = load_model(save_model(pruned, tmp_path / ("p" + pruned.suffix)))
    with torch.no_grad():
        assert torch.equal(logits(loaded, tokens), logits(pruned, tokens))
    assert loaded.param_counts() == pruned.param_counts()
    assert loaded.masks.keys() == pruned.masks.keys()


def test_a_size_below_the_unprunable_part_is_refused(family_lm):
    pruner = Unstructured(family_lm.param_counts()["params_total"], prune_embedding=False)
    with pytest.raises(ValueError, match="fewer parameters than the unprunable"):
        pruner.prune(family_lm.clone(), 0.05, CRITERIA["magnitude"], None)


def test_spread_by_sensitivity_moves_units_to_sensitive_layers_within_the_budget():
    from types import SimpleNamespace

    from prunelab.prune.methods import SPREAD_LIMIT, spread_by_sensitivity

    groups = [SimpleNamespace(n_units=1000) for _ in range(6)]
    costs, kept = [3] * 6, [500] * 6
    sensitivity = [1.0, 0.1, 0.1, 0.1, 0.1, 0.3]  # the first layer ten times as sensitive as most
    spread = spread_by_sensitivity(groups, costs, kept, sensitivity)
    assert sum(k * c for k, c in zip(spread, costs)) <= sum(k * c for k, c in zip(kept, costs))
    assert sum(spread) >= sum(kept) - 1  # rounding loses at most one unit of this cost
    # the bound applies before the common shift: two layers differ by at most twice the limit, plus one unit of
    # flooring and one of the spare handed out
    assert spread[0] == max(spread) and spread[0] - min(spread) <= 2 * SPREAD_LIMIT * 1000 + 2
    assert spread[5] > spread[1] and spread[1] == spread[2] < 500
    assert spread_by_sensitivity(groups, costs, kept, [0.0] * 6) == kept  # nothing measured: nothing moves


def test_lowrank_moves_directions_to_the_layer_whose_truncation_costs_most(family_lm, calib, monkeypatch):
    from prunelab.prune import methods

    criterion, base = CRITERIA["activation"], family_lm.param_counts()["params_total"]

    def ranks_of(pruned):
        return {slot.name: slot.rank if slot.factorized else min(slot.shape) for slot in pruned.block_slots()}

    def layer_sums(ranks, lm):
        return [sum(ranks[slot.name] for slot in lm.layer_slots(layer)) for layer in range(lm.n_layers)]

    weighted = ranks_of(LowRank(base, prune_embedding=False).prune(family_lm.clone(), 0.6, criterion, calib))
    monkeypatch.setattr(methods, "RANK_SENSITIVITY_POWER", 0.0)  # every layer's shares as they are
    even = ranks_of(LowRank(base, prune_embedding=False).prune(family_lm.clone(), 0.6, criterion, calib))
    # what the method measured: each layer truncated alone to the unweighted ranks; the weights come back unchanged
    lm = family_lm.clone()
    factors = {slot.name: criterion.factorize(slot.param_name, slot.weight(), calib) for slot in lm.block_slots()}
    before = {name: tensor.clone() for name, tensor in lm.model.state_dict().items()}
    sensitivity = methods.truncation_sensitivity(lm, factors, even, calib.batches[:2])
    assert all(torch.equal(before[name], tensor) for name, tensor in lm.model.state_dict().items())
    assert len(sensitivity) == lm.n_layers
    if sum(sensitivity) <= 0:  # an untrained model: truncation costs nothing on average, nothing moves
        assert weighted == even
        return
    most, least = max(range(lm.n_layers), key=sensitivity.__getitem__), min(range(lm.n_layers), key=sensitivity.__getitem__)
    assert layer_sums(weighted, lm)[most] >= layer_sums(even, lm)[most]
    assert layer_sums(weighted, lm)[least] <= layer_sums(even, lm)[least]
    assert sum(layer_sums(weighted, lm)) > 0
