import torch

from prunelab.prune.calibration import Calibration
from prunelab.prune.criteria import CRITERIA, get_criterion

NAME = "blocks.0.ff.up.weight"


def crafted_calibration(weight):
    # input feature 0 is almost never active, feature 1 carries large activations;
    # the gradient is large where the weight is small (row 1) and tiny where it is large (row 0)
    taylor = torch.tensor([[0.01, 0.01], [2.0, 2.0]]) * weight.abs()
    return Calibration(taylor={NAME: taylor}, fisher={NAME: taylor ** 2},
                       input_norms={NAME: torch.tensor([0.001, 10.0])}, n_sequences=1)


def test_magnitude_scores_are_absolute_values_and_removes_exactly_the_smallest():
    weight = torch.tensor([[3.0, -0.5], [-1.0, 2.0]])
    scores = CRITERIA["magnitude"](NAME, weight, None)
    assert torch.equal(scores, weight.abs())
    kept = scores.flatten().topk(2).indices.sort().values.tolist()
    assert kept == [0, 3]  # 3.0 and 2.0 survive, -0.5 and -1.0 go


def test_data_driven_criteria_rank_differently_from_magnitude_on_a_crafted_case():
    weight = torch.tensor([[3.0, 0.5], [1.0, 2.0]])
    calib = crafted_calibration(weight)
    order = {name: CRITERIA[name](NAME, weight, calib).flatten().argsort(descending=True).tolist()
             for name in CRITERIA}
    assert order["magnitude"][0] == 0                 # |3.0| is the largest weight
    assert order["activation"][0] == 3                # 2.0 * ||x_1|| = 20 beats 3.0 * 0.001
    assert order["taylor"][0] in (2, 3)               # row 1 has the large gradients
    assert order["magnitude"] != order["activation"] and order["magnitude"] != order["taylor"]


def test_factorizations_reconstruct_the_matrix_at_full_rank():
    torch.manual_seed(0)
    weight = torch.randn(6, 4)
    calib = Calibration(taylor={NAME: torch.rand(6, 4)}, fisher={NAME: torch.rand(6, 4)},
                        input_norms={NAME: torch.rand(4) + 0.1}, n_sequences=1)
    for criterion in CRITERIA.values():
        u, s, vh = criterion.factorize(NAME, weight, calib)
        assert torch.allclose((u * s) @ vh, weight, atol=1e-5)
        assert torch.all(s[:-1] >= s[1:])


def test_unknown_criterion_names_the_choices():
    try:
        get_criterion("random")
    except ValueError as error:
        assert "magnitude, taylor, activation" in str(error)
    else:
        raise AssertionError("expected a ValueError")
