"""Base models by preset: trained once, cached as checkpoints, loaded from the cache afterwards."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prunelab.data.text import Corpus, load_corpus
from prunelab.errors import PrunelabError
from prunelab.lm.checkpoint import load_checkpoint, save_checkpoint
from prunelab.lm.model import PRESETS, TransformerLM
from prunelab.lm.score import perplexity
from prunelab.lm.train import TrainConfig, train_base
from prunelab.lm.vocab import Vocab
from prunelab.lm.word_adapter import WordLM
from prunelab.paths import cached_model_path, shipped_model_path

# tiny trains for a fixed number of steps (the same model on a busy or a quiet machine, about 2 minutes);
# small for a wall-clock budget
DEFAULT_BUDGET = {"tiny": {"steps": 1200, "minutes": None}, "small": {"steps": 10_000, "minutes": 75.0}}


def default_base_path(preset: str) -> Path:
    """Where `prunelab train-base --preset PRESET` writes: the cache folder, not the working directory."""
    return cached_model_path(preset)


def find_base(preset: str) -> Path | None:
    """The base of `preset`: trained here (the cache) first, else the one shipped with the package."""
    cached = cached_model_path(preset)
    return cached if cached.is_file() else shipped_model_path(preset)


def train_or_load_base(preset: str, out: str | Path | None = None, minutes: float | None = None,
                       steps: int | None = None,
                       corpus: Corpus | None = None, force: bool = False, threads: int | None = None,
                       more: bool = False, log: Callable[[str], None] = print) -> tuple[TransformerLM, Vocab, dict, Path]:
    """Return the cached base model of `preset` at `out`, training it first when missing (or `force`).

    With `more`, the cached model is trained for `minutes` more (a fresh warm-up and cosine schedule) and
    the checkpoint is replaced; its info keeps the totals over all runs."""
    if preset not in PRESETS:
        raise PrunelabError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    existing = Path(out) if out else find_base(preset)
    out = Path(out) if out else default_base_path(preset)
    init, earlier = None, None
    if more:
        if existing is None or not existing.exists():
            raise PrunelabError(f"--more needs an existing checkpoint at {out}")
        model, vocab, earlier = load_checkpoint(existing)
        init = (model, vocab)
    elif existing is not None and existing.exists() and not force:
        model, vocab, info = load_checkpoint(existing)
        log(f"using the {preset} base {existing} (trained {info.get('train_minutes', '?')} min, "
            f"valid ppl {info.get('ppl_valid', float('nan')):.1f}); --force retrains")
        return model, vocab, info, existing
    corpus = corpus or load_corpus()
    budget = dict(DEFAULT_BUDGET[preset])
    if minutes is not None or steps is not None:
        budget = {"minutes": minutes, "steps": steps or 1_000_000}
    limit = f"{budget['minutes']:g} min" if budget["minutes"] else f"{budget['steps']:,} steps"
    log(f"training the {preset} base for up to {limit} on {corpus.n_words('train'):,} words ({corpus.source})")
    train_config = TrainConfig(minutes=budget["minutes"], steps=budget["steps"], threads=threads)
    partial = out.with_name(out.stem + ".partial.pt")
    last_save = [time.monotonic()]

    def save_partial(model, vocab, progress):
        if time.monotonic() - last_save[0] > 60 * train_config.checkpoint_every_minutes:
            save_checkpoint(partial, model, vocab, {"preset": preset, "partial": True, **progress})
            last_save[0] = time.monotonic()

    model, vocab, info = train_base(corpus, preset, train_config, log, on_progress=save_partial, init=init)
    if earlier:
        info["runs"] = earlier.get("runs", [{k: earlier[k] for k in ("steps", "tokens", "train_minutes")}]) + [
            {k: info[k] for k in ("steps", "tokens", "train_minutes")}]
        for key in ("steps", "tokens", "train_minutes", "epochs"):
            info[key] = round(earlier[key] + info[key], 3)
        info["history"] = earlier["history"] + info["history"]
    info["ppl_valid"] = perplexity(WordLM.of(model, vocab), corpus.valid)
    info["corpus"] = corpus.source
    save_checkpoint(out, model, vocab, info)
    partial.unlink(missing_ok=True)
    log(f"saved {out}: valid ppl {info['ppl_valid']:.1f} after {info['train_minutes']} min "
        f"({info['tokens_per_s']:,.0f} tokens/s, {info['epochs']} epochs)")
    return model, vocab, info, out
