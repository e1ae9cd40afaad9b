"""Planning the real-speech benchmark: the split by scene and the choice of clips (decoding needs the extra
[whisper] and the Debian package; `prunelab data build-nbest --source amazon-queen` runs it)."""
import subprocess
import sys

import pytest

from prunelab.data.amazon_queen import Clip
from prunelab.data.build_amazon_queen import split_by_scene
from prunelab.data.text import normalize

pytestmark = pytest.mark.slow  # trains, prunes or evaluates real models, or runs sweeps (pytest -m "not slow" skips it)


def _clips():
    clips = []
    for scene in range(12):
        for line in range(10):
            text = "Hello there!" if line == 0 else f"Line {chr(97 + line)} of scene {chr(97 + scene)}."
            clips.append(Clip(f"{scene:02d}{line:04X}P1", text, f"PERSON{scene}", f"SCENE{scene}"))
    return clips


def test_split_keeps_scenes_whole_and_no_line_in_both():
    splits = split_by_scene(_clips(), 0.25, seed=0)
    dev_scenes = {c.scene for c in splits["dev"]}
    assert dev_scenes and not dev_scenes & {c.scene for c in splits["test"]}
    assert not {normalize(c.text) for c in splits["dev"]} & {normalize(c.text) for c in splits["test"]}
    assert len(splits["test"]) == 120 - 10 * len(dev_scenes)
    assert len(splits["dev"]) == 9 * len(dev_scenes)  # "Hello there!" is in test too: left out of dev
    assert 0.2 <= len(dev_scenes) / 12 <= 0.35
    assert split_by_scene(_clips(), 0.25, seed=0) == splits and split_by_scene(_clips(), 0.25, seed=1) != splits


@pytest.mark.parametrize("args, message", [
    (["--source", "amazon-queen", "--recogniser", "pocketsphinx"], "--source amazon-queen takes --recogniser"),
    (["--recogniser", "whisper-base"], "--source synthetic takes --recogniser"),
])
def test_a_recogniser_of_the_other_source_is_a_one_line_error(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "prunelab.cli", "data", "build-nbest", *args,
                             "--out", str(tmp_path / "x.parquet")], capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.parquet").exists()


def test_the_amazon_queen_benchmark_ships_split_by_scene_with_raw_text():
    import pyarrow.parquet as pq

    from prunelab.data.nbest import load_nbest, shipped_nbest_path

    nbest = load_nbest("amazon-queen")
    assert nbest.source == str(shipped_nbest_path("amazon-queen")) and nbest.system.startswith("whisper-base")
    assert len(nbest.dev) == 362 and len(nbest.test) == 1161  # of 400 and 1,200 planned: mismatched clips dropped
    table = pq.read_table(shipped_nbest_path("amazon-queen")).to_pylist()
    scenes = {split: {r["scene"] for r in table if r["split"] == split} for split in ("dev", "test")}
    references = {split: {r["reference"] for r in table if r["split"] == split} for split in ("dev", "test")}
    assert scenes["dev"] and not scenes["dev"] & scenes["test"]
    assert not references["dev"] & references["test"]
    first = [r for r in table if r["rank"] == 0]
    assert all(normalize(r["raw_reference"]) == r["reference"] for r in first)
    assert all(normalize(r["raw_hypothesis"]) == r["hypothesis"] for r in table)
    assert any(r["raw_hypothesis"] != r["hypothesis"] for r in first)  # cased, punctuated text is kept

