"""The Flight of the Amazon Queen extractor on small crafted resource files in the game's layouts."""
import struct

import pytest

from prunelab.data.amazon_queen import ResourceFile, dialogue_lines, game_lines, joe_lines, paired_clips, segments
from prunelab.errors import PrunelabError


def _string(text: str, align: int) -> bytes:
    raw = bytes([len(text)]) + text.encode("latin-1")
    if text:
        raw += b"\0" * (-len(raw) % align)
    return raw


def _entries(lines: dict[int, str]) -> bytes:
    return b"".join(b"\0\0" + struct.pack(">h", line_id) + _string(text, 4) for line_id, text in lines.items())


def crafted_dog(talk_key: int, person: dict[int, str], joe: dict[int, str], again: tuple[str, str]) -> bytes:
    """A dialogue file: AmBk header, talk header, a one-level dialogue tree, Joe's lines, the person's, the XXXX pair."""
    levels = 1
    joe_offset = 32 + levels * 96
    joe_bytes = _entries(joe)
    person_offset = joe_offset + len(joe_bytes)
    person_bytes = _entries(person)
    person2_offset = person_offset + len(person_bytes)
    again_bytes = _string(again[0], 2) + _string(again[1], 2)
    header = struct.pack(">5h", -levels, 7, talk_key, len(joe), len(person)) + b"\0" * 12
    header += struct.pack(">3H", person_offset, person2_offset + len(again_bytes), person2_offset) + b"\0" * 4
    assert len(header) == 32
    body = header + b"\0" * (levels * 96) + joe_bytes + person_bytes + again_bytes
    return b"AmBk" + b"\0" * 16 + body


def crafted_resources(files: dict[str, bytes]) -> bytes:
    table_size = 15 + 21 * len(files)
    table, blobs, offset = b"", b"", table_size
    for name, data in files.items():
        table += struct.pack(">12sBII", name.encode("latin-1"), 1, offset, len(data))
        blobs += data
        offset += len(data)
    return b"QTBL" + b"CEM10\0" + b"\0\0" + b"\x01" + struct.pack(">H", len(files)) + table + blobs


def test_segments_split_at_speech_commands():
    assert segments("Hi.*FLWho are you?*03") == [(1, "Hi."), (2, "Who are you?")]
    assert segments("Wait...*WT*WTGo on.") == [(1, "Wait..."), (3, "Go on.")]
    assert segments("*XY00(237,112)Over here!") == [(2, "Over here!")]
    assert segments("") == []


def test_dialogue_lines_name_clips_like_the_game():
    dog = crafted_dog(2, {1: "You again?*02Go away.", 0x1E: "Fine."}, {0: "Hello!", 0x1E: "Bye."}, ("Back?", "0"))
    lines = dialogue_lines(dog, "AND1")
    assert ("020001P", "You again?*02Go away.", "AND") in lines
    assert ("02001EP", "Fine.", "AND") in lines      # hex ids in upper case, as the table names them
    assert ("02SSSSJ", "Hello!", "JOE") in lines     # Joe's opening line
    assert ("02XXXXP", "Back?", "AND") in lines
    assert not any(prefix == "02XXXXJ" for prefix, _, _ in lines)  # "0" means no line


def test_paired_clips_pair_only_clips_that_exist():
    dog = crafted_dog(12, {1: "One.*02Two."}, {3: "Three."}, ("", ""))
    jas_lines = [f"description {i}*24" for i in range(1186)] + ["to"] + [f"remark {k}" for k in range(1, 38)]
    jas = "\r\n".join(jas_lines + ["Music Volume"]).encode("latin-1")
    files = {"BOB2.DOG": dog, "QUEEN2.JAS": jas, "120001P1.SB": b"mp3", "120001P2.SB": b"mp3",
             "120003J1.SB": b"mp3", "120009P1.SB": b"mp3", "JOE00011.SB": b"mp3", "JOE00421.SB": b"mp3"}
    clips = {clip.name: clip for clip in paired_clips(ResourceFile(crafted_resources(files)))}
    assert clips["120001P1"].text == "One." and clips["120001P2"].text == "Two."
    assert clips["120001P1"].speaker == "BOB" and clips["120001P1"].scene == "BOB2"
    assert clips["120003J1"].speaker == "JOE"
    assert clips["JOE00011"].text == "remark 1"          # remark k is line 1186 + k
    assert clips["JOE00421"].text == "description 1"     # description clip k is line k - 41, the command cut off
    assert "120009P1" not in clips                       # a clip with no line is not paired
    assert len(clips) == 5


