"""A real two-node Ray cluster on loopback with token auth: trials run on both nodes; stop ends every process."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prunelab import cluster
from prunelab.errors import PrunelabError
from prunelab.procs import descendants

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


@pytest.fixture
def two_nodes(tmp_path):
    folder = tmp_path / "cluster"
    state = cluster.start(folder, nodes=2, cpus_per_node=1)
    try:
        yield folder, state
    finally:
        cluster.stop(folder)
        assert cluster.session_pids(state["temp_dir"]) == []


def test_a_sweep_on_two_loopback_nodes_runs_trials_on_both(two_nodes, trained_lm, tmp_path):
    folder, state = two_nodes
    assert state["address"].startswith("127.0.0.2:")
    assert oct((folder / "token").stat().st_mode & 0o777) == "0o600"
    spec = dict(
        name="two", base=str(trained_lm[2]), data={"eval_test_utts": 20}, target_sizes=[0.5],
        criteria=["magnitude"], methods=["lowrank", "structured"], schedulers=["oneshot"], finetune_steps=2,
        calibration_sequences=8, search="grid", max_concurrent=2, resources={"cpu": 1}, wandb={"mode": "disabled"},
        storage=f"file://{tmp_path}/runs")  # a URI, as a cluster without a shared folder would use
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(spec))
    # the driver is a separate process, as a user's is: Ray reads its auth settings once per process
    done = subprocess.run([sys.executable, "-m", "prunelab.cli", "sweep", str(tmp_path / "two.yaml"),
                           "--address", state["address"]], capture_output=True, text=True, timeout=400,
                          env={**os.environ, **cluster.auth_env(folder)}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "best configuration per target size" in done.stdout
    frame = pd.read_parquet(tmp_path / "runs" / "two" / "results")
    assert len(frame) == 2 and (frame.status == "complete").all()
    assert frame.node.nunique() == 2  # one trial per node: each node has one CPU and each trial needs one


def test_starting_twice_in_one_folder_is_refused_and_stop_needs_a_cluster(tmp_path):
    with pytest.raises(PrunelabError, match="holds no local cluster"):
        cluster.stop(tmp_path)
    (tmp_path / cluster.STATE_FILE).write_text('{"address": "127.0.0.2:1"}')
    with pytest.raises(PrunelabError, match="already records a cluster"):
        cluster.start(tmp_path)


def test_a_worker_node_killed_mid_trial_is_survived_by_retrying_the_trial_on_the_other_node(two_nodes, trained_lm,
                                                                                          tmp_path):
    folder, state = two_nodes
    spec = dict(
        name="survive", base=str(trained_lm[2]), data={"eval_test_utts": 20}, target_sizes=[0.7, 0.5, 0.3],
        criteria=["magnitude"], methods=["lowrank", "structured"], schedulers=["incremental"],
        schedule={"stages": {"low": 3, "high": 3}}, finetune_steps=30, calibration_sequences=8, search="grid",
        max_concurrent=2, resources={"cpu": 1}, wandb={"mode": "disabled"}, storage=str(tmp_path / "runs"))
    (tmp_path / "survive.yaml").write_text(yaml.safe_dump(spec))
    driver = subprocess.Popen([sys.executable, "-m", "prunelab.cli", "sweep", str(tmp_path / "survive.yaml"),
                               "--address", state["address"]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, **cluster.auth_env(folder)}, cwd=tmp_path)
    sweep_dir = tmp_path / "runs" / "survive"
    deadline = time.monotonic() + 240
    # both trials running, and the driver has taken in a stage of each (its row, with that stage's checkpoint)
    while time.monotonic() < deadline and driver.poll() is None:
        files = list((sweep_dir / "results").glob("trial-*.parquet"))
        if len(files) == 2:
            break
        time.sleep(0.3)
    # the second node: its raylet (socket raylet.1) and every process under it, i.e. its trial's worker
    (raylet,) = [pid for pid in cluster.session_pids(state["temp_dir"])
                 if "sockets/raylet.1" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]
    victims = descendants([raylet])
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    out, err = driver.communicate(timeout=400)
    assert driver.returncode == 0, err[-2000:]
    frame = pd.read_parquet(sweep_dir / "results")
    assert frame.trial_id.nunique() == 2 and len(frame) == 6 and (frame.status == "complete").all()
    assert not frame.duplicated(["trial_id", "target_size"]).any()
    # the trial on the killed node went on from its checkpoint on the surviving node: its rows name two nodes
    assert frame.groupby("trial_id").node.nunique().max() == 2
    assert frame[frame.target_size == 0.3].node.nunique() == 1

