"""Figure 3: trials/hour of the demo sweep with 1 and 2 concurrent trials on one node, and with 2 concurrent
trials on a two-node loopback cluster (token auth, 1 CPU per node) against one node with 2 CPUs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, also when run as the child driver
from sweep_throughput import measure_sweep  # noqa: E402

from prunelab import cluster  # noqa: E402
from prunelab.lm.base import train_or_load_base  # noqa: E402
from prunelab.sweep.spec import load_spec  # noqa: E402

SPEC, SAMPLES = "sweeps/demo.yaml", 4


def measure(args) -> dict:
    _, _, _, base = train_or_load_base("tiny")
    rows = []
    with tempfile.TemporaryDirectory() as storage:
        def spec(name: str, concurrent: int):
            loaded = load_spec(SPEC, overrides={"base": str(base), "storage": storage, "name": name})
            return loaded.model_copy(update={"max_concurrent": concurrent, "num_samples": SAMPLES})

        for concurrent in (1, 2):
            rows.append({"setting": f"1 node, {concurrent} concurrent", "nodes": 1,
                         **measure_sweep(spec(f"one-node-{concurrent}", concurrent))})
            print(rows[-1], flush=True)
        folder = tempfile.mkdtemp(prefix="prunelab-bench-cluster-")
        state = cluster.start(folder, nodes=2, cpus_per_node=1)
        try:
            # a driver process of its own: Ray reads the cluster's auth token once per process, and this one
            # has already run local Rays without it
            child = subprocess.run([sys.executable, __file__, spec("two-nodes-2", 2).model_dump_json(), state["address"]],
                                   capture_output=True, text=True, env={**os.environ, **cluster.auth_env(folder)},
                                   cwd=Path(__file__).resolve().parents[2])
            if child.returncode != 0:
                raise RuntimeError(f"two-node sweep failed:\n{child.stderr[-3000:]}")
            row = json.loads(child.stdout.strip().splitlines()[-1])
            row.pop("peak_memory_gb")  # the nodes are not the driver's descendants: not comparable
            rows.append({"setting": "2 loopback nodes x 1 CPU, 2 concurrent", "nodes": 2, **row})
            print(rows[-1], flush=True)
        finally:
            cluster.stop(folder)
    return {"spec": SPEC, "samples": SAMPLES, "base": "tiny", "rows": rows}


if __name__ == "__main__":  # the two-node driver: SPEC_JSON ADDRESS -> one JSON line of figures
    from prunelab.sweep.spec import SweepSpec

    figures = measure_sweep(SweepSpec.model_validate_json(sys.argv[1]), address=sys.argv[2])
    print(json.dumps(figures))
