"""Figure 3: trials/hour of the demo sweep with 1 and 2 concurrent trials on one node, and with 2 concurrent
trials on a two-node loopback cluster (token auth, 1 CPU per node) against one node with 2 CPUs."""
from __future__ import annotations

import os
import tempfile

from sweep_throughput import measure_sweep

from prunelab import cluster
from prunelab.lm.base import train_or_load_base
from prunelab.sweep.spec import load_spec

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
        saved = dict(os.environ)
        try:
            os.environ.update(cluster.auth_env(folder))
            row = measure_sweep(spec("two-nodes-2", 2), address=state["address"])
            row.pop("peak_memory_gb")  # the nodes are not this process's descendants: not comparable
            rows.append({"setting": "2 loopback nodes x 1 CPU, 2 concurrent", "nodes": 2, **row})
            print(rows[-1], flush=True)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            cluster.stop(folder)
    return {"spec": SPEC, "samples": SAMPLES, "base": "tiny", "rows": rows}