def test_game_lines_hold_every_spoken_segment_once_voiced_or_not():
    dog = crafted_dog(12, {1: "One.*02Two.", 2: "One."}, {3: "Three."}, ("Bye.", "0"))
    jas = "\n".join([""] * 1186 + ["to", "It won't open*03"]).encode()
    resources = ResourceFile(crafted_resources({"BOB2.DOG": dog, "QUEEN2.JAS": jas, "120001P1.SB": b"mp3"}))
    assert game_lines(resources) == ["One.", "Two.", "Three.", "Bye.", "It won't open"]


def test_joe_lines_skip_empty_lines():
    jas = "\n".join([""] * 1186 + ["to", "It won't open*03"]).encode()
    assert joe_lines(jas) == [("JOE0001", "It won't open*03", "JOE")]


def test_bad_resource_files_name_what_is_wrong(tmp_path):
    with pytest.raises(PrunelabError, match="no QTBL table"):
        ResourceFile(b"RIFF" + b"\0" * 20)
    truncated = crafted_resources({"A.SB": b"x" * 10})[:-5]
    with pytest.raises(PrunelabError, match="A.SB lies outside the file"):
        ResourceFile(truncated)
    with pytest.raises(PrunelabError, match="does not exist"):
        ResourceFile.open(tmp_path / "queen.1c")
    with pytest.raises(PrunelabError, match="no AmBk header"):
        dialogue_lines(b"XXXX" + b"\0" * 60, "APE")


def test_the_game_text_leaves_out_every_line_of_the_benchmark(tmp_path, monkeypatch):
    """build_amazon_queen.build_game_text on a crafted package (here beside the crafted layouts it needs)."""
    from prunelab.data.amazon_queen import DEBIAN_PACKAGE, DEBIAN_VERSION, RESOURCE_PATH
    from prunelab.data.build_amazon_queen import build_game_text
    from prunelab.data.build_nbest import write_shard

    monkeypatch.setenv("PRUNELAB_HOME", str(tmp_path / "home"))
    resource = tmp_path / "home" / "debs" / f"{DEBIAN_PACKAGE}_{DEBIAN_VERSION}" / RESOURCE_PATH
    resource.parent.mkdir(parents=True)
    dog = crafted_dog(12, {1: "Go away, Joe!*02Fine.", 2: "Hmph."}, {3: "See you, King."}, ("", ""))
    resource.write_bytes(crafted_resources({"BOB2.DOG": dog}))
    row = {"utt_id": "120001P1", "split": "test", "system": "s", "reference": "go away joe", "hypothesis": "go away joe",
           "rank": 0, "acoustic_score": -1.0, "first_pass_score": -1.0, "n_words": 3, "voice": "BOB", "tempo": 1.0,
           "snr_db": 0.0, "score_kind": "acoustic+lm"}
    write_shard(tmp_path / "nbest.parquet", [row])
    out = build_game_text(tmp_path / "text" / "game.txt", exclude_nbest=tmp_path / "nbest.parquet", log=lambda _: None)
    assert out.read_text().splitlines() == ["Fine.", "Hmph.", "See you, King."]
    everything = build_game_text(tmp_path / "all.txt", exclude_nbest=None, log=lambda _: None)
    assert everything.read_text().splitlines()[0] == "Go away, Joe!"
    assert not list((tmp_path / "text").glob(".*"))  # written atomically: no temporary file left
