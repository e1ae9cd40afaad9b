"""The GPU path: a model adapter moved to CUDA scores, calibrates, prunes and fine-tunes there with the same
results as on the CPU (float32 scoring; fine-tuning in bf16 autocast). Skipped, with the reason, without CUDA."""
import pytest
import torch

from prunelab.lm.score import sentence_logprobs
from prunelab.prune.run import PruneConfig, run_pruning
from prunelab.sweep.trial import trial_device

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")]

SENTENCES = ["the cat sat on the mat", "of the people by the people"]


def test_a_trial_asking_for_a_gpu_runs_there():
    assert trial_device(0.5) == "cuda" and trial_device(0) == "cpu"


@pytest.mark.parametrize("method", ["unstructured", "structured", "lowrank"])
def test_pruning_on_the_gpu_matches_the_cpu(trained_lm, small_corpus, method):
    cpu = trained_lm[0].clone()
    gpu = trained_lm[0].clone().to("cuda")
    assert sentence_logprobs(gpu, SENTENCES) == pytest.approx(sentence_logprobs(cpu, SENTENCES), abs=1e-3)
    config = PruneConfig("activation", method, "oneshot", 0.5, finetune_steps=0, calibration_sequences=8)
    (on_cpu,) = run_pruning(cpu, small_corpus, config, log=lambda line: None)
    (on_gpu,) = run_pruning(gpu, small_corpus, config, log=lambda line: None)
    assert on_gpu.model.device.type == "cuda" and abs(on_gpu.achieved_size - on_cpu.achieved_size) < 0.002
    assert sentence_logprobs(on_gpu.model, SENTENCES) == pytest.approx(sentence_logprobs(on_cpu.model, SENTENCES), rel=0.02)
