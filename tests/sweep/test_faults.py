"""The sweep driver SIGKILLed at five points (start, mid-trial, mid-checkpoint, mid-result-write, between trials),
then `prunelab resume`: finished trials kept and not rerun, every row present once, the searcher's budget kept,
no torn results file, no header-only W&B run, and no process of the killed sweep left behind."""
import os
import signal
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from prunelab.cli import main

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)

SPEC = dict(name="f", data={"eval_test_utts": 20}, target_sizes=[0.6, 0.4], criteria=["magnitude", "activation"],
            methods=["lowrank"], schedulers=["oneshot", "incremental"], schedule={"stages": {"low": 2, "high": 2}},
            finetune_steps=2, calibration_sequences=4, search="random", num_samples=3, max_concurrent=1,
            wandb={"mode": "offline"}, seed=5)


def finished_files(folder):
    files = sorted((folder / "results").glob("trial-*.parquet")) if (folder / "results").is_dir() else []
    return {p.name: (p.stat().st_mtime_ns, pq.read_table(p).to_pylist()) for p in files
            if set(pq.read_table(p).column("status").to_pylist()) == {"complete"}}


@pytest.mark.parametrize("point", ["spec-written", "trial-result:2", "checkpoint:2", "result-write:1",
                                   "trial-complete:1"])
def test_driver_killed_then_resumed_loses_nothing_and_reruns_nothing(point, trained_lm, tmp_path, capsys,
                                                                     end_process_group, monkeypatch,
                                                                     study_matches_results):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({**SPEC, "base": str(trained_lm[2]), "storage": str(tmp_path)}))
    monkeypatch.chdir(tmp_path)  # reports/ are written under the working folder
    driver = subprocess.Popen([sys.executable, "-m", "prunelab.cli", "sweep", str(spec_path)], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
                              env={**os.environ, "PRUNELAB_FAULT": point})
    try:
        assert driver.wait(timeout=300) == -signal.SIGKILL  # it died at the fault point, not of something else
    finally:  # the Ray and wandb processes it started share its process group: end exactly those
        end_process_group(driver.pid)
    folder = tmp_path / "f"
    before = finished_files(folder)
    deliverables = {d: d.stat().st_mtime_ns for d in (folder / "deliverables").glob("*/*.pt")}

    assert main(["resume", str(folder)]) == 0
    assert "best configuration per target size" in capsys.readouterr().out

    frame = pd.read_parquet(folder / "results")
    assert frame.trial_id.nunique() == 3  # num_samples honoured: the searcher was restored, not replaced
    assert not frame.duplicated(["trial_id", "target_size"]).any() and (frame.status == "complete").all()
    for _trial_id, rows in frame.groupby("trial_id"):
        expected = 2 if rows.scheduler.iloc[0] == "incremental" else 1
        assert len(rows) == expected
    for name, (mtime, rows) in before.items():  # finished trials were not rerun
        path = folder / "results" / name
        assert path.stat().st_mtime_ns == mtime and pq.read_table(path).to_pylist() == rows
    for path, mtime in deliverables.items():
        if path.parent.name in {rows[0]["trial_id"] for _, rows in before.values()}:
            assert path.stat().st_mtime_ns == mtime
    for run_file in (folder / "wandb").glob("**/run-*.wandb"):
        assert run_file.stat().st_size > 100, f"header-only W&B run {run_file}"
    study_matches_results(folder, "f")  # the searcher's study: each finished trial once, with the stored values
