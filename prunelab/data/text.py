"""ASR-style text normalisation and the text corpus (train / valid / test sentences)."""
from __future__ import annotations

import lzma
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from prunelab.errors import PrunelabError

SPLITS = ("train", "valid", "test")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n\s*\n")
_NOT_WORD = re.compile(r"[^a-z']+")
_EDGE_APOSTROPHES = re.compile(r"(^|\s)'+|'+(?=\s|$)")


def normalize(text: str) -> str:
    """Lowercase words of a-z and apostrophe, single-spaced: how an ASR reference is written.

    >>> normalize("“Let there be light,” and there was light. It's 10 o'clock!")
    "let there be light and there was light it's o'clock"
    """
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = _NOT_WORD.sub(" ", text)
    text = _EDGE_APOSTROPHES.sub(" ", text)
    return " ".join(text.split())


def split_sentences(text: str) -> list[str]:
    """Split running text at sentence punctuation and normalise each piece; empty pieces are dropped."""
    pieces = (normalize(piece) for piece in _SENTENCE_END.split(text))
    return [piece for piece in pieces if piece]


@dataclass(frozen=True)
class Corpus:
    """Normalised sentences per split, one string per sentence."""

    train: list[str]
    valid: list[str]
    test: list[str]
    source: str

    def split(self, name: str) -> list[str]:
        if name not in SPLITS:
            raise PrunelabError(f"unknown corpus split {name!r}; expected one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def n_words(self, name: str) -> int:
        return sum(len(sentence.split()) for sentence in self.split(name))


def shipped_corpus_dir() -> Path:
    return Path(str(resources.files("prunelab") / "assets" / "corpus"))


def _read_lines(path: Path) -> list[str]:
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def _find_split_file(folder: Path, split: str) -> Path | None:
    for name in (f"{split}.txt.xz", f"{split}.txt"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_corpus(folder: str | Path | None = None) -> Corpus:
    """Load a corpus folder holding train/valid/test as `.txt` or `.txt.xz`, one sentence a line.

    With no folder, the corpus shipped inside the package is used. User text is normalised the same way
    as the shipped text, so a user may bring raw prose one sentence (or paragraph) a line.
    """
    path = shipped_corpus_dir() if folder is None else Path(folder)
    if not path.is_dir():
        raise PrunelabError(f"corpus folder {path} does not exist")
    splits = {}
    for split in SPLITS:
        found = _find_split_file(path, split)
        if found is None:
            raise PrunelabError(f"corpus folder {path} has no {split} text ({split}.txt or {split}.txt.xz)")
        sentences = [s for line in _read_lines(found) for s in ([line] if folder is None else split_sentences(line))]
        if not sentences:
            raise PrunelabError(f"corpus file {found} holds no sentences")
        splits[split] = sentences
    return Corpus(source=str(path), **splits)


HELD_OUT_EVERY = 50  # load_training_text: every 50th sentence of plain text is held out as valid text


def load_training_text(path: str | Path | None = None) -> Corpus:
    """Text to train on: a corpus folder (train/valid/test, as `load_corpus`), or plain text of one's own, a
    `.txt` file or a folder of them (raw prose; split into sentences and normalised), of which every
    `HELD_OUT_EVERY`th sentence is held out as the valid text that progress lines measure (test = valid)."""
    if path is None:
        return load_corpus()
    path = Path(path)
    if path.is_dir() and all(_find_split_file(path, split) for split in SPLITS):
        return load_corpus(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith((".txt", ".txt.xz")))
        if not files:
            raise PrunelabError(f"{path} holds neither train/valid/test text nor any .txt file")
    elif path.is_file():
        files = [path]
    else:
        raise PrunelabError(f"text {path} does not exist: give a corpus folder, a .txt file or a folder of them")
    sentences = [s for file in files for line in _read_lines(file) for s in split_sentences(line)]
    if len(sentences) < 2:
        raise PrunelabError(f"{path} holds {len(sentences)} sentence(s): too little text to train on and hold out")
    every = min(HELD_OUT_EVERY, len(sentences))
    valid = sentences[every - 1::every]
    train = [s for i, s in enumerate(sentences) if (i + 1) % every]
    return Corpus(train=train, valid=valid, test=valid, source=str(path))
