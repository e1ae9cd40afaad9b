"""Flight of the Amazon Queen's voice acting, paired with its lines: real recorded speech with transcripts.

The Debian package `flight-of-the-amazon-queen` 1.0.0-9 (freeware: it may be copied and redistributed with its notices,
for no fee) holds the game's resources in one file, `queen.1c`:

- a table: `QTBL`, a 6-byte version (`CEM10`), 2 bytes, a compression byte (1 = MP3 speech), a big-endian uint16
  entry count, then per entry a 12-byte NUL-padded name, a bundle byte, a BE32 offset and a BE32 size;
- about 6,700 speech clips `*.SB` (MP3, 11,025 Hz mono) named after the line they speak;
- 73 dialogue files `*.DOG`: a 20-byte `AmBk` header, then a talk header (level count, unique key, talk key, Joe's and
  the person's line counts, ...), a dialogue tree of `levels x 6 x 16` bytes from byte 32, and the lines: each entry is
  2 bytes, a BE int16 line id and a length-prefixed string padded to 4 bytes. A person's line `id` is spoken in the
  clips `"%2d%4X" % (talk key, id) + "P" + segment`, Joe's answers the same with "J" (spaces become 0); id 0 of
  Joe's lines is his opening line (`SSSS`), and the two strings after the person-2 offset are what both say when they
  meet again (`XXXX`);
- `QUEEN2.JAS`: the game's text, one string a line (CR LF); Joe's remarks `JOE%04d` + segment: remark k (1-37) is line
  1186 + k, object description k - 40 (k > 40) is line k - 41.

A line is cut into segments at `*` commands (`*NN` or two letters; `*XY` carries 11 more characters): the text before
each command is one clip, numbered from 1 in hex, and so is the rest after the last command. This module only reads
bytes; it needs no game engine, no audio library and no network."""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from prunelab.errors import PrunelabError

DEBIAN_PACKAGE = "flight-of-the-amazon-queen"
DEBIAN_VERSION = "1.0.0-9"
RESOURCE_PATH = "usr/share/scummvm/flight-of-the-amazon-queen/queen.1c"
TABLE_MAGIC = b"QTBL"
TABLE_ENTRY = struct.Struct(">12sBII")
DOG_HEADER_BYTES = 20
JOE_REMARKS = 37              # QUEEN2.JAS lines 1187-1223
JOE_REMARK_FIRST_LINE = 1186  # remark k is line 1186 + k
OBJECT_DESCRIPTION_OFFSET = 41  # description clip JOE%04d (k > 40) is line k - 41
_COMMAND = re.compile(r"\*(XY.{11}|..)", re.S)


@dataclass(frozen=True)
class Clip:
    """One speech clip and the text it speaks."""

    name: str      # resource name without .SB, e.g. "020001P2"
    text: str      # the game's text for the clip, cased and punctuated
    speaker: str   # "JOE" or the person's dialogue file stem without digits, e.g. "APE"
    scene: str     # the dialogue file stem ("APE2") or "OBJECTS" for Joe's remarks and descriptions


class ResourceFile:
    """The resources in `queen.1c`, by name."""

    def __init__(self, data: bytes, source: str = "queen.1c"):
        self.source = source
        if data[:4] != TABLE_MAGIC or len(data) < 15:
            raise PrunelabError(f"{source} is not a Flight of the Amazon Queen resource file (no QTBL table)")
        count = struct.unpack_from(">H", data, 13)[0]
        self.compression = data[12]
        self.entries: dict[str, tuple[int, int]] = {}
        position = 15
        for _ in range(count):
            if position + TABLE_ENTRY.size > len(data):
                raise PrunelabError(f"{source}: the table ends early ({count} entries announced)")
            raw_name, _bundle, offset, size = TABLE_ENTRY.unpack_from(data, position)
            position += TABLE_ENTRY.size
            name = raw_name.rstrip(b"\0").decode("latin-1")
            if offset + size > len(data):
                raise PrunelabError(f"{source}: entry {name} lies outside the file ({offset}+{size} > {len(data)})")
            self.entries[name] = (offset, size)
        self._data = data

    @classmethod
    def open(cls, path: str | Path) -> ResourceFile:
        path = Path(path)
        if not path.is_file():
            raise PrunelabError(f"{path} does not exist")
        return cls(path.read_bytes(), str(path))

    def read(self, name: str) -> bytes:
        offset, size = self.entries[name]
        return self._data[offset:offset + size]

    def names(self, suffix: str) -> list[str]:
        return sorted(name for name in self.entries if name.endswith(suffix))


def segments(sentence: str) -> list[tuple[int, str]]:
    """(clip number, text) of each spoken segment of a line, empty ones left out.

    >>> segments("Hello there.*03Who are you?*FL")
    [(1, 'Hello there.'), (2, 'Who are you?')]
    >>> segments("*XY00(237,112)I'll go.")
    [(2, "I'll go.")]
    """
    pieces, start, number = [], 0, 1
    for command in _COMMAND.finditer(sentence):
        pieces.append((number, sentence[start:command.start()]))
        number, start = number + 1, command.end()
    pieces.append((number, sentence[start:]))
    return [(n, text.strip()) for n, text in pieces if text.strip()]


