"""A real two-node Ray cluster on loopback with token auth: trials run on both nodes; stop ends every process."""
import os

import pandas as pd
import pytest

from prunelab import cluster
from prunelab.errors import PrunelabError
from prunelab.sweep.spec import parse_spec
from prunelab.sweep.tuner import run_sweep


@pytest.fixture
def two_nodes(tmp_path, monkeypatch):
    folder = tmp_path / "cluster"
    state = cluster.start(folder, nodes=2, cpus_per_node=1)
    for key, value in cluster.auth_env(folder).items():
        monkeypatch.setenv(key, value)
    try:
        yield folder, state
    finally:
        cluster.stop(folder)
        assert cluster.session_pids(state["temp_dir"]) == []


def test_a_sweep_on_two_loopback_nodes_runs_trials_on_both(two_nodes, trained_lm, tmp_path):
    folder, state = two_nodes
    assert state["address"].startswith("127.0.0.2:")
    assert oct((folder / "token").stat().st_mode & 0o777) == "0o600"
    assert len(cluster.node_ids(state["address"])) == 2
    spec = parse_spec(dict(
        name="two", base=str(trained_lm[2]), data={"eval_test_utts": 20}, target_sizes=[0.5],
        criteria=["magnitude"], methods=["lowrank", "structured"], schedulers=["oneshot"], finetune_steps=2,
        calibration_sequences=8, search="grid", max_concurrent=2, resources={"cpu": 1}, wandb={"mode": "disabled"},
        storage=str(tmp_path / "runs")))
    run_sweep(spec, address=state["address"])
    frame = pd.read_parquet(tmp_path / "runs" / "two" / "results")
    assert len(frame) == 2 and (frame.status == "complete").all()
    assert frame.node.nunique() == 2  # one trial per node: each node has one CPU and each trial needs one


def test_starting_twice_in_one_folder_is_refused_and_stop_needs_a_cluster(tmp_path):
    with pytest.raises(PrunelabError, match="holds no local cluster"):
        cluster.stop(tmp_path)
    (tmp_path / cluster.STATE_FILE).write_text('{"address": "127.0.0.2:1"}')
    with pytest.raises(PrunelabError, match="already records a cluster"):
        cluster.start(tmp_path)
