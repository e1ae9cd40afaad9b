"""Fault injection for the reliability tests: `PRUNELAB_FAULT=POINT[:N]` makes this process SIGKILL itself the
N-th time (default: the first) it reaches POINT. Without the variable a fault point is one dictionary lookup.

Points: `spec-written` (a sweep's folder exists, nothing started), `trial-result` (the driver received a
trial's stage result), `checkpoint` (the driver registered a trial's stage checkpoint), `result-write` (a
results file is written to its temporary name, not yet renamed), `trial-complete` (a trial has finished and
its rows are final)."""
from __future__ import annotations

import os
import signal

_reached: dict[str, int] = {}


def fault_point(name: str) -> None:
    wanted = os.environ.get("PRUNELAB_FAULT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point == name:
        _reached[name] = _reached.get(name, 0) + 1
        if _reached[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