def _string(data: bytes, offset: int, align: int) -> tuple[str, int]:
    """A length-prefixed string at `offset` and the offset after it (rounded up to `align` when not empty)."""
    length = data[offset]
    offset += 1
    if not length:
        return "", offset
    text = data[offset:offset + length].decode("latin-1")
    return text, (offset + length + align - 1) & ~(align - 1)


def _lines(data: bytes, offset: int, count: int) -> dict[int, str]:
    found = {}
    for _ in range(count):
        line_id = struct.unpack_from(">h", data, offset + 2)[0]
        text, offset = _string(data, offset + 4, 4)
        found.setdefault(line_id, text)
    return found


def _prefix(talk_key: int, code: str, who: str) -> str:
    return f"{talk_key:2d}{code}{who}".replace(" ", "0").upper()  # the table's names are upper case


def dialogue_lines(dog: bytes, stem: str) -> list[tuple[str, str, str]]:
    """(clip prefix, line text, speaker) of every line of one dialogue file; `stem` is its name without .DOG."""
    if dog[:4] != b"AmBk" or len(dog) < DOG_HEADER_BYTES + 32:
        raise PrunelabError(f"{stem}.DOG has no AmBk header")
    data = dog[DOG_HEADER_BYTES:]
    levels, _unique, talk_key, joe_count, person_count = struct.unpack_from(">5h", data, 0)
    person_offset, _cutaway_offset, person2_offset = struct.unpack_from(">3H", data, 22)
    joe_offset = 32 + abs(levels) * 96
    person = stem.rstrip("0123456789") or stem
    found = []
    for line_id, text in _lines(data, person_offset, person_count).items():
        found.append((_prefix(talk_key, f"{line_id:4x}", "P"), text, person))
    for line_id, text in _lines(data, joe_offset, joe_count).items():
        code = "SSSS" if line_id == 0 else f"{line_id:4x}"
        found.append((_prefix(talk_key, code, "J"), text, "JOE"))
    person_again, offset = _string(data, person2_offset, 2)
    joe_again, _ = _string(data, offset, 2)
    found.append((_prefix(talk_key, "XXXX", "P"), person_again, person))
    found.append((_prefix(talk_key, "XXXX", "J"), joe_again, "JOE"))
    return [(prefix, text, speaker) for prefix, text, speaker in found if text and text != "0"]


def joe_lines(jas: bytes) -> list[tuple[str, str, str]]:
    """(clip prefix, line text, speaker) of Joe's remarks and object descriptions in QUEEN2.JAS."""
    lines = jas.decode("latin-1").replace("\r\n", "\n").split("\n")
    found = []
    for k in range(1, JOE_REMARKS + 1):
        if JOE_REMARK_FIRST_LINE + k < len(lines):
            found.append((f"JOE{k:04d}", lines[JOE_REMARK_FIRST_LINE + k], "JOE"))
    for k in range(OBJECT_DESCRIPTION_OFFSET, min(JOE_REMARK_FIRST_LINE, len(lines)) + OBJECT_DESCRIPTION_OFFSET):
        found.append((f"JOE{k:04d}", lines[k - OBJECT_DESCRIPTION_OFFSET], "JOE"))
    return [(prefix, text, speaker) for prefix, text, speaker in found if text.strip()]


def paired_clips(resources: ResourceFile) -> list[Clip]:
    """Every speech clip in the resource file whose text is known, in name order."""
    clips = set(name[:-3] for name in resources.names(".SB"))
    found: dict[str, Clip] = {}

    def add(prefix: str, text: str, speaker: str, scene: str) -> None:
        for number, piece in segments(text):
            name = f"{prefix}{number:X}"
            if name in clips and name not in found:
                found[name] = Clip(name, piece, speaker, scene)

    for dog in resources.names(".DOG"):
        stem = dog[:-4]
        for prefix, text, speaker in dialogue_lines(resources.read(dog), stem):
            add(prefix, text, speaker, stem)
    if "QUEEN2.JAS" in resources.entries:
        for prefix, text, speaker in joe_lines(resources.read("QUEEN2.JAS")):
            add(prefix, text, speaker, "OBJECTS")
    return [found[name] for name in sorted(found)]


def game_lines(resources: ResourceFile) -> list[str]:
    """Every spoken segment of every line in the resource file, voiced or not, first occurrence order, no repeats:
    the game's own dialogue text (in-domain text for `prunelab adapt`)."""
    seen: dict[str, None] = {}
    texts = [text for dog in resources.names(".DOG") for _, text, _ in dialogue_lines(resources.read(dog), dog[:-4])]
    if "QUEEN2.JAS" in resources.entries:
        texts += [text for _, text, _ in joe_lines(resources.read("QUEEN2.JAS"))]
    for text in texts:
        for _, piece in segments(text):
            seen.setdefault(piece, None)
    return list(seen)
