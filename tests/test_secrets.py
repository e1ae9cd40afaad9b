"""A W&B API key present in the environment never lands in results, Tune state, W&B run files, checkpoints,
reports or exported models."""
from pathlib import Path

import pytest

from prunelab.cli import main

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def files_under(*folders: Path):
    for folder in folders:
        yield from (p for p in folder.rglob("*") if p.is_file())


def test_the_planted_key_appears_in_no_file_the_sweep_report_or_export_wrote(finished_sweep, planted_wandb_key,
                                                                            tmp_path, capsys):
    _, folder = finished_sweep
    assert main(["report", str(folder), "--out", str(tmp_path / "report")]) == 0
    size = sorted(p.name for p in (folder / "deliverables").glob("*/*.pt"))[0][5:9]
    assert main(["export", str(folder), "--target-size", size, "-o", str(tmp_path / "model.pt")]) == 0
    printed = capsys.readouterr()
    checked = 0
    for path in files_under(folder, tmp_path):
        assert planted_wandb_key.encode() not in path.read_bytes(), path
        checked += 1
    assert checked > 20 and planted_wandb_key not in printed.out + printed.err
