"""Build an N-best benchmark from real recorded speech: Flight of the Amazon Queen's voice acting, decoded by Whisper.

`prunelab data build-nbest --source amazon-queen --recogniser whisper-base|whisper-tiny.en --out PATH [--dev N]
[--test N]`: fetches the Debian package with `apt-get download` (no install, no root) into PRUNELAB_HOME/debs/,
extracts its resource file with `dpkg-deb -x`, pairs clips with their lines (prunelab/data/amazon_queen.py), splits
them into dev and test by scene (dialogue file; Joe's object remarks are one scene) so that no line text is in both,
and decodes each clip (MP3, 11,025 Hz, resampled to 16 kHz by faster-whisper's decoder) into up to 20 hypotheses.

Rows keep the recogniser's raw text (`raw_hypothesis`) and the game's line (`raw_reference`) beside the normalised ones.
A clip whose line does not match its audio is dropped by one rule, counted in the log: every hypothesis has a word error
rate above `MISMATCH_WER` against the line (a wrong pairing, a shout or a laugh); so are clips over 30 s (Whisper's window)
and lines with no word left after normalising. Resumable: shards of `SHARD_SIZE` clips, written atomically."""
from __future__ import annotations

import io
import json
import math
import os
import random
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq

from prunelab.atomic import atomic_write
from prunelab.data.amazon_queen import (
    DEBIAN_PACKAGE,
    DEBIAN_VERSION,
    RESOURCE_PATH,
    Clip,
    ResourceFile,
    game_lines,
    paired_clips,
)
from prunelab.data.build_nbest import assemble_shards, write_shard
from prunelab.data.nbest import nbest_location
from prunelab.data.text import normalize
from prunelab.data.whisper import MODELS, model_folder, unique_hypotheses, whisper_nbest
from prunelab.errors import PrunelabError
from prunelab.evaluate.wer import word_errors
from prunelab.paths import home

SOURCE = "amazon-queen"
RECOGNISERS = ("whisper-base", "whisper-tiny.en")
MISMATCH_WER = 0.5
MAX_SECONDS = 30.0
SHARD_SIZE = 40
SAMPLE_RATE = 16000


def resource_file(cache: Path | None = None) -> Path:
    """queen.1c from the Debian package, downloaded and unpacked once under PRUNELAB_HOME/debs/."""
    folder = (cache or home()) / "debs" / f"{DEBIAN_PACKAGE}_{DEBIAN_VERSION}"
    target = folder / RESOURCE_PATH
    if target.is_file():
        return target
    for tool in ("apt-get", "dpkg-deb"):
        if not shutil.which(tool):
            raise PrunelabError(f"building the {SOURCE} benchmark needs Debian's {tool} (not found on PATH)")
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["apt-get", "download", f"{DEBIAN_PACKAGE}={DEBIAN_VERSION}"], cwd=folder,
                            capture_output=True, text=True)
    debs = sorted(folder.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    if result.returncode != 0 or not debs:
        last = (result.stderr.strip().splitlines() or ["no .deb"])[-1]
        raise PrunelabError(f"apt-get download {DEBIAN_PACKAGE}={DEBIAN_VERSION} failed: {last}")
    staged = folder / "unpacked.tmp"
    shutil.rmtree(staged, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(staged)], check=True, capture_output=True)
    if not (staged / RESOURCE_PATH).is_file():
        raise PrunelabError(f"{debs[0].name} holds no {RESOURCE_PATH}")
    for child in staged.iterdir():
        os.replace(child, folder / child.name)
    staged.rmdir()
    return target


def split_by_scene(clips: list[Clip], dev_fraction: float, seed: int) -> dict[str, list[Clip]]:
    """Whole scenes to dev (a shuffled order, until `dev_fraction` of the clips) and the rest to test; a dev clip
    whose normalised line is also in test is left out, so that no line is in both."""
    scenes = sorted({clip.scene for clip in clips})
    random.Random(seed).shuffle(scenes)
    dev_scenes, dev_count = set(), 0
    for scene in scenes:
        if dev_count >= dev_fraction * len(clips):
            break
        dev_scenes.add(scene)
        dev_count += sum(clip.scene == scene for clip in clips)
    test = [clip for clip in clips if clip.scene not in dev_scenes]
    test_lines = {normalize(clip.text) for clip in test}
    dev = [clip for clip in clips if clip.scene in dev_scenes and normalize(clip.text) not in test_lines]
    return {"dev": dev, "test": test}


def plan_clips(resources: ResourceFile, n_dev: int, n_test: int, seed: int = 0) -> list[tuple[str, Clip]]:
    """(split, clip) of the clips to decode: a seeded sample of each split's clips with words in their line."""
    clips = [clip for clip in paired_clips(resources) if normalize(clip.text)]
    splits = split_by_scene(clips, n_dev / max(n_dev + n_test, 1), seed)
    rng = random.Random(seed)
    plan = []
    for split, count in (("dev", n_dev), ("test", n_test)):
        pool = splits[split]
        if count > len(pool):
            raise PrunelabError(f"only {len(pool)} {split} clips can be paired, {count} asked (--{split})")
        plan += [(split, clip) for clip in sorted(rng.sample(pool, count), key=lambda c: c.name)]
    return plan


def _word_error_rate(reference: str, hypothesis: str) -> float:
    return word_errors(reference, hypothesis) / max(len(reference.split()), 1)


