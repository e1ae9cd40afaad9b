"""Build the shipped English text corpus from Debian-packaged public-domain text.

Needs (apt): diatheke sword-text-web bible-kjv fortunes dict-devil wordnet-base, and the
`r-cran-janeaustenr` .deb unpacked with `apt-get download` + `dpkg -x` (no R needed), decoded with the
PyPI package `rdata` (extra `[asr]`). Run: `prunelab data build-corpus --out DIR`.

Documents are held out whole: Bible books by name (the same book in both translations lands in the
same split), everything else by a hash of its document id.
"""
from __future__ import annotations

import glob
import gzip
import hashlib
import json
import lzma
import os
import re
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from prunelab.data.text import SPLITS, split_sentences
from prunelab.errors import PrunelabError

# Bible books held out from training, named as diatheke (WEB) and bible-kjv print them.
HELD_OUT_BOOKS = {
    "valid": {"web": {"Ruth", "Philippians", "Jonah"}, "kjv": {"Ruth", "Phi", "Jonah"}},
    "test": {"web": {"Esther", "Esther (Greek)", "Mark", "Colossians"}, "kjv": {"Est", "Mark", "Col"}},
}
HASH_HELD_OUT_PERCENT = {"valid": 2, "test": 2}

SOURCES = {
    "web": "World English Bible 2015 (sword-text-web, read with diatheke); public domain",
    "kjv": "King James Version (bible-kjv-text); public domain",
    "austen": "Jane Austen's six novels (r-cran-janeaustenr data); public domain texts, package MIT",
    "fortunes": "fortune cookie files (fortunes, non-offensive set); BSD licence",
    "devil": "Ambrose Bierce, The Devil's Dictionary (dict-devil); public domain",
    "wordnet": "WordNet 3.0 glosses (wordnet-base); WordNet licence (free use with attribution)",
}

Document = tuple[str, str, list[str]]  # (source, document id, sentences)


def _run(args: list[str]) -> str:
    try:
        return subprocess.run(args, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout
    except FileNotFoundError as error:
        raise PrunelabError(f"{args[0]} is not installed; see prunelab/data/build_corpus.py for the apt packages") from error


def web_bible() -> Iterator[Document]:
    osis = _run(["diatheke", "-b", "engWEB2015eb", "-o", "n", "-f", "OSIS", "-k", "Genesis 1:1-Revelation 22:21"])
    names = {m.group(1) for m in re.finditer(r"^([A-Z][A-Za-z ()]+?) \d+:\d+: ", osis, re.M)}
    reference = re.compile("(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r") \d+:\d+: ")
    books: dict[str, list[str]] = {}
    for line in osis.splitlines():
        found = list(reference.finditer(line))
        if not found:
            continue
        text = re.sub(r"<[^>]+>", " ", line[found[-1].end():])
        books.setdefault(found[-1].group(1), []).append(text)
    for book, verses in books.items():
        yield "web", book, split_sentences(" ".join(verses))


def kjv_bible() -> Iterator[Document]:
    books: dict[str, list[str]] = {}
    for line in _run(["bible", "-f", "gen1:1-rev22:21"]).splitlines():
        match = re.match(r"^(\d?[A-Za-z]+)\d+:\d+ (.*)$", line)
        if match:
            books.setdefault(match.group(1), []).append(match.group(2))
    for book, verses in books.items():
        yield "kjv", book, split_sentences(" ".join(verses))


def austen_novels() -> Iterator[Document]:
    import rdata  # deferred: the optional [asr] extra

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "r-cran-janeaustenr"], cwd=tmp, check=True, capture_output=True)
        deb = glob.glob(os.path.join(tmp, "*.deb"))[0]
        subprocess.run(["dpkg", "-x", deb, tmp], check=True)
        data = glob.glob(os.path.join(tmp, "usr/lib/R/site-library/janeaustenr/data"))[0]
        index = rdata.conversion.convert(rdata.parser.parse_data(gzip.decompress(Path(data, "Rdata.rdx").read_bytes())))
        blob = Path(data, "Rdata.rdb").read_bytes()
        for novel, (offset, length) in index["variables"].items():
            chunk = blob[int(offset): int(offset + length)]
            lines = rdata.conversion.convert(rdata.parser.parse_data(zlib.decompress(chunk[4:])))
            chapter, paragraphs = 0, []
            for line in list(lines) + ["CHAPTER END"]:
                if re.match(r"^\s*(CHAPTER|Chapter)\b", str(line)):
                    if paragraphs:
                        yield "austen", f"{novel}/{chapter}", split_sentences(" ".join(paragraphs).replace("\x00", ""))
                    chapter, paragraphs = chapter + 1, []
                else:
                    paragraphs.append(str(line) if str(line).strip() else "\n\n")


