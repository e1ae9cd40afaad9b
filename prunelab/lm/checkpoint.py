"""Checkpoints: state dict + config + vocabulary in one file, loaded with `torch.load(weights_only=True)`."""
from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import torch

from prunelab.atomic import atomic_write
from prunelab.errors import PrunelabError
from prunelab.lm.model import LMConfig, TransformerLM
from prunelab.lm.vocab import Vocab
from prunelab.lm.word_adapter import WordLM

FORMAT = "prunelab-lm"
VERSION = 1


def _plain(info: dict) -> dict:
    """Only JSON types survive `weights_only` loading: numpy scalars become floats, tuples lists."""
    return json.loads(json.dumps(info, default=float))


def save_checkpoint(path: str | Path, model: TransformerLM, vocab: Vocab, info: dict | None = None) -> Path:
    """Write atomically: a temporary name in the same folder, fsync, then rename. The model's masks
    (unstructured pruning) are stored too, so the loaded model counts only its kept weights."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT, "version": VERSION, "config": model.config.to_dict(),
        "vocab": list(vocab.words), "oov_penalty": float(vocab.oov_penalty),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}, "info": _plain(info or {}),
        "masks": {k: v.detach().clone() for k, v in model.masks.items()},
    }
    return atomic_write(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(path: str | Path) -> tuple[TransformerLM, Vocab, dict]:
    """Load a prunelab checkpoint; refuse anything else (missing, truncated, foreign or pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise PrunelabError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as error:
        if "Weights only load failed" in str(error):
            reason = "it holds pickled objects other than tensors and plain data, which weights-only loading refuses"
        else:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise PrunelabError(f"checkpoint {path} cannot be loaded safely: {reason}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PrunelabError(f"checkpoint {path} is not a prunelab checkpoint")
    config = LMConfig(**payload["config"])
    model = TransformerLM(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise PrunelabError(f"checkpoint {path} does not match its own config: {str(error).splitlines()[0]}") from error
    model.eval()
    model.masks = dict(payload.get("masks") or {})
    return model, Vocab(payload["vocab"], payload["oov_penalty"]), payload.get("info", {})


def load_word_lm(path: str | Path) -> WordLM:
    """A prunelab checkpoint as a model adapter (`WordLM`) carrying its info and path."""
    model, vocab, info = load_checkpoint(path)
    lm = WordLM.of(model, vocab)
    lm.info, lm.source = info, str(path)
    return lm


def save_word_lm(lm: WordLM, path: str | Path, info: dict | None = None) -> Path:
    """A word LM as a checkpoint (its config follows the pruned shapes); returns the path."""
    lm.model.config = lm.current_config()
    return save_checkpoint(path, lm.model, lm.vocab, info)


def word_payload(lm: WordLM) -> dict:
    """Plain data and tensors that rebuild the word LM elsewhere (`word_from_payload`)."""
    return {"kind": lm.kind, "config": lm.current_config().to_dict(), "state_dict": lm.model.state_dict(),
            "vocab": lm.vocab.words, "oov_penalty": lm.vocab.oov_penalty, "masks": dict(lm.masks),
            "source": lm.source}


def word_from_payload(payload: dict) -> WordLM:
    model = TransformerLM(LMConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    model.masks = dict(payload.get("masks") or {})
    lm = WordLM.of(model.eval(), Vocab(list(payload["vocab"]), payload["oov_penalty"]))
    lm.source = payload.get("source", "")
    return lm
