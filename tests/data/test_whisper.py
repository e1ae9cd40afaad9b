"""The Whisper tiny.en N-best benchmark: the shipped file, the name that selects it, and one real decode."""
import shutil

import pytest

from prunelab.data.nbest import load_nbest, nbest_location, shipped_nbest_path

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def test_the_whisper_benchmark_ships_and_is_selected_by_name():
    nbest = load_nbest("whisper")
    assert nbest.source == str(shipped_nbest_path("whisper")) and nbest.system.startswith("whisper-tiny.en")
    assert len(nbest.dev) == 300 and len(nbest.test) == 1000
    ids = {u.utt_id for u in nbest.dev} | {u.utt_id for u in nbest.test}
    assert len(ids) == 1300
    assert nbest_location(None) == nbest_location("pocketsphinx") == shipped_nbest_path()


def test_one_utterance_decoded_by_whisper_gives_a_ranked_nbest_list():
    pytest.importorskip("faster_whisper", reason="the extra [whisper] is not installed")
    pytest.importorskip("soundfile", reason="the extra [asr] is not installed")
    if not (shutil.which("flite") and shutil.which("sox")):
        pytest.skip("Debian's flite and sox are not installed (they speak the benchmark's sentences)")
    from prunelab.data.build_nbest import SNR_DB_RANGES, plan_utterances, recognize_whisper
    from prunelab.evaluate.wer import word_errors

    (utt,) = plan_utterances(1, 0, seed=0, snr_db_range=SNR_DB_RANGES["whisper"])
    rows = recognize_whisper(utt)
    assert [r["rank"] for r in rows] == list(range(len(rows))) and 2 <= len(rows) <= 20
    scores = [r["acoustic_score"] for r in rows]
    assert scores == sorted(scores, reverse=True) and scores[0] < 0  # summed log-probs, best beam first
    assert len({r["hypothesis"] for r in rows}) == len(rows) and all(r["score_kind"] == "acoustic+lm" for r in rows)
    errors = word_errors(utt.reference, rows[0]["hypothesis"])
    assert errors <= len(utt.reference.split())  # a real transcription, not a hallucinated loop
