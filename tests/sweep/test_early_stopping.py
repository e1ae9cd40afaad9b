"""ASHA on a real local Ray: trials whose perplexity lags after a stage are stopped and marked so in the store."""
import pandas as pd
import pytest

from prunelab.sweep.spec import parse_spec
from prunelab.sweep.tuner import run_sweep

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def test_asha_stops_lagging_trials_and_the_store_marks_them(trained_lm, tmp_path):
    spec = parse_spec(dict(
        name="asha", base=str(trained_lm[2]), data={"eval_test_utts": 20}, target_sizes=[0.3],
        criteria=["magnitude", "activation"], methods=["lowrank", "structured", "unstructured"],
        schedulers=["incremental"], schedule={"stages": {"low": 4, "high": 4}}, finetune_steps=4,
        calibration_sequences=8, search="random", num_samples=6, max_concurrent=1, early_stopping=True,
        wandb={"mode": "disabled"}, storage=str(tmp_path), seed=0))
    grid = run_sweep(spec)
    stopped = [r for r in grid if r.metrics.get("stage", 0) < r.metrics.get("n_stages", 0)]
    finished = [r for r in grid if r.metrics.get("stage") == r.metrics.get("n_stages")]
    assert stopped and finished  # ASHA let some trials run to the end and cut others short
    frame = pd.read_parquet(tmp_path / "asha" / "results")
    assert set(frame.trial_id) == {r.metrics["trial_id"] for r in grid}
    for result in stopped:
        rows = frame[frame.trial_id == result.metrics["trial_id"]]
        assert (rows.status == "stopped").all() and rows.wer.isna().all() and rows.target_size.isna().all()
        assert rows.ppl_valid.notna().all()
    for result in finished:
        rows = frame[frame.trial_id == result.metrics["trial_id"]]
        assert list(rows.status) == ["complete"] and list(rows.target_size) == [0.3]
