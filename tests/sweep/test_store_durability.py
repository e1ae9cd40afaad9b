"""Many writers at once on one results store, some SIGKILLed in the middle of a write (after their temporary
file is written, before the rename): the store reads cleanly and holds exactly every completed write."""
import os
import signal
import subprocess
import sys

import duckdb
import pandas as pd
import pytest

from prunelab.sweep.store import read_results

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)

WRITER = """
import sys
from prunelab.sweep.store import write_trial_rows
folder, trial_id, writes = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = []
for k in range(writes):
    rows.append(dict(sweep="d", trial_id=trial_id, criterion="magnitude", method="lowrank", scheduler="incremental",
                     target_size=round(0.9 - 0.05 * k, 2), achieved_size=0.9 - 0.05 * k, wer=0.4, status="running",
                     utt_errors=list(range(500))))
    write_trial_rows(folder, trial_id, rows)
"""


def test_concurrent_writers_killed_mid_write_leave_a_clean_complete_store(tmp_path):
    writes, kill_at = 12, {0: 3, 2: 7, 4: 1, 6: 12}  # writer -> the write it dies in (others finish all 12)
    procs = []
    for i in range(8):
        env = {**os.environ, **({"PRUNELAB_FAULT": f"result-write:{kill_at[i]}"} if i in kill_at else {})}
        procs.append(subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"w{i}", str(writes)], env=env))
    codes = [p.wait(timeout=120) for p in procs]
    assert [c == -signal.SIGKILL for c in codes] == [i in kill_at for i in range(8)]

    expected = {f"w{i}": (kill_at[i] - 1 if i in kill_at else writes) for i in range(8)}
    table = read_results(tmp_path)
    counts = table.to_pandas().groupby("trial_id").size().to_dict()
    assert counts == {t: n for t, n in expected.items() if n > 0}  # a writer killed in its first write left no file
    frame = pd.read_parquet(tmp_path / "results")
    assert len(frame) == sum(expected.values()) and frame.utt_errors.map(len).eq(500).all()
    assert duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/results/trial-*.parquet')").fetchall()[0][0] == len(frame)
    assert len(list((tmp_path / "results").glob(".trial-*.tmp"))) == len(kill_at)  # the killed writes stayed aside
