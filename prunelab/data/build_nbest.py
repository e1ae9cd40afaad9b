"""Build the speech-recognition N-best benchmarks: flite speech -> pocketsphinx N-best -> forced-alignment scores,
or flite speech -> Whisper tiny.en beam search (prunelab/data/whisper.py).

Needs the optional extra `[asr]` (pocketsphinx, soundfile; `[whisper]` too for Whisper) and apt packages
`flite sox`. Run: `prunelab data build-nbest --out PATH [--recogniser pocketsphinx|whisper] [--dev 600]
[--test 3200] [--workers 2]`.

Sentences come only from held-out text: dev utterances from the corpus' valid split, test utterances
from its test split. Each is spoken by one of several flite voices, tempo-perturbed with sox, resampled
to 16 kHz mono and mixed with white noise at a mild SNR. pocketsphinx 5.1.1 (bundled en-us acoustic model,
dictionary and trigram) decodes it; its N-best is cut to 20 unique hypotheses, and each hypothesis gets an
acoustic score from forced alignment on a second decoder (sum of log acoustic likelihoods over segments),
because the decoder's A* path score barely tracks the acoustic evidence.

The build is resumable: utterances are written in shards of `SHARD_SIZE` (atomic rename), a finished shard
is never redone, and the final Parquet is assembled from the shards.
"""
from __future__ import annotations

import math
import os
import random
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from prunelab.data.benchmarks import RECOGNISERS
from prunelab.data.nbest import NBEST_SCHEMA
from prunelab.data.text import load_corpus, normalize
from prunelab.data.whisper import SYSTEM as WHISPER
from prunelab.data.whisper import model_folder, unique_hypotheses, whisper_nbest

VOICES = ("slt", "rms", "awb", "kal16")
TEMPO_RANGE = (0.9, 1.1)
# noise per recogniser, chosen so that the LM matters: measured on 30 dev utterances, Whisper tiny.en's 1-best /
# oracle WER is 19% / 11% at 20-35 dB, 42% / 34% at 10-20 dB and 84% / 75% at 0-10 dB
SNR_DB_RANGES = {"pocketsphinx": (20.0, 35.0), "whisper": (12.0, 30.0)}
N_HYPOTHESES = 20
SHARD_SIZE = 50
SYSTEM = "pocketsphinx-5.1.1-en-us"
MIN_WORDS, MAX_WORDS = 5, 16


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    split: str
    reference: str
    voice: str
    tempo: float
    snr_db: float
    seed: int


def plan_utterances(n_dev: int, n_test: int, seed: int = 0, corpus_dir: str | None = None,
                    snr_db_range: tuple[float, float] = SNR_DB_RANGES["pocketsphinx"]) -> list[Utterance]:
    """Choose sentences (dev from valid, test from test), voices, tempo and noise; deterministic for a seed."""
    corpus = load_corpus(corpus_dir)
    rng = random.Random(seed)
    plan = []
    for split, source, count in (("dev", corpus.valid, n_dev), ("test", corpus.test, n_test)):
        candidates = sorted({s for s in source if MIN_WORDS <= len(s.split()) <= MAX_WORDS})
        if len(candidates) < count:
            raise ValueError(f"only {len(candidates)} {split} sentences of {MIN_WORDS}-{MAX_WORDS} words, {count} asked")
        for i, sentence in enumerate(rng.sample(candidates, count)):
            plan.append(Utterance(f"{split}-{i:05d}", split, sentence, rng.choice(VOICES),
                                  round(rng.uniform(*TEMPO_RANGE), 3), round(rng.uniform(*snr_db_range), 1),
                                  rng.randrange(2**31)))
    return plan


def synthesize(utt: Utterance, workdir: str):
    """Speak the reference with flite, tempo-perturb and resample with sox, add white noise; int16 16 kHz."""
    import soundfile  # deferred: the optional [asr] extra

    raw, wav = os.path.join(workdir, "raw.wav"), os.path.join(workdir, "16k.wav")
    subprocess.run(["flite", "-voice", utt.voice, "-t", utt.reference, "-o", raw], check=True, capture_output=True)
    subprocess.run(["sox", raw, "-r", "16000", "-c", "1", "-b", "16", wav, "tempo", str(utt.tempo)],
                   check=True, capture_output=True)
    audio, _ = soundfile.read(wav, dtype="int16")
    signal = audio.astype(np.float64)
    noise_sd = math.sqrt(float(np.mean(signal**2)) / 10 ** (utt.snr_db / 10))
    noisy = signal + np.random.default_rng(utt.seed).normal(0.0, noise_sd, signal.shape)
    return np.clip(noisy, -32768, 32767).astype(np.int16)


_decoders: dict = {}


def _decoder(name: str):
    if name not in _decoders:
        from pocketsphinx import Decoder  # deferred: the optional [asr] extra

        _decoders[name] = Decoder(loglevel="ERROR")
    return _decoders[name]


def _log_acoustic_score(segments) -> float:
    return float(sum(math.log(max(seg.ascore, 1e-300)) for seg in segments))


