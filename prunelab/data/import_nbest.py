"""`prunelab data import-nbest`: N-best lists of other recognisers into prunelab's N-best Parquet schema.

Formats (texts pass through the project's normaliser; ranks follow the recogniser's order):

- `espnet`: an ESPnet decoding folder with `1best_recog/`, `2best_recog/`, ... each holding Kaldi-style `text`
  and `score` files (`utt_id value` per line; a score may be written `tensor(-12.3)`), and the references from a
  Kaldi `text` file (`--references`). ESPnet's score is the beam search's total: decoder, CTC and any LM with
  their weights, so `score_kind` is `acoustic+lm`.
- `nemo`: the beams TSV of NeMo's `eval_beamsearch_ngram.py` (`candidate_text<TAB>score`, beam_size consecutive
  lines per utterance, no id) with its manifest JSONL (`--references`: `audio_filepath`, `text`) giving the
  utterances in the same order; ids are the audio file names without extension. The score is the beam score,
  which includes the n-gram LM when the beam search used one: `acoustic+lm`.
- `jsonl`: one object per line, `{"utt_id", "reference", "split"?, "score_kind"?, "hypotheses": [{"text",
  "score"}, ...]}`; `score_kind` is `acoustic` or `acoustic+lm` (default `acoustic+lm`, as Whisper's summed
  token log-probs are).

Splits: `--split dev` or `test` puts every utterance there; `hash` (the default, unless a JSONL file gives
splits) sends a fixed fifth of the utterances, chosen by a hash of their id, to dev (weight tuning).
Malformed input stops with one line naming the file, the line and what is wrong; nothing is written."""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from prunelab.atomic import atomic_write
from prunelab.data.nbest import NBEST_SCHEMA
from prunelab.data.text import normalize
from prunelab.errors import PrunelabError

FORMATS = ("espnet", "nemo", "jsonl")
SPLITS = ("dev", "test", "hash")
SCORE_KINDS = ("acoustic", "acoustic+lm")
DEV_SHARE = 5  # hash split: one utterance in five goes to dev
_TENSOR = re.compile(r"^tensor\((?P<value>[^,)]+)")


@dataclass
class Utterance:
    utt_id: str
    reference: str
    hypotheses: list[tuple[str, float]] = field(default_factory=list)
    split: str | None = None
    score_kind: str = "acoustic+lm"


def _fail(path: Path, line: int | None, what: str):
    where = f"{path}:{line}" if line is not None else str(path)
    raise PrunelabError(f"{where}: {what}")


def _number(text: str, path: Path, line: int) -> float:
    match = _TENSOR.match(text.strip())
    try:
        value = float(match.group("value") if match else text)
    except ValueError:
        _fail(path, line, f"the score {text.strip()!r} is not a number")
    if not math.isfinite(value):
        _fail(path, line, f"the score {text.strip()!r} is not finite")
    return value


def _kaldi_lines(path: Path, value_required: bool = False) -> dict[str, str]:
    """`utt_id value` lines; an utterance id may appear once."""
    if not path.is_file():
        _fail(path, None, "file not found")
    out: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) == 1 and value_required:
            _fail(path, number, "expected `utt_id value`, found only an id")
        utt_id, value = parts[0], parts[1] if len(parts) > 1 else ""
        if utt_id in out:
            _fail(path, number, f"utterance {utt_id} appears twice")
        out[utt_id] = value
    return out


def read_espnet(src: Path, references: Path) -> list[Utterance]:
    folders = sorted((p for p in src.glob("*best_recog") if p.is_dir() and p.name[:-len("best_recog")].isdigit()),
                     key=lambda p: int(p.name[:-len("best_recog")]))
    if not folders:
        _fail(src, None, "no 1best_recog/ folder: not an ESPnet decoding folder")
    refs = _kaldi_lines(references)
    utterances = {utt_id: Utterance(utt_id, normalize(text)) for utt_id, text in refs.items()}
    for folder in folders:
        texts, scores = _kaldi_lines(folder / "text"), _kaldi_lines(folder / "score", value_required=True)
        for number, utt_id in enumerate(scores, 1):
            if utt_id not in texts:
                _fail(folder / "score", number, f"utterance {utt_id} has a score but no text in {folder / 'text'}")
        for number, (utt_id, text) in enumerate(texts.items(), 1):
            if utt_id not in utterances:
                _fail(folder / "text", number, f"utterance {utt_id} is not in the references {references}")
            if utt_id not in scores:
                _fail(folder / "text", number, f"utterance {utt_id} has no score in {folder / 'score'}")
            utterances[utt_id].hypotheses.append((text, _number(scores[utt_id], folder / "score", number)))
    return [u for u in utterances.values() if u.hypotheses]


