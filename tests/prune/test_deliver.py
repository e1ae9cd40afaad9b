import json

import pytest

from prunelab.data.nbest import load_nbest
from prunelab.errors import PrunelabError
from prunelab.evaluate.evaluator import Benchmark, evaluate_model
from prunelab.evaluate.rescore import NBestMatrix
from prunelab.lm.load import load_model
from prunelab.prune.deliver import prune_and_save
from prunelab.prune.run import PruneConfig
from prunelab.prune.schedules import Schedule

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


@pytest.fixture(scope="module")
def bench(small_corpus):
    nbest = load_nbest()
    return Benchmark(small_corpus, nbest, NBestMatrix.from_utterances(nbest.dev[:60]),
                     NBestMatrix.from_utterances(nbest.test[:60]))


def test_incremental_lowrank_writes_four_smaller_checkpoints_whose_evaluation_matches_the_summary(
        trained_lm, small_corpus, bench, tmp_path):
    model, vocab, _ = trained_lm
    config = PruneConfig("activation", "lowrank", "incremental", 0.3, deliver=(0.8, 0.6, 0.45), finetune_steps=8,
                         batch_size=4, calibration_sequences=8, schedule=Schedule("polynomial", 2, 3.0))

    def evaluate(m):
        return evaluate_model(m, bench, trigram=False, speed=False)

    summary = prune_and_save(model, small_corpus, config, tmp_path, evaluate, log=lambda line: None)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    records = summary["deliverables"]
    assert [r["target_size"] for r in records] == [0.8, 0.6, 0.45, 0.3]
    sizes = [r["metrics"]["params_total"] for r in records]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 4
    for record in records:
        loaded = load_model(record["checkpoint"])
        info = loaded.info
        again = evaluate_model(loaded, bench, trigram=False, speed=False)
        for key in ("params_total", "ppl_valid", "ppl_test", "wer", "wer_ci_low", "wer_ci_high"):
            assert again[key] == pytest.approx(record["metrics"][key], rel=1e-6), key
        assert info["achieved_size"] == record["achieved_size"]
        assert abs(record["achieved_size"] - record["target_size"]) <= 0.01


def test_an_existing_run_is_not_overwritten_without_force(trained_lm, small_corpus, tmp_path):
    model, vocab, _ = trained_lm
    config = PruneConfig("magnitude", "unstructured", "oneshot", 0.5, finetune_steps=0)
    prune_and_save(model, small_corpus, config, tmp_path, log=lambda line: None)
    with pytest.raises(PrunelabError, match="use --force"):
        prune_and_save(model, small_corpus, config, tmp_path, log=lambda line: None)
