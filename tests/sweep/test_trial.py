"""The trial body without Ray (`prune_trial`): what benchmarks/gpu_check.sh runs on a machine without Ray."""
from pathlib import Path

import pytest

from prunelab.evaluate.evaluator import Benchmark
from prunelab.lm.load import load_model, model_payload
from prunelab.sweep.spec import parse_spec
from prunelab.sweep.trial import prune_trial

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def test_a_trial_runs_without_ray_and_reports_each_stage_with_a_checkpoint(trained_lm, tmp_path):
    spec = parse_spec(dict(name="plain", base=str(trained_lm[2]), data={"eval_test_utts": 20, "speed_sentences": 16}, target_sizes=[0.6, 0.4],
                           criteria=["magnitude"], methods=["lowrank"], schedulers=["incremental"],
                           schedule={"stages": {"low": 2, "high": 2}}, finetune_steps=2, calibration_sequences=4))
    config = {"criterion": "magnitude", "method": "lowrank", "scheduler": "incremental", "shape": "polynomial",
              "stages": 2, "exponent": 1.0, "budget_split": 1.0, "lr": 3e-4, "finetune_steps": 2, "seed": 0,
              "incremental_mode": "multi-size"}
    reports = []

    def report(metrics: dict, folder: str) -> None:
        reports.append((metrics, sorted(p.name for p in Path(folder).iterdir())))

    base = load_model(trained_lm[2])
    prune_trial(config, model_payload(base), spec.model_dump(), str(tmp_path), "plain-1", "here/node", None, report)
    delivered = [m for m, _ in reports if m["delivered"]]
    assert [m["target_size"] for m in delivered] == [0.6, 0.4] and reports[-1][0]["final"]
    assert all(abs(m["achieved_size"] - m["target_size"]) <= 0.01 and 0 < m["wer"] < 2 for m in delivered)
    assert all(files == ["stage.pt"] for _, files in reports)
    assert all(Path(m["checkpoint"]).is_file() for m in delivered)
    assert reports[-1][0]["wer_mean"] == (delivered[0]["wer"] + delivered[1]["wer"]) / 2
    info = load_model(delivered[-1]["checkpoint"]).info
    speed_text = Benchmark.load(max_test_utts=20).speed_sentences(16)
    metrics = info["metrics"]  # the info shape of every deliverable (prunelab.prune.deliver), as `prunelab prune` writes
    assert metrics["speed_tokens"] == sum(len(base.tokenizer.ids(s)) - 1 for s in speed_text)  # data.speed_sentences
    assert "ppl_valid" in metrics and "ppl_test" not in metrics  # a trial records ppl_valid only
    assert info["trial_id"] and info["config"]["target_size"] == 0.4 and info["achieved_size"] == delivered[-1]["achieved_size"]
