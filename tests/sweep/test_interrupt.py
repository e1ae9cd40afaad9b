"""Ctrl-C (SIGINT to the sweep's whole process group, as a terminal sends it) stops the sweep cleanly: state
saved, exit code 130, the resume command printed; `prunelab resume` then finishes it with every row once."""
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from prunelab.cli import main
from prunelab.sweep.tuner import sweep_finished

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)

SPEC = dict(name="i", data={"eval_test_utts": 20}, target_sizes=[0.5], criteria=["magnitude"], methods=["lowrank"],
            schedulers=["oneshot"], finetune_steps=2, calibration_sequences=4, search="random", num_samples=3,
            max_concurrent=1, wandb={"mode": "offline"}, seed=2)


def test_ctrl_c_saves_state_prints_the_resume_command_and_resume_finishes(trained_lm, tmp_path, capsys,
                                                                         end_process_group, monkeypatch):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({**SPEC, "base": str(trained_lm[2]), "storage": str(tmp_path)}))
    folder = tmp_path / "i"
    monkeypatch.chdir(tmp_path)  # reports/ are written under the working folder
    driver = subprocess.Popen([sys.executable, "-m", "prunelab.cli", "sweep", str(spec_path)], start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 240
        while not list((folder / "results").glob("trial-*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.5)
        os.killpg(driver.pid, signal.SIGINT)
        out, _ = driver.communicate(timeout=240)
    finally:
        end_process_group(driver.pid)  # whatever of that sweep outlived the Ctrl-C
    assert driver.returncode == 130, out[-2000:]
    assert f"prunelab resume {folder}" in out
    assert not sweep_finished(str(folder))

    assert main(["resume", str(folder)]) == 0
    frame = pd.read_parquet(folder / "results")
    assert frame.trial_id.nunique() == 3 and len(frame) == 3 and (frame.status == "complete").all()
    assert sweep_finished(str(folder))
