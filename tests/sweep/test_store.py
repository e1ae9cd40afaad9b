import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from prunelab.errors import PrunelabError
from prunelab.sweep.folder import trial_file
from prunelab.sweep.query import best_configs, pareto_front
from prunelab.sweep.store import COLUMNS, read_results, write_trial_rows


def row(trial, size, wer, speed, **extra):
    return {"sweep": "s", "trial_id": trial, "criterion": "magnitude", "method": "lowrank", "scheduler": "oneshot",
            "target_size": size, "achieved_size": size + 0.001, "wer": wer, "wer_ci_low": wer - 0.01,
            "wer_ci_high": wer + 0.01, "speed_ratio": speed, "status": "complete", **extra}


def test_rows_are_replaced_per_size_never_duplicated_and_readable_by_three_libraries(tmp_path):
    write_trial_rows(tmp_path, "a", [row("a", 0.5, 0.40, 1.2)])
    write_trial_rows(tmp_path, "a", [row("a", 0.5, 0.40, 1.2), row("a", 0.3, 0.45, 1.5)])
    write_trial_rows(tmp_path, "a", [row("a", 0.5, 0.40, 1.2, status="stopped"), row("a", 0.3, 0.45, 1.5)])
    write_trial_rows(tmp_path, "b", [row("b", 0.5, 0.38, 1.1)])
    table = read_results(tmp_path)
    assert table.schema == COLUMNS and table.num_rows == 3
    frame = pd.read_parquet(tmp_path / "results")
    assert sorted(zip(frame.trial_id, frame.target_size)) == [("a", 0.3), ("a", 0.5), ("b", 0.5)]
    count = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/results/*.parquet')").fetchall()[0][0]
    assert count == 3
    assert not list((tmp_path / "results").glob(".*tmp"))
    assert Path(trial_file(tmp_path, "a")).exists()


def test_best_by_wer_speed_and_pareto_agree_with_a_direct_query(tmp_path):
    rows = [row("a", 0.5, 0.40, 1.2), row("b", 0.5, 0.38, 1.1), row("c", 0.5, 0.41, 1.6), row("d", 0.5, 0.42, 1.3),
            row("e", 0.3, 0.50, 2.0)]
    for r in rows:
        write_trial_rows(tmp_path, r["trial_id"], [r])
    frame = pd.read_parquet(tmp_path / "results")
    at_half = frame[frame.target_size == 0.5]
    assert [r["trial_id"] for r in best_configs(tmp_path, 0.5, "wer", 2)] == list(at_half.nsmallest(2, "wer").trial_id)
    assert best_configs(tmp_path, 0.5, "speed", 1)[0]["trial_id"] == at_half.loc[at_half.speed_ratio.idxmax(), "trial_id"]
    assert [r["trial_id"] for r in best_configs(tmp_path, 0.5, "pareto")] == ["b", "a", "c"]  # d is dominated by c
    assert pareto_front([]) == []


def test_best_for_a_size_no_trial_reached_lists_the_sizes_that_exist(tmp_path):
    write_trial_rows(tmp_path, "a", [row("a", 0.5, 0.4, 1.2), row("a", 0.3, 0.5, 1.5)])
    with pytest.raises(PrunelabError, match="no trial reached target size 0.2; sizes with results: 0.5, 0.3"):
        best_configs(tmp_path, 0.2)


def test_equal_wers_are_ranked_by_perplexity_then_speed(tmp_path):
    rows = [row("fast-but-confused", 0.5, 0.40, 2.0, ppl_valid=900.0), row("slow", 0.5, 0.40, 1.1, ppl_valid=300.0),
            row("quick", 0.5, 0.40, 1.5, ppl_valid=300.0), row("better", 0.5, 0.39, 1.0, ppl_valid=950.0)]
    for r in rows:
        write_trial_rows(tmp_path, r["trial_id"], [r])
    assert [r["trial_id"] for r in best_configs(tmp_path, 0.5, "wer")] == ["better", "quick", "slow", "fast-but-confused"]
    assert [r["trial_id"] for r in best_configs(tmp_path, 0.5, "speed")][:2] == ["fast-but-confused", "quick"]


WRITER = """
import sys
from prunelab.sweep.store import write_trial_rows
n = 1
while True:  # files of different sizes, so a stale size does not fit the new file
    n = n % 6 + 1
    write_trial_rows(sys.argv[1], "t", [{"trial_id": "t", "target_size": round(0.9 - 0.1 * i, 1), "status": "running"}
                                        for i in range(n)])
"""


def test_read_results_reads_files_that_a_running_sweep_keeps_replacing(tmp_path):
    """A dataset scan takes each file's size when it lists it; a file replaced before it is read then reads as
    torn (seen once in CI under load, in a test that polled with pq.read_table; too rare to reproduce here on
    demand). read_results reads each file whole: here it returns whole rows while another process keeps replacing it."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)])
    try:
        deadline = time.monotonic() + 60
        while not Path(trial_file(str(tmp_path), "t")).exists() and time.monotonic() < deadline:  # its first file
            time.sleep(0.05)
        counts = {read_results(str(tmp_path)).num_rows for _ in range(1000)}
    finally:
        writer.kill()
        writer.wait()
    assert counts <= set(range(1, 7)) and len(counts) > 1
