"""The N-best benchmark: schema, loading and validation (one row per recogniser hypothesis)."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from prunelab.data.benchmarks import BUILD_OPTIONS, DEFAULT_NBEST, SHIPPED_NBEST
from prunelab.errors import PrunelabError

NBEST_SCHEMA = pa.schema([
    ("utt_id", pa.string()),            # utterance id, unique within the file
    ("split", pa.string()),             # "dev" (weight tuning) or "test" (reported WER)
    ("system", pa.string()),            # the recogniser that produced the list
    ("reference", pa.string()),         # normalised reference transcript
    ("hypothesis", pa.string()),        # normalised hypothesis text
    ("rank", pa.int32()),               # 0 = the recogniser's own best
    ("acoustic_score", pa.float64()),   # log acoustic likelihood (forced alignment), natural log
    ("first_pass_score", pa.float64()), # the recogniser's own path score where available, else null
    ("n_words", pa.int32()),            # words in the hypothesis
    ("voice", pa.string()),             # speaker (TTS voice)
    ("tempo", pa.float64()),            # tempo perturbation factor
    ("snr_db", pa.float64()),           # signal-to-noise ratio of the added noise, dB
    ("score_kind", pa.string()),        # "acoustic" (acoustic model only) or "acoustic+lm" (includes the recogniser's LM)
    ("raw_reference", pa.string()),     # the reference as written (cased, punctuated) where known, else null
    ("raw_hypothesis", pa.string()),    # the recogniser's own text before normalising where known, else null
    ("scene", pa.string()),             # the group the dev/test split keeps together (recorded speech), else null
])
LATER_COLUMNS = ("score_kind", "raw_reference", "raw_hypothesis", "scene")  # the first shipped file predates these
REQUIRED_COLUMNS = ("utt_id", "split", "reference", "hypothesis", "rank", "acoustic_score")


@dataclass(frozen=True)
class NBestUtterance:
    utt_id: str
    reference: str
    hypotheses: list[str]      # rank order; index 0 is the recogniser's 1-best
    acoustic_scores: list[float]
    raw_hypotheses: list[str | None] | None = None  # the recogniser's own text per hypothesis, where the file has it


@dataclass(frozen=True)
class NBestSet:
    source: str
    dev: list[NBestUtterance]
    test: list[NBestUtterance]
    system: str


def shipped_nbest_path(name: str = DEFAULT_NBEST) -> Path:
    return Path(str(resources.files("prunelab") / "assets" / SHIPPED_NBEST[name]))


def nbest_location(nbest: str | Path | None) -> Path:
    """The Parquet file meant by `--nbest` / a spec's `data.nbest`: a shipped benchmark's name (None: the default) or
    a path."""
    if nbest is None or str(nbest) in SHIPPED_NBEST and not Path(nbest).exists():
        name = DEFAULT_NBEST if nbest is None else str(nbest)
        path = shipped_nbest_path(name)
        if not path.is_file():
            raise PrunelabError(f"the {name} N-best benchmark is not built: `prunelab data build-nbest {BUILD_OPTIONS[name]} "
                                f"--out {path}` builds it")
        return path
    return Path(nbest)


def _group(table: pa.Table, split: str) -> list[NBestUtterance]:
    rows = table.filter(pa.compute.equal(table["split"], split)).sort_by([("utt_id", "ascending"), ("rank", "ascending")])
    raws = rows["raw_hypothesis"].to_pylist() if "raw_hypothesis" in rows.column_names else [None] * rows.num_rows
    grouped: dict[str, NBestUtterance] = {}
    for utt_id, reference, hypothesis, score, raw in zip(*(rows[c].to_pylist() for c in
                                                           ("utt_id", "reference", "hypothesis", "acoustic_score")), raws):
        utt = grouped.setdefault(utt_id, NBestUtterance(utt_id, reference, [], [], []))
        utt.hypotheses.append(hypothesis or "")
        utt.acoustic_scores.append(float(score))
        utt.raw_hypotheses.append(raw)
    return list(grouped.values())


def load_nbest(path: str | Path | None = None) -> NBestSet:
    """Read and validate an N-best Parquet file (the shipped one when `path` is None)."""
    path = nbest_location(path)
    if not path.is_file():
        raise PrunelabError(f"N-best file {path} does not exist")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise PrunelabError(f"N-best file {path} is not a readable Parquet file ({error})") from error
    missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
    if missing:
        raise PrunelabError(f"N-best file {path} is missing column(s): {', '.join(missing)}")
    table = pq.read_table(path, columns=[c for c in NBEST_SCHEMA.names if c in schema.names])
    if table["acoustic_score"].null_count:
        raise PrunelabError(f"N-best file {path}: column acoustic_score has null values")
    for column in ("acoustic_score", "first_pass_score"):
        if column in table.column_names:
            finite = pc.is_finite(table[column].cast(pa.float64()))
            if pc.any(pc.invert(pc.fill_null(finite, True))).as_py():
                raise PrunelabError(f"N-best file {path}: column {column} has non-finite values (inf or NaN)")
    splits = set(table["split"].to_pylist())
    for split in ("dev", "test"):
        if split not in splits:
            raise PrunelabError(f"N-best file {path} has no {split} split (column split holds {sorted(splits)})")
    system = ",".join(sorted(set(table["system"].to_pylist()))) if "system" in table.column_names else "unknown"
    nbest = NBestSet(str(path), _group(table, "dev"), _group(table, "test"), system)
    del table
    # Arrow's allocator keeps the freed table's pages for reuse (about 55 MB for the shipped file); the
    # rest of a run does not use Arrow, so they go back to the system
    pa.default_memory_pool().release_unused()
    return nbest
