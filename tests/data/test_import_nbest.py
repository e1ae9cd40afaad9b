"""Importing N-best lists of other recognisers: a small file written in each format round-trips into the
N-best schema (utterances, ranks, references), evaluates, and malformed lines get one line naming the problem."""
import json
import re
import subprocess
import sys

import pytest

from prunelab.data.import_nbest import hash_split, import_nbest
from prunelab.data.nbest import load_nbest
from prunelab.errors import PrunelabError
from prunelab.evaluate.evaluator import Benchmark, evaluate_model

WORDS = "red green blue black white brown grey pink gold silver amber violet".split()
UTTERANCES = {f"utt{i:02d}": (f"The cat sat on the {w.title()} mat.", [f"the cat sat on the {w} mat",
                                                                    f"the cat sat on a {w} mat",
                                                                    f"a cat sat on the {w} mat"])
              for i, w in enumerate(WORDS)}


def write_espnet(folder):
    refs = folder / "text"
    refs.write_text("".join(f"{u} {ref}\n" for u, (ref, _) in UTTERANCES.items()))
    decode = folder / "decode"
    for n in range(3):
        (decode / f"{n + 1}best_recog").mkdir(parents=True)
        (decode / f"{n + 1}best_recog" / "text").write_text("".join(f"{u} {h[n]}\n" for u, (_, h) in UTTERANCES.items()))
        (decode / f"{n + 1}best_recog" / "score").write_text(
            "".join(f"{u} tensor({-1.5 * (n + 1):.4f})\n" for u in UTTERANCES))
    return decode, refs


def write_nemo(folder):
    manifest = folder / "manifest.json"
    manifest.write_text("".join(json.dumps({"audio_filepath": f"/data/{u}.wav", "text": ref, "duration": 1.0}) + "\n"
                                for u, (ref, _) in UTTERANCES.items()))
    beams = folder / "beams.tsv"
    beams.write_text("".join(f"{h}\t{-1.5 * (n + 1)}\n" for _, (_, hyps) in UTTERANCES.items()
                             for n, h in enumerate(hyps)))
    return beams, manifest


def write_jsonl(folder):
    path = folder / "nbest.jsonl"
    path.write_text("".join(json.dumps({"utt_id": u, "reference": ref, "split": "dev" if i < 4 else "test",
                                        "hypotheses": [{"text": h, "score": -1.5 * (n + 1)} for n, h in enumerate(hyps)]})
                            + "\n" for i, (u, (ref, hyps)) in enumerate(UTTERANCES.items())))
    return path, None


WRITERS = {"espnet": write_espnet, "nemo": write_nemo, "jsonl": write_jsonl}


@pytest.mark.parametrize("fmt", ["espnet", "nemo", "jsonl"])
def test_each_format_round_trips_and_evaluates(fmt, tmp_path, trained_lm, small_corpus):
    src, references = WRITERS[fmt](tmp_path)
    out = tmp_path / "imported.parquet"
    split = None if fmt == "jsonl" else "hash"
    result = import_nbest(fmt, src, out, references, split)
    assert result["utterances"] == 12 and result["hypotheses"] == 36
    nbest = load_nbest(out)
    by_id = {u.utt_id: u for u in nbest.dev + nbest.test}
    assert set(by_id) == set(UTTERANCES)
    for utt_id, (reference, hypotheses) in UTTERANCES.items():
        utterance = by_id[utt_id]
        assert utterance.reference == reference.lower().rstrip(".")  # normalised
        assert utterance.hypotheses == hypotheses  # the recogniser's order is the rank order
        assert utterance.acoustic_scores == [-1.5, -3.0, -4.5]
    if fmt == "jsonl":
        assert {u.utt_id for u in nbest.dev} == {f"utt{i:02d}" for i in range(4)}
    else:
        assert {u.utt_id for u in nbest.dev} == {u for u in UTTERANCES if hash_split(u) == "dev"}
    bench = Benchmark.load(nbest_path=out, corpus=small_corpus)
    metrics = evaluate_model(trained_lm[0], bench, trigram=False, speed=False)
    assert metrics["n_test_utts"] == len(nbest.test) and metrics["wer_oracle"] == 0.0


@pytest.mark.parametrize("fmt, corrupt, message", [
    ("espnet", lambda src, refs: (src / "2best_recog" / "score").write_text("utt00 tensor(abc)\n"), "score 'tensor(abc)' is not a number"),
    ("espnet", lambda src, refs: [(src / "1best_recog" / name).write_text((src / "1best_recog" / name).read_text() + line)
                                  for name, line in (("text", "nobody hello\n"), ("score", "nobody -1\n"))],
     "utterance nobody is not in the references"),
    ("nemo", lambda src, refs: src.write_text(src.read_text() + "extra\t-1\n"), "do not divide"),
    ("nemo", lambda src, refs: src.write_text("no tab here\n" * 36), "expected `candidate_text<TAB>score`"),
    ("jsonl", lambda src, refs: src.write_text(src.read_text() + '{"utt_id": "x", "reference": "a"}\n'), "missing key 'hypotheses'"),
    ("jsonl", lambda src, refs: src.write_text('{"utt_id": "x", "reference": "a", "hypotheses": [{"text": "a", "score": "high"}]}\n'), "is not a number"),
    ("jsonl", lambda src, refs: src.write_text('{"utt_id": "x", "reference": "a", "hypotheses": [{"text": "a", "score": -Infinity}]}\n'), "is not finite"),
    ("espnet", lambda src, refs: (src / "2best_recog" / "score").write_text("utt00 tensor(nan)\n"), "score 'tensor(nan)' is not finite"),
])
def test_malformed_input_names_file_line_and_problem_and_writes_nothing(fmt, corrupt, message, tmp_path):
    src, references = WRITERS[fmt](tmp_path)
    corrupt(src, references)
    out = tmp_path / "out.parquet"
    with pytest.raises(PrunelabError, match=re.escape(message)) as error:
        import_nbest(fmt, src, out, references)
    assert "\n" not in str(error.value) and str(tmp_path) in str(error.value)
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))


def test_the_cli_command_exits_2_with_one_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("{not json\n")
    done = subprocess.run([sys.executable, "-m", "prunelab.cli", "data", "import-nbest", str(path), "--format", "jsonl",
                           "--out", str(tmp_path / "o.parquet")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and f"{path}:1: not JSON" in done.stderr
