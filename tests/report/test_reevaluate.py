"""`prunelab report --nbest`: a real sweep's deliverables evaluated on another recogniser's N-best lists (the
shipped Whisper benchmark), cached per deliverable, and reported beside the sweep's own report."""
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prunelab.errors import PrunelabError
from prunelab.evaluate.evaluator import Benchmark, evaluate_model
from prunelab.lm.load import load_model
from prunelab.report.build import collect
from prunelab.report.make import make_report

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


@pytest.fixture
def sweep_copy(finished_sweep, tmp_path):
    _, folder = finished_sweep
    copy = tmp_path / "t"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("wandb"))
    return copy


def test_deliverables_are_evaluated_on_another_benchmark_once_and_reported_inside_the_sweeps_report(
        sweep_copy, tmp_path, monkeypatch):
    own = collect(str(sweep_copy))
    lines = []
    other = collect(str(sweep_copy), lines.append, nbest="whisper")
    whisper = Benchmark.load(nbest_path="whisper")
    delivered = [r for r in other.rows if r["wer"] is not None]
    assert len(delivered) == own.counts["deliverables"] == other.counts["deliverables"]
    assert sum(line.startswith("evaluating deliverable") for line in lines) == len(delivered)
    assert all(len(r["utt_errors"]) == len(whisper.test.texts) == 1000 for r in delivered)
    own_wer = {(r["trial_id"], r["target_size"]): r["wer"] for r in own.rows if r["wer"] is not None}
    assert any(abs(own_wer[(r["trial_id"], r["target_size"])] - r["wer"]) > 1e-6 for r in delivered)
    assert other.references["key"]["nbest_system"] == whisper.nbest.system != own.references["key"]["nbest_system"]
    # the row's figures are its own deliverable's, measured on the whole Whisper benchmark
    row = delivered[0]
    direct = evaluate_model(load_model(row["checkpoint"]), whisper, trigram=False, speed=False)
    assert row["wer"] == direct["wer"] and row["utt_errors"] == direct["utt_errors"]

    again = []
    assert [r["wer"] for r in collect(str(sweep_copy), again.append, nbest="whisper").rows] == [r["wer"] for r in other.rows]
    assert not again  # cached in the sweep folder: nothing evaluated twice

    monkeypatch.chdir(tmp_path)
    index = make_report(str(sweep_copy), nbest="whisper")
    assert index.resolve() == tmp_path / "reports" / "t" / "nbest-whisper" / "index.html"
    assert "not the sweep's own" in (index.parent / "report.md").read_text()
    make_report(str(sweep_copy))  # the sweep's own report, regenerated, keeps the one inside it
    assert index.is_file() and (tmp_path / "reports" / "t" / "report.md").is_file()


def test_a_missing_deliverable_is_one_line_naming_its_trial(sweep_copy):
    for path in (sweep_copy / "results").glob("*.parquet"):  # the store names deliverables that are gone
        rows = pq.read_table(path).to_pylist()
        for row in rows:
            if row["checkpoint"]:
                row["checkpoint"] = str(sweep_copy / "gone" / Path(row["checkpoint"]).name)
        pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)
    with pytest.raises(PrunelabError, match=r"trial \S+: its deliverable at size [0-9.]+ is not at") as error:
        collect(str(sweep_copy), nbest="whisper")
    assert "\n" not in str(error.value)
