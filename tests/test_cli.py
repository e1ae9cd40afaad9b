import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from prunelab.data.nbest import shipped_nbest_path

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "prunelab.cli", *args], capture_output=True, text=True, timeout=600)


def test_nbest_with_a_missing_column_is_a_one_line_error_with_exit_code_2(trained_lm, tmp_path):
    table = pq.read_table(shipped_nbest_path()).slice(0, 100).drop_columns(["acoustic_score"])
    pq.write_table(table, tmp_path / "mine.parquet")
    result = run_cli("eval", str(trained_lm[2]), "--nbest", str(tmp_path / "mine.parquet"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"prunelab: error: N-best file {tmp_path / 'mine.parquet'} is missing column(s): acoustic_score"]


def test_missing_checkpoint_is_a_one_line_error(tmp_path):
    result = run_cli("eval", str(tmp_path / "nope.pt"))
    assert result.returncode == 2 and "does not exist" in result.stderr and len(result.stderr.splitlines()) == 1


def test_eval_json_has_the_documented_keys(trained_lm, tmp_path):
    result = run_cli("eval", str(trained_lm[2]), "--json", "--max-test-utts", "100", "--no-trigram", "--repeats", "1",
                     "--speed-vs", str(trained_lm[2]))
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert {"params_total", "ppl_valid", "ppl_test", "wer", "wer_ci_low", "wer_ci_high", "wer_1best", "wer_oracle",
            "n_test_utts", "n_test_words", "tokens_per_s", "speed_ratio"} <= metrics.keys()
    assert metrics["n_test_utts"] == 100
