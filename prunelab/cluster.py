"""A Ray cluster of several nodes on this host's loopback, with token authentication: for tests and laptops.

Every node is a `ray start` process tree bound to 127.0.0.2 (Ray rewrites 127.0.0.1 to the host's external
address, 127.0.0.2 stays on loopback), the dashboard is off, and a random token in FOLDER/token (mode 0600)
is required by every node and driver (`RAY_AUTH_MODE=token`, `RAY_AUTH_TOKEN_PATH`). FOLDER/cluster.json
records the address and the Ray session folder; `stop` ends exactly the processes of that session (found
by the session folder in their command lines, and their descendants), never another Ray on the host.

    prunelab cluster start --nodes 2 --cpus-per-node 1     # prints the address and the environment to use
    prunelab cluster stop
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prunelab.atomic import atomic_write
from prunelab.errors import PrunelabError
from prunelab.procs import alive, descendants, processes

DEFAULT_FOLDER = ".ray-cluster"
LOOPBACK = "127.0.0.2"
STATE_FILE = "cluster.json"


def _ray_executable() -> str:
    found = Path(sys.executable).with_name("ray")
    return str(found) if found.exists() else (shutil.which("ray") or "ray")


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def auth_env(folder: str | Path) -> dict[str, str]:
    """The environment every `ray` command and driver of the cluster in `folder` needs."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(Path(folder).resolve() / "token"),
            "RAY_worker_niceness": "0"}


def read_state(folder: str | Path) -> dict:
    path = Path(folder) / STATE_FILE
    if not path.exists():
        raise PrunelabError(f"{folder} holds no local cluster ({STATE_FILE} missing); start one with `prunelab cluster start`")
    return json.loads(path.read_text())


def start(folder: str | Path = DEFAULT_FOLDER, nodes: int = 2, cpus_per_node: int = 1,
          object_store_mb: int = 200, host: str = LOOPBACK) -> dict:
    """Start a head and `nodes - 1` worker nodes; returns the state (address, session folder, ...)."""
    if nodes < 1 or cpus_per_node < 1:
        raise PrunelabError(f"--nodes and --cpus-per-node must be at least 1, got {nodes} and {cpus_per_node}")
    folder = Path(folder)
    if (folder / STATE_FILE).exists():
        raise PrunelabError(f"{folder} already records a cluster at {read_state(folder)['address']}; "
                            f"stop it first (`prunelab cluster stop --folder {folder}`)")
    folder.mkdir(parents=True, exist_ok=True)
    token = folder / "token"
    token.write_text(secrets.token_hex(32) + "\n")
    token.chmod(0o600)
    # Ray's socket paths must stay short: its session folder lives under /tmp, named in the state file
    temp_dir = tempfile.mkdtemp(prefix="prl-ray-")
    port = _free_port(host)
    address = f"{host}:{port}"
    env = {**os.environ, **auth_env(folder)}
    common = ["--node-ip-address", host, "--num-cpus", str(cpus_per_node), "--disable-usage-stats",
              "--object-store-memory", str(object_store_mb * 1024 * 1024)]
    state = {"address": address, "temp_dir": temp_dir, "nodes": nodes, "cpus_per_node": cpus_per_node,
             "token_path": str(token.resolve())}
    atomic_write(folder / STATE_FILE, lambda handle: handle.write(json.dumps(state, indent=2).encode()))
    commands = [[_ray_executable(), "start", "--head", "--port", str(port), "--include-dashboard", "false",
                 "--temp-dir", temp_dir, *common]]
    commands += [[_ray_executable(), "start", "--address", address, *common] for _ in range(nodes - 1)]
    for command in commands:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            stop(folder)
            raise PrunelabError(f"`{' '.join(command[:3])}` failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return state


def session_pids(temp_dir: str) -> list[int]:
    """PIDs of every process whose command line names `temp_dir`, and all their descendants."""
    table = processes()
    roots = [p.pid for p in table.values() if temp_dir in p.args]
    return [pid for pid in descendants(roots, table) if pid != os.getpid()]


def stop(folder: str | Path = DEFAULT_FOLDER, grace_s: float = 10.0) -> list[int]:
    """End the cluster recorded in `folder` (SIGTERM, then SIGKILL for what outlives `grace_s`: Ray's agents
    ignore SIGTERM); returns the PIDs it ended and removes the state, token and session folder."""
    folder = Path(folder)
    state = read_state(folder)
    pids = session_pids(state["temp_dir"])
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        pids_left = [p for p in pids if alive(p)]
        if not pids_left:
            break
    shutil.rmtree(state["temp_dir"], ignore_errors=True)
    for name in (STATE_FILE, "token"):
        (folder / name).unlink(missing_ok=True)
    return pids
