"""Figure 6: peak resident memory of one pruning run of the small base, evaluation included.

The run is `prunelab prune` in a child process (the command a user runs): activation-scaled low-rank,
incremental, delivering 0.7, 0.5, 0.3 and 0.2, each deliverable evaluated on the full benchmark. Its peak
resident set size comes from the kernel's accounting of that one child (wait4), so nothing else on the
machine is counted."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FINETUNE_STEPS = 40  # memory does not grow with the steps; a short budget keeps the run to minutes
COMMAND = ["prune", "small", "--criterion", "activation", "--method", "lowrank", "--scheduler", "incremental",
           "--target-size", "0.2", "--deliver", "0.7,0.5,0.3", "--finetune-steps", str(FINETUNE_STEPS)]
GOAL_MB = 1500


def peak_rss(arguments: list[str]) -> tuple[float, float]:
    """(peak resident MB, wall seconds) of `prunelab ARGUMENTS --out DIR` run as a child process; the kernel's
    accounting of that one child (wait4), so nothing else on the machine is counted."""
    prunelab = str(Path(sys.executable).with_name("prunelab"))
    with tempfile.TemporaryDirectory() as folder:
        command = [prunelab, *arguments, "--out", str(Path(folder) / "run")]
        started = time.monotonic()
        _, status, usage = os.wait4(subprocess.Popen(command).pid, 0)
        if os.waitstatus_to_exitcode(status):
            raise RuntimeError(f"{' '.join(command)} exited with {os.waitstatus_to_exitcode(status)}")
    return usage.ru_maxrss / 1024, round(time.monotonic() - started, 1)


def measure(args) -> dict:
    peak_mb, wall_s = peak_rss(COMMAND)
    return {"command": "prunelab " + " ".join(COMMAND) + " --out DIR", "peak_rss_mb": peak_mb, "wall_s": wall_s,
            "goal_mb": GOAL_MB}
