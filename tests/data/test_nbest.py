import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prunelab.data.nbest import LATER_COLUMNS, NBEST_SCHEMA, REQUIRED_COLUMNS, load_nbest, shipped_nbest_path
from prunelab.errors import PrunelabError


def _rows(split, utt, hyps):
    return [{"utt_id": utt, "split": split, "system": "x", "reference": "a b", "hypothesis": h, "rank": r,
             "acoustic_score": -float(r), "first_pass_score": None, "n_words": len(h.split()), "voice": "v",
             "tempo": 1.0, "snr_db": 30.0} for r, h in enumerate(hyps)]


def write(path, rows, drop=()):
    table = pa.Table.from_pylist(rows, schema=NBEST_SCHEMA)
    pq.write_table(table.drop_columns(list(drop)), path)
    return path


def test_shipped_benchmark_is_large_enough_and_schema_complete():
    # the shipped file predates the optional score_kind column (its scores are forced-alignment acoustic scores)
    assert pq.read_schema(shipped_nbest_path()).names == [n for n in NBEST_SCHEMA.names if n not in LATER_COLUMNS]
    nbest = load_nbest()
    assert len(nbest.dev) >= 500 and len(nbest.test) >= 3000
    assert {u.utt_id for u in nbest.dev}.isdisjoint(u.utt_id for u in nbest.test)
    sizes = [len(u.hypotheses) for u in nbest.test]
    assert max(sizes) == 20 and sum(sizes) / len(sizes) > 10
    # hypotheses are unique within an utterance and rank 0 is the recogniser's own best
    assert all(len(set(u.hypotheses)) == len(u.hypotheses) for u in nbest.test)


def test_loading_groups_hypotheses_in_rank_order(tmp_path):
    rows = _rows("dev", "u1", ["a b", "a c"]) + _rows("test", "u2", ["b", "a b", "c"])
    nbest = load_nbest(write(tmp_path / "n.parquet", rows[::-1]))
    assert [u.hypotheses for u in nbest.test] == [["b", "a b", "c"]]
    assert nbest.dev[0].acoustic_scores == [0.0, -1.0]


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_missing_column_is_named(tmp_path, column):
    path = write(tmp_path / "n.parquet", _rows("dev", "u", ["a"]) + _rows("test", "v", ["a"]), drop=[column])
    with pytest.raises(PrunelabError, match=f"missing column\\(s\\): {column}$"):
        load_nbest(path)


@pytest.mark.parametrize("column, value", [("acoustic_score", float("inf")), ("acoustic_score", float("nan")),
                                           ("first_pass_score", float("-inf"))])
def test_non_finite_scores_are_refused(tmp_path, column, value):
    rows = _rows("dev", "u", ["a", "b"]) + _rows("test", "v", ["a"])
    rows[1][column] = value
    with pytest.raises(PrunelabError, match=f"column {column} has non-finite values"):
        load_nbest(write(tmp_path / "n.parquet", rows))


def test_no_dev_split_and_unreadable_file_are_refused(tmp_path):
    with pytest.raises(PrunelabError, match="no dev split"):
        load_nbest(write(tmp_path / "n.parquet", _rows("test", "u", ["a"])))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(PrunelabError, match="not a readable Parquet"):
        load_nbest(tmp_path / "bad.parquet")
