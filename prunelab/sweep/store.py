"""The results store: a Parquet dataset in the sweep folder, one file per trial, one row per deliverable.

The driver writes a trial's file whole, atomically (temporary name, fsync, rename), every time a row is
added or the trial's status changes, so a reader that reads a file whole in one open never sees a torn file
and a row never appears twice, also after a resume. pyarrow, pandas and duckdb read a finished sweep's folder
as one dataset; their dataset scans take each file's size before reading it, so during a running sweep read
it with `read_results`."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from prunelab import storage
from prunelab.faults import fault_point
from prunelab.record import SCHEMA
from prunelab.sweep.folder import results_dir, trial_file

COLUMNS = SCHEMA  # the Parquet columns: one typed record (prunelab/record.py) names them everywhere
STATUSES = ("running", "complete", "stopped", "error")




def _read_whole(location: str) -> pa.Table:
    """One trial file, read whole in one open (never torn by the driver replacing it)."""
    return pq.read_table(pa.BufferReader(storage.read_bytes(location)))


def read_trial_rows(sweep_dir: str, trial_id: str) -> list[dict]:
    path = trial_file(sweep_dir, trial_id)
    return _read_whole(path).to_pylist() if storage.exists(path) else []


def write_trial_rows(sweep_dir: str, trial_id: str, rows: list[dict]) -> str:
    """Replace the trial's file with `rows` (one per target size; the last row for a size wins)."""
    by_size = {row["target_size"]: row for row in rows}
    table = pa.Table.from_pylist([{c: row.get(c) for c in COLUMNS.names} for row in by_size.values()], schema=COLUMNS)

    def write(handle) -> None:
        pq.write_table(table, handle)
        fault_point("result-write")

    return storage.write(trial_file(sweep_dir, trial_id), write)


def _conformed(table: pa.Table) -> pa.Table:
    """`table` with the store's columns in order: a column a file from before it lacks is null."""
    return pa.table([table.column(f.name).cast(f.type) if f.name in table.column_names
                     else pa.nulls(len(table), f.type) for f in COLUMNS], schema=COLUMNS)


def read_results(sweep_dir: str) -> pa.Table:
    """Every row of the sweep (an empty table with the columns when there is none yet).

    Each file is read whole in one open, while a running sweep may replace it: a dataset scan takes a file's
    size when it lists it and reads it later, so a file replaced in between reads as torn."""
    tables = []
    for location in storage.list_files(results_dir(sweep_dir), "trial-", ".parquet"):
        try:
            tables.append(_conformed(_read_whole(location)))
        except FileNotFoundError:  # removed since it was listed
            continue
    return pa.concat_tables(tables) if tables else COLUMNS.empty_table()
