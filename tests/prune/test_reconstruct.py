"""Reconstruction: the closed-form pieces on synthetic data, and the layer-by-layer refit on every model family."""
import pytest
import torch

from prunelab.lm.train import random_batch
from prunelab.prune.calibration import calibrate
from prunelab.prune.criteria import CRITERIA
from prunelab.prune.methods import make_method
from prunelab.prune.reconstruct import (
    _bias,
    _low_rank,
    _masked,
    _Moments,
    _solve,
    compensated_choice,
    reconstruct,
)

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def _moments(x, y):
    moments = _Moments.empty(x.shape[1], y.shape[1], x.device)
    moments.add(x, y)
    return moments


def test_least_squares_recovers_a_linear_map_and_its_bias():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 12, generator=generator, dtype=torch.float64) + 3.0  # off-centre: the bias matters
    weight, bias = torch.randn(5, 12, generator=generator, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    moments = _moments(x, x @ weight.t() + bias)
    fitted, _, _ = _solve(moments, with_bias=True, ridge=1e-8)
    # products are taken in float32 (sums in float64): recovered to about 1e-4
    assert torch.allclose(fitted, weight, atol=1e-3) and torch.allclose(_bias(moments, fitted), bias, atol=1e-3)


def test_whitened_low_rank_beats_plain_truncation_on_correlated_inputs():
    generator = torch.Generator().manual_seed(1)
    mixing = torch.randn(16, 16, generator=generator, dtype=torch.float64) * torch.logspace(0, -3, 16, dtype=torch.float64)
    x = torch.randn(3000, 16, generator=generator, dtype=torch.float64) @ mixing
    weight = torch.randn(8, 16, generator=generator, dtype=torch.float64)
    _, _, factor = _solve(_moments(x, x @ weight.t()), with_bias=False, ridge=1e-10)
    first, second = _low_rank(weight, factor, 3)
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    plain = (u[:, :3] * s[:3]) @ vh[:3]
    error = lambda w: (x @ (w - weight).t()).pow(2).sum()  # noqa: E731
    assert error(second @ first) < 0.5 * error(plain)
    full_first, full_second = _low_rank(weight, factor, 8)  # full rank: the matrix itself
    assert torch.allclose(full_second @ full_first, weight, atol=1e-6)


def test_masked_update_keeps_the_mask_and_lowers_the_error_of_plain_masking():
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(2000, 10, generator=generator, dtype=torch.float64) @ torch.randn(10, 10, generator=generator,
                                                                                   dtype=torch.float64)
    weight = torch.randn(6, 10, generator=generator, dtype=torch.float64)
    mask = torch.rand(6, 10, generator=generator) > 0.5
    gram = x.t() @ x + 1e-6 * torch.eye(10, dtype=torch.float64)
    updated = _masked(weight, gram, mask, block=4)  # blocks smaller than the matrix: the cross-block update runs
    assert torch.all(updated[~mask] == 0)
    error = lambda w: (x @ (w - weight).t()).pow(2).sum()  # noqa: E731
    assert error(updated) < 0.95 * error(weight * mask)
    assert torch.allclose(_masked(weight, gram, torch.ones_like(mask)), weight)


def test_compensated_choice_keeps_one_of_two_redundant_units():
    """Two strong, nearly equal input features and a weaker independent one: a norm-based choice keeps the two
    strong ones; after the refit one of them does the work of both, so the choice that counts the refit keeps one
    and the independent feature. Block units (two columns each) are chosen the same way."""
    generator = torch.Generator().manual_seed(3)
    strong = 5 * torch.randn(3000, 1, generator=generator, dtype=torch.float64)
    x = torch.cat([strong, strong + 0.01 * torch.randn(3000, 1, generator=generator, dtype=torch.float64),
                   torch.randn(3000, 1, generator=generator, dtype=torch.float64)], dim=1)
    weight = torch.tensor([[1.0, 1.0, 1.0], [0.5, -0.2, 2.0]], dtype=torch.float64)
    kept = compensated_choice(weight, x.t() @ x, torch.arange(3).view(3, 1), keep=2, ridge=1e-6)
    assert 2 in kept.tolist() and len(kept) == 2
    blocks = torch.cat([x, x], dim=1)[:, [0, 3, 1, 4, 2, 5]]  # unit u is columns 2u and 2u+1
    kept = compensated_choice(torch.cat([weight, weight], 1)[:, [0, 3, 1, 4, 2, 5]], blocks.t() @ blocks,
                              torch.arange(6).view(3, 2), keep=2, ridge=1e-6)
    assert kept.tolist() in ([0, 2], [1, 2])


def _batches(lm, corpus, seed, n=4):
    stream = lm.tokenizer.stream(corpus.train)
    generator = torch.Generator().manual_seed(seed)
    return [random_batch(stream, 8, min(lm.context, 16), generator)[0] for _ in range(n)]


@pytest.mark.parametrize("method", ["structured", "lowrank", "unstructured"])
def test_reconstruction_brings_every_family_closer_to_the_unpruned_model(family_lm, small_corpus, method):
    """On held-out text: the final hidden states of the refit model are nearer the unpruned model's, shapes, ranks
    and masks stay as the method left them."""
    calib = calibrate(family_lm.densified(), small_corpus, n_sequences=8, batch_size=4, gradients=False)
    pruned = make_method(method, family_lm.param_counts()["params_total"], prune_embedding=False).prune(
        family_lm.clone(), 0.7, CRITERIA["activation"], calib)
    refit = reconstruct(pruned.clone(), family_lm, _batches(family_lm, small_corpus, seed=1, n=24))
    assert refit.param_counts() == pruned.param_counts()
    assert {s.name: (s.shape, s.rank) for s in refit.all_slots()} == {s.name: (s.shape, s.rank) for s in pruned.all_slots()}
    for name, mask in refit.masks.items():
        assert torch.all(refit.slot(name.removesuffix(".weight")).view()[~mask] == 0)
    with torch.no_grad():
        error = lambda lm: sum((lm.hidden(t) - family_lm.hidden(t)).pow(2).sum()  # noqa: E731
                               for t in _batches(family_lm, small_corpus, seed=2))
        assert error(refit) < error(pruned)


def test_structured_units_chosen_in_reconstruction_on_every_family(family_lm, small_corpus):
    """A structured method that leaves the choice to reconstruction prunes to the same shapes as one that chooses
    by the criterion, and the refit lands nearer the unpruned model than the criterion's choice left unrefit."""
    calib = calibrate(family_lm.densified(), small_corpus, n_sequences=8, batch_size=4, gradients=False)
    params = family_lm.param_counts()["params_total"]
    chosen = make_method("structured", params, prune_embedding=False).prune(
        family_lm.clone(), 0.7, CRITERIA["activation"], calib)
    method = make_method("structured", params, prune_embedding=False, leave_choice=True)
    left = method.prune(family_lm.clone(), 0.7, CRITERIA["activation"], calib)
    choice = method.left_choice()
    assert choice and left.param_counts() == family_lm.param_counts() and method.left_choice() == {}
    refit = reconstruct(left, family_lm, _batches(family_lm, small_corpus, seed=1, n=24), choose=choice)
    assert {s.name: s.shape for s in refit.all_slots()} == {s.name: s.shape for s in chosen.all_slots()}
    with torch.no_grad():
        error = lambda lm: sum((lm.hidden(t) - family_lm.hidden(t)).pow(2).sum()  # noqa: E731
                               for t in _batches(family_lm, small_corpus, seed=2))
        assert error(refit) < error(chosen)