def read_nemo(beams: Path, manifest: Path) -> list[Utterance]:
    utterances = []
    if not manifest.is_file():
        _fail(manifest, None, "file not found")
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            audio, text = entry["audio_filepath"], entry["text"]
        except (ValueError, KeyError, TypeError) as error:
            _fail(manifest, number, f"expected a JSON object with audio_filepath and text ({error})")
        utterances.append(Utterance(Path(str(audio)).stem, normalize(str(text))))
    if not utterances:
        _fail(manifest, None, "no utterances")
    if not beams.is_file():
        _fail(beams, None, "file not found")
    lines = [(n, line) for n, line in enumerate(beams.read_text(encoding="utf-8").splitlines(), 1) if line.strip()]
    if len(lines) % len(utterances):
        _fail(beams, None, f"{len(lines)} beam lines do not divide into the manifest's {len(utterances)} utterances")
    beam_size = len(lines) // len(utterances)
    for i, (number, line) in enumerate(lines):
        text, tab, score = line.rpartition("\t")
        if not tab:
            _fail(beams, number, "expected `candidate_text<TAB>score`")
        utterances[i // beam_size].hypotheses.append((text, _number(score, beams, number)))
    return utterances


def read_jsonl(src: Path) -> list[Utterance]:
    if not src.is_file():
        _fail(src, None, "file not found")
    utterances = []
    for number, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as error:
            _fail(src, number, f"not JSON ({error})")
        if not isinstance(entry, dict):
            _fail(src, number, "expected a JSON object")
        for key in ("utt_id", "reference", "hypotheses"):
            if key not in entry:
                _fail(src, number, f"missing key {key!r}")
        split, kind = entry.get("split"), entry.get("score_kind", "acoustic+lm")
        if split is not None and split not in ("dev", "test"):
            _fail(src, number, f"split must be dev or test, got {split!r}")
        if kind not in SCORE_KINDS:
            _fail(src, number, f"score_kind must be one of {', '.join(SCORE_KINDS)}, got {kind!r}")
        hypotheses = entry["hypotheses"]
        if not isinstance(hypotheses, list) or not hypotheses:
            _fail(src, number, "hypotheses must be a non-empty list of {\"text\", \"score\"} objects")
        utterance = Utterance(str(entry["utt_id"]), normalize(str(entry["reference"])), split=split, score_kind=kind)
        for k, hypothesis in enumerate(hypotheses):
            if not isinstance(hypothesis, dict) or "text" not in hypothesis or "score" not in hypothesis:
                _fail(src, number, f"hypothesis {k} needs text and score")
            if isinstance(hypothesis["score"], bool) or not isinstance(hypothesis["score"], (int, float)):
                _fail(src, number, f"hypothesis {k}: score {hypothesis['score']!r} is not a number")
            if not math.isfinite(hypothesis["score"]):
                _fail(src, number, f"hypothesis {k}: score {hypothesis['score']!r} is not finite")
            utterance.hypotheses.append((str(hypothesis["text"]), float(hypothesis["score"])))
        utterances.append(utterance)
    return utterances


def hash_split(utt_id: str) -> str:
    return "dev" if int(hashlib.sha1(utt_id.encode()).hexdigest(), 16) % DEV_SHARE == 0 else "test"


def import_nbest(fmt: str, src: str | Path, out: str | Path, references: str | Path | None = None,
                 split: str | None = None, system: str | None = None) -> dict:
    """Read `src` in `fmt`, write the N-best Parquet `out` (atomically, only if everything parsed)."""
    if fmt not in FORMATS:
        raise PrunelabError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if split is not None and split not in SPLITS:
        raise PrunelabError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    src = Path(src)
    if fmt in ("espnet", "nemo") and references is None:
        raise PrunelabError(f"--references is required for {fmt} (a Kaldi text file for espnet, the manifest "
                            f"JSONL for nemo)")
    if fmt == "espnet":
        utterances = read_espnet(src, Path(references))
    elif fmt == "nemo":
        utterances = read_nemo(src, Path(references))
    else:
        utterances = read_jsonl(src)
    seen = set()
    for utterance in utterances:
        if utterance.utt_id in seen:
            raise PrunelabError(f"{src}: utterance {utterance.utt_id} appears twice")
        seen.add(utterance.utt_id)
    rows = []
    for utterance in utterances:
        chosen = split if split in ("dev", "test") else (
            utterance.split if split is None and utterance.split else hash_split(utterance.utt_id))
        for rank, (text, score) in enumerate(utterance.hypotheses):
            hypothesis = normalize(text)
            rows.append({"utt_id": utterance.utt_id, "split": chosen, "system": system or fmt,
                         "reference": utterance.reference, "hypothesis": hypothesis, "rank": rank,
                         "acoustic_score": score, "first_pass_score": score, "n_words": len(hypothesis.split()),
                         "score_kind": utterance.score_kind})
    table = pa.Table.from_pylist(rows, schema=NBEST_SCHEMA)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda handle: pq.write_table(table, handle))
    counts = {s: len({r["utt_id"] for r in rows if r["split"] == s}) for s in ("dev", "test")}
    return {"out": str(out), "utterances": len(utterances), "hypotheses": len(rows), **counts}
