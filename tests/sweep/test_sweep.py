"""A real sweep on a real local Ray: two trials, offline W&B runs, the Parquet store and `best`."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from prunelab.sweep.query import best_configs

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def test_every_trial_writes_one_row_per_delivered_size(finished_sweep):
    spec, folder = finished_sweep
    frame = pd.read_parquet(folder / "results")
    assert frame.trial_id.nunique() == 2 and (frame.status == "complete").all()
    for _trial_id, rows in frame.groupby("trial_id"):
        expected = [0.6, 0.4] if rows.scheduler.iloc[0] == "incremental" else [rows.target_size.iloc[0]]
        assert sorted(rows.target_size, reverse=True) == expected
        assert not rows.duplicated(["trial_id", "target_size"]).any()
    assert ((frame.achieved_size - frame.target_size).abs() <= 0.01).all()
    assert frame.wer.between(0, 2).all() and (frame.speed_ratio > 0).all() and (frame.flop_ratio <= 1.0 + 1e-9).all()
    for path in frame.checkpoint:
        assert Path(path).is_file()


def test_best_agrees_with_a_direct_pandas_query(finished_sweep):
    _, folder = finished_sweep
    frame = pd.read_parquet(folder / "results")
    size = frame.target_size.value_counts().idxmax()
    best = best_configs(folder, size, "wer", 1)[0]
    # equal WERs (the guard gives every deliverable that keeps the 1-best the same WER): lower perplexity first,
    # then speed, as `prunelab best` documents
    ranked = frame[frame.target_size == size].sort_values(["wer", "ppl_valid", "speed_ratio"],
                                                          ascending=[True, True, False])
    assert (best["trial_id"], best["wer"]) == (ranked.trial_id.iloc[0], ranked.wer.iloc[0])


def test_each_trial_has_a_complete_offline_wandb_run(finished_sweep):
    _, folder = finished_sweep
    runs = sorted((folder / "wandb").glob("**/offline-run-*"))
    assert len(runs) == 2
    for run in runs:
        (run_file,) = run.glob("run-*.wandb")
        assert run_file.stat().st_size > 1000  # not header-only
        out = subprocess.run([str(Path(sys.executable).parent / "wandb"), "leet", "inspect", "--json", str(run)],
                             capture_output=True, text=True, timeout=120)
        history = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        assert any(record.get("type") == "history" for record in history)
