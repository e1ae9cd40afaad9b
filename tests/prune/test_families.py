"""Every criterion x method x scheduler on every model family (`family_lm`), end to end through
`run_pruning` with fine-tuning: sizes, masks after fine-tuning, and deliverables that reload exactly."""
import pytest
import torch

from prunelab.lm.load import load_model, save_model
from prunelab.lm.score import sentence_logprobs
from prunelab.prune.run import PruneConfig, run_pruning
from prunelab.prune.schedules import Schedule

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)

SENTENCES = ["the cat sat on the mat", "a quick test of the model", "of the people by the people"]


@pytest.mark.parametrize("scheduler", ["oneshot", "incremental"])
@pytest.mark.parametrize("method", ["unstructured", "structured", "lowrank"])
@pytest.mark.parametrize("criterion", ["magnitude", "taylor", "activation"])
def test_every_configuration_prunes_every_family(family_lm, small_corpus, criterion, method, scheduler, tmp_path):
    incremental = scheduler == "incremental"
    config = PruneConfig(criterion, method, scheduler, 0.4, deliver=(0.7,) if incremental else (), finetune_steps=3,
                         batch_size=4, calibration_sequences=8, schedule=Schedule("polynomial", 2, 1.0))
    delivered = [stage for stage in run_pruning(family_lm, small_corpus, config, log=lambda line: None)
                 if stage.delivered]
    assert [d.target_size for d in delivered] == ([0.7, 0.4] if incremental else [0.4])
    for deliverable in delivered:
        assert abs(deliverable.achieved_size - deliverable.target_size) <= 0.01
    last = delivered[-1].model
    for name, mask in last.masks.items():  # fine-tuning kept the pruned weights at zero
        weight = last.slot(name.removesuffix(".weight")).view()
        assert torch.all(weight[~mask] == 0) and torch.count_nonzero(weight[mask]) > 0.99 * mask.sum()
    assert bool(last.masks) == (method == "unstructured")
    if criterion == "activation" and incremental:  # one reload per family and method is enough
        loaded = load_model(save_model(last, tmp_path / ("d" + last.suffix), {"note": "x"}))
        assert sentence_logprobs(loaded, SENTENCES) == sentence_logprobs(last, SENTENCES)
        assert loaded.info["note"] == "x" and loaded.param_counts() == last.param_counts()