def recognize(utt: Utterance) -> list[dict]:
    """Decode one utterance; return one row per unique hypothesis (rank 0 = the decoder's best)."""
    with tempfile.TemporaryDirectory() as workdir:
        audio = synthesize(utt, workdir).tobytes()
    decoder = _decoder("search")
    decoder.start_utt()
    decoder.process_raw(audio, full_utt=True)
    decoder.end_utt()
    best = decoder.hyp()
    texts: list[tuple[str, float | None]] = []
    if best is not None:
        texts.append((normalize(best.hypstr), None))
    seen = {texts[0][0]} if texts else set()
    for i, hypothesis in enumerate(decoder.nbest()):
        if len(texts) >= N_HYPOTHESES or i >= 50 * N_HYPOTHESES:
            break
        text = normalize(hypothesis.hypstr)
        if text not in seen:
            seen.add(text)
            texts.append((text, float(hypothesis.score)))
    aligner = _decoder("align")
    rows = []
    for _rank, (text, path_score) in enumerate(texts):
        acoustic = float("nan")
        if text:
            try:
                aligner.set_align_text(text)
                aligner.start_utt()
                aligner.process_raw(audio, full_utt=True)
                aligner.end_utt()
                acoustic = _log_acoustic_score(aligner.seg())
            except (RuntimeError, KeyError, ValueError):
                acoustic = float("nan")  # a word that the dictionary cannot align: dropped below
        if math.isnan(acoustic):
            continue
        rows.append({
            "utt_id": utt.utt_id, "split": utt.split, "system": SYSTEM, "reference": utt.reference,
            "hypothesis": text, "rank": len(rows), "acoustic_score": acoustic, "first_pass_score": path_score,
            "n_words": len(text.split()), "voice": utt.voice, "tempo": utt.tempo, "snr_db": utt.snr_db,
            "score_kind": "acoustic",  # forced alignment: the acoustic model alone
        })
    return rows


def recognize_whisper(utt: Utterance) -> list[dict]:
    """Decode one utterance with Whisper tiny.en; one row per unique normalised hypothesis, in beam order (rank 0 =
    Whisper's best), scored by Whisper's summed token log-prob (which includes its own decoder LM)."""

    with tempfile.TemporaryDirectory() as workdir:
        audio = synthesize(utt, workdir)
    rows = []
    for _raw, text, score in unique_hypotheses(whisper_nbest(audio)):
        rows.append({"utt_id": utt.utt_id, "split": utt.split, "system": WHISPER, "reference": utt.reference,
                     "hypothesis": text, "rank": len(rows), "acoustic_score": score, "first_pass_score": None,
                     "n_words": len(text.split()), "voice": utt.voice, "tempo": utt.tempo, "snr_db": utt.snr_db,
                     "score_kind": "acoustic+lm"})
    return rows


def write_shard(path: Path, rows: list[dict]) -> None:
    table = pa.Table.from_pylist(rows, schema=NBEST_SCHEMA)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def assemble_shards(shard_dir: Path, out: Path) -> pa.Table:
    """The N-best Parquet at `out` from every shard in `shard_dir` (atomic), and its table."""
    shards = sorted(shard_dir.glob("shard-*.parquet"))
    table = pa.concat_tables([pq.read_table(p, schema=NBEST_SCHEMA) for p in shards])
    tmp = out.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, out)
    return table


def _build_shard(args: tuple[Path, list[Utterance], str]) -> str:
    path, utterances, recogniser = args
    decode = recognize_whisper if recogniser == "whisper" else recognize
    rows = [row for utt in utterances for row in decode(utt)]
    write_shard(path, rows)
    return path.name


def build_nbest(out: str | Path, n_dev: int = 600, n_test: int = 3200, workers: int = 2, seed: int = 0,
                corpus_dir: str | None = None, recogniser: str = "pocketsphinx", log=print) -> Path:
    """Build (or resume building) the N-best Parquet at `out` with `recogniser` (pocketsphinx or whisper);
    shards live in `out`.shards/."""
    if recogniser not in RECOGNISERS:
        raise ValueError(f"unknown recogniser {recogniser!r}; expected one of {', '.join(RECOGNISERS)}")
    if recogniser == "whisper":

        model_folder()  # the weights are there and are the pinned ones, before any work starts
    out = Path(out)
    shard_dir = out.with_name(out.name + ".shards")
    shard_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_utterances(n_dev, n_test, seed, corpus_dir, SNR_DB_RANGES[recogniser])
    jobs = []
    for start in range(0, len(plan), SHARD_SIZE):
        path = shard_dir / f"shard-{start // SHARD_SIZE:04d}.parquet"
        if not path.exists():
            jobs.append((path, plan[start:start + SHARD_SIZE], recogniser))
    log(f"{len(plan)} utterances, {len(jobs)} of {math.ceil(len(plan) / SHARD_SIZE)} shards to build")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for done, name in enumerate(pool.map(_build_shard, jobs), 1):
            log(f"shard {name} done ({done}/{len(jobs)})")
    table = assemble_shards(shard_dir, out)
    log(f"wrote {out}: {table.num_rows} hypotheses")
    return out
