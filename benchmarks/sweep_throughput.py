"""Sweep throughput on this machine: the demo sweep with 1 and then 2 concurrent trials.

For each setting it prints the sweep's wall time, trials per hour, the trials' own running time (Tune's
`time_total_s`, the time the trainable ran), the Ray + W&B overhead per trial (wall time not covered by
trial work, spread over the trials) as a share of the mean trial time, and the peak memory of the whole
sweep (proportional set size, summed over this process and every process it started: Ray's services,
its workers, the W&B loggers), sampled every 0.25 s.

    python benchmarks/sweep_throughput.py [--spec sweeps/demo.yaml] [--samples 4] [--concurrency 1,2]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

from prunelab.lm.base import train_or_load_base
from prunelab.procs import descendants, pss_bytes
from prunelab.sweep.spec import load_spec
from prunelab.sweep.tuner import run_sweep


class MemorySampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stopped = 0, threading.Event()

    def run(self):
        while not self.stopped.wait(0.25):
            self.peak = max(self.peak, sum(pss_bytes(p) for p in descendants([os.getpid()])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="sweeps/demo.yaml")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--concurrency", default="1,2")
    args = parser.parse_args()
    _, _, _, base = train_or_load_base("tiny")
    print(f"{args.spec}, {args.samples} trials, base {base}, {os.cpu_count()} cores")
    print(f"{'concurrent':>10} {'wall s':>7} {'trials/h':>8} {'trial s':>8} {'overhead/trial s':>16} "
          f"{'overhead':>8} {'peak memory':>11}")
    rates = {}
    with tempfile.TemporaryDirectory() as storage:
        for concurrent in (int(c) for c in args.concurrency.split(",")):
            spec = load_spec(args.spec, overrides={"base": str(base), "storage": storage,
                                                  "name": f"throughput-{concurrent}"})
            row = measure_sweep(spec.model_copy(update={"max_concurrent": concurrent, "num_samples": args.samples}))
            rates[concurrent] = row["trials_per_hour"]
            print(f"{concurrent:>10} {row['wall_s']:>7.0f} {row['trials_per_hour']:>8.1f} {row['trial_s']:>8.1f} "
                  f"{row['overhead_s']:>16.1f} {row['overhead_s'] / row['trial_s']:>8.0%} "
                  f"{row['peak_memory_gb']:>9.2f} GB", flush=True)
    if 1 in rates and 2 in rates:
        print(f"trials/hour, 2 concurrent vs 1: {rates[2] / rates[1]:.2f}x")


def measure_sweep(spec, address: str | None = None) -> dict:
    """Run `spec` (on the cluster at `address`, else a local Ray) and measure its wall time, trials per hour,
    mean trial time, overhead per trial and peak memory of this process and its descendants."""
    sampler = MemorySampler()
    sampler.start()
    started = time.perf_counter()
    grid = run_sweep(spec, address)
    wall = time.perf_counter() - started
    sampler.stopped.set()
    sampler.join()
    trial_s = [r.metrics["time_total_s"] for r in grid]
    mean_trial = sum(trial_s) / len(trial_s)
    return {"concurrent": spec.max_concurrent, "trials": len(trial_s), "wall_s": wall,
            "trials_per_hour": 3600 * len(trial_s) / wall, "trial_s": mean_trial,
            "overhead_s": (wall - sum(trial_s) / spec.max_concurrent) / len(trial_s),
            "peak_memory_gb": sampler.peak / 2**30}

if __name__ == "__main__":
    main()