def decode_clip(resources: ResourceFile, split: str, clip: Clip, recogniser: str) -> tuple[list[dict], str | None]:
    """The N-best rows of one clip, or no rows and why it was dropped."""
    from faster_whisper.audio import (
        decode_audio,  # deferred: the optional [whisper] extra
    )


    audio = decode_audio(io.BytesIO(resources.read(clip.name + ".SB")), sampling_rate=SAMPLE_RATE)
    if len(audio) > MAX_SECONDS * SAMPLE_RATE:
        return [], "longer than 30 s"
    reference = normalize(clip.text)
    rows = []
    for raw, text, score in unique_hypotheses(whisper_nbest(audio, recogniser)):
        rows.append({"utt_id": clip.name, "split": split, "system": MODELS[recogniser].system, "reference": reference,
                     "hypothesis": text, "rank": len(rows), "acoustic_score": score, "first_pass_score": None,
                     "n_words": len(text.split()), "voice": clip.speaker, "tempo": None, "snr_db": None,
                     "score_kind": "acoustic+lm", "raw_reference": clip.text, "raw_hypothesis": raw,
                     "scene": clip.scene})
    if not rows:
        return [], "no hypothesis"
    if min(_word_error_rate(reference, row["hypothesis"]) for row in rows) > MISMATCH_WER:
        return [], "line does not match the audio"
    return rows, None


_resources: dict[str, ResourceFile] = {}


def _build_shard(args: tuple[Path, str, list[tuple[str, Clip]], str]) -> tuple[str, dict[str, int]]:
    path, resource_path, planned, recogniser = args
    resources = _resources.setdefault(resource_path, ResourceFile.open(resource_path))
    rows, dropped = [], {}
    for split, clip in planned:
        clip_rows, reason = decode_clip(resources, split, clip, recogniser)
        rows += clip_rows
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
    path.with_suffix(".dropped.json").write_text(json.dumps(dropped))  # before the shard, whose presence means done
    write_shard(path, rows)
    return path.name, dropped


def build_amazon_queen(out: str | Path, recogniser: str = "whisper-base", n_dev: int = 400, n_test: int = 1200,
                       workers: int = 2, seed: int = 0, log=print) -> Path:
    """Build (or resume building) the real-speech N-best Parquet at `out`; shards live in `out`.shards/."""
    if recogniser not in RECOGNISERS:
        raise PrunelabError(f"--source {SOURCE} takes --recogniser {' or '.join(RECOGNISERS)}, not {recogniser!r}")
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        raise PrunelabError("the amazon-queen benchmark needs the extra [whisper]: pip install -e '.[whisper]'") from None

    model_folder(recogniser)  # fetched and checked before any work starts
    resource_path = resource_file()
    plan = plan_clips(ResourceFile.open(resource_path), n_dev, n_test, seed)
    out = Path(out)
    shard_dir = out.with_name(out.name + ".shards")
    shard_dir.mkdir(parents=True, exist_ok=True)
    (shard_dir / "plan.json").write_text(json.dumps({"recogniser": recogniser, "seed": seed,
                                                    "clips": [[s, c.name] for s, c in plan]}))
    jobs = []
    for start in range(0, len(plan), SHARD_SIZE):
        path = shard_dir / f"shard-{start // SHARD_SIZE:04d}.parquet"
        if not path.exists():
            jobs.append((path, str(resource_path), plan[start:start + SHARD_SIZE], recogniser))
    log(f"{len(plan)} clips ({n_dev} dev, {n_test} test), {len(jobs)} of {math.ceil(len(plan) / SHARD_SIZE)} shards "
        f"to decode with {recogniser}")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for done, (name, dropped) in enumerate(pool.map(_build_shard, jobs), 1):
            log(f"shard {name} done ({done}/{len(jobs)}), dropped {sum(dropped.values())}")
    dropped: dict[str, int] = {}
    for counts in sorted(shard_dir.glob("shard-*.dropped.json")):
        for reason, count in json.loads(counts.read_text()).items():
            dropped[reason] = dropped.get(reason, 0) + count
    table = assemble_shards(shard_dir, out)
    kept = len(set(table["utt_id"].to_pylist()))
    log(f"wrote {out}: {kept} clips, {table.num_rows} hypotheses; dropped {sum(dropped.values())} "
        f"({', '.join(f'{n} {r}' for r, n in sorted(dropped.items())) or 'none'})")
    return out


def build_game_text(out: str | Path, exclude_nbest: str | Path | None = SOURCE, log=print) -> Path:
    """The game's dialogue as a plain text file (one line per spoken segment) for `prunelab adapt --corpus`, without
    any line whose normalised text is a reference of `exclude_nbest` (by default the shipped benchmark, dev and test):
    in-domain text that holds none of the utterances it is then evaluated on."""


    references: set[str] = set()
    if exclude_nbest is not None:
        references = set(pq.read_table(nbest_location(exclude_nbest), columns=["reference"])["reference"].to_pylist())
    lines = game_lines(ResourceFile.open(resource_file()))
    kept = [line for line in lines if normalize(line) and normalize(line) not in references]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda handle: handle.write("".join(f"{line}\n" for line in kept).encode()))
    words = sum(len(normalize(line).split()) for line in kept)
    log(f"wrote {out}: {len(kept):,} lines, {words:,} words of the game's dialogue; left out "
        f"{len(lines) - len(kept):,} lines ({'those of ' + str(exclude_nbest) + ' and ' if exclude_nbest else ''}"
        f"those with no word)")
    return out
