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
