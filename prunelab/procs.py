"""This host's processes read from /proc (Linux): enough to find and end exactly the processes a command
started, by PID, and to measure their memory."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    pgid: int
    state: str
    args: str


def processes() -> dict[int, Process]:
    """Every process that can be read now (processes that end while we look are skipped)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        found[int(entry.name)] = Process(int(entry.name), int(fields[1]), int(fields[3]), fields[0], args)
    return found


def descendants(roots: list[int], table: dict[int, Process] | None = None) -> list[int]:
    """The PIDs of `roots` and of every process below them."""
    table = processes() if table is None else table
    children: dict[int, list[int]] = {}
    for process in table.values():
        children.setdefault(process.ppid, []).append(process.pid)
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return sorted(found)


def pss_bytes(pid: int) -> int:
    """Proportional set size of a process (shared pages split between their users); 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