def _blocks(source: str, name: str, items: list[str], size: int) -> Iterator[Document]:
    for start in range(0, len(items), size):
        sentences = [s for item in items[start: start + size] for s in split_sentences(item)]
        yield source, f"{name}/{start // size}", sentences


def fortunes() -> Iterator[Document]:
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if path.endswith((".dat", ".u8")) or os.path.isdir(path) or os.path.islink(path):
            continue
        cookies = Path(path).read_text(encoding="utf-8", errors="replace").split("\n%\n")
        yield from _blocks("fortunes", os.path.basename(path), [c.replace("\n", " ") for c in cookies], 40)


def devils_dictionary() -> Iterator[Document]:
    text = gzip.decompress(Path("/usr/share/dictd/devil.dict.dz").read_bytes()).decode("utf-8", errors="replace")
    entries = [entry.replace("\n", " ") for entry in re.split(r"\n\s*\n", text)]
    yield from _blocks("devil", "entries", entries, 40)


def wordnet_glosses() -> Iterator[Document]:
    for part in ("noun", "verb", "adj", "adv"):
        glosses = []
        for line in Path(f"/usr/share/wordnet/data.{part}").read_text(encoding="utf-8", errors="replace").splitlines():
            if "|" in line and not line.startswith("  "):
                gloss = line.split("|", 1)[1]
                glosses.extend(piece.strip().strip('"') for piece in gloss.split(";"))
        yield from _blocks("wordnet", part, [g + "." for g in glosses if g], 400)


def assign_split(source: str, doc_id: str) -> str:
    for split in ("valid", "test"):
        if doc_id in HELD_OUT_BOOKS[split].get(source, ()):
            return split
    if source in ("web", "kjv"):
        return "train"
    bucket = int(hashlib.sha1(f"{source}/{doc_id}".encode()).hexdigest(), 16) % 100
    if bucket < HASH_HELD_OUT_PERCENT["valid"]:
        return "valid"
    if bucket < HASH_HELD_OUT_PERCENT["valid"] + HASH_HELD_OUT_PERCENT["test"]:
        return "test"
    return "train"


def build_corpus(out: str | Path) -> dict:
    """Write train/valid/test.txt.xz and MANIFEST.json to `out`; returns the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    collected = {split: [] for split in SPLITS}
    counts: dict[str, dict[str, int]] = {}
    for reader in (web_bible, kjv_bible, austen_novels, fortunes, devils_dictionary, wordnet_glosses):
        for source, doc_id, sentences in reader():
            split = assign_split(source, doc_id)
            collected[split].extend(sentences)
            per_source = counts.setdefault(source, {s: 0 for s in SPLITS})
            per_source[split] += sum(len(s.split()) for s in sentences)
    for split, sentences in collected.items():
        with lzma.open(out / f"{split}.txt.xz.tmp", "wt", encoding="utf-8", preset=9) as handle:
            handle.write("\n".join(sentences) + "\n")
        os.replace(out / f"{split}.txt.xz.tmp", out / f"{split}.txt.xz")
    manifest = {
        "sources": SOURCES,
        "words": counts,
        "total_words": {s: sum(c[s] for c in counts.values()) for s in SPLITS},
        "sentences": {s: len(v) for s, v in collected.items()},
        "held_out_books": {k: {src: sorted(v) for src, v in d.items()} for k, d in HELD_OUT_BOOKS.items()},
        "hash_held_out_percent": HASH_HELD_OUT_PERCENT,
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
