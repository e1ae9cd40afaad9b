"""SIGKILL the sweep driver after its first trial finished, then resume: nothing finished is rerun, every row is
there once, and the searcher keeps its budget (a replaced searcher would start num_samples new trials)."""
import json
import subprocess
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest

from prunelab.sweep.store import read_trial_rows
from prunelab.sweep.tuner import resume_sweep

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)

SPEC = dict(name="k", data={"eval_test_utts": 20}, target_sizes=[0.5], criteria=["magnitude"], methods=["lowrank"],
            schedulers=["oneshot"], finetune_steps=2, calibration_sequences=4, search="random", num_samples=3,
            max_concurrent=1, wandb={"mode": "disabled"}, seed=1)
DRIVER = """
import json, sys
from prunelab.sweep.spec import parse_spec
from prunelab.sweep.tuner import run_sweep
run_sweep(parse_spec(json.loads(sys.argv[1])))
"""


def completed_trials(folder):
    results = folder / "results"
    if not results.is_dir():
        return []
    # read as the store reads: each file whole in one open (the driver replaces them while the test polls)
    return [p for p in results.glob("trial-*.parquet")
            if [r["status"] for r in read_trial_rows(str(folder), p.stem.removeprefix("trial-"))] == ["complete"]]


def test_driver_killed_after_a_trial_then_resumed(trained_lm, tmp_path, end_process_group):
    spec = {**SPEC, "base": str(trained_lm[2]), "storage": str(tmp_path)}
    folder = tmp_path / "k"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(spec)], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not completed_trials(folder) and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.5)
    finally:  # the driver and every Ray process it started share its process group
        end_process_group(driver.pid)
        driver.wait()
    finished = completed_trials(folder)
    assert finished, "no trial finished before the kill"
    before = {p.name: (p.stat().st_mtime_ns, pq.read_table(p).to_pylist()) for p in finished}
    deliverables = {d: d.stat().st_mtime_ns for d in (folder / "deliverables").glob("*/*.pt")}

    resume_sweep(folder)

    frame = pd.read_parquet(folder / "results")
    assert frame.trial_id.nunique() == 3 and len(frame) == 3  # num_samples honoured, one row per trial
    assert (frame.status == "complete").all()
    for name, (mtime, rows) in before.items():  # finished trials were not rerun: their files are untouched
        path = folder / "results" / name
        assert path.stat().st_mtime_ns == mtime and pq.read_table(path).to_pylist() == rows
    for path, mtime in deliverables.items():  # nor were their models pruned and evaluated again
        assert path.stat().st_mtime_ns == mtime
