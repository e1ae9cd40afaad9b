"""The shipped N-best benchmarks by name (no heavy imports: the CLI's choices come from here). Each is built by
`prunelab data build-nbest --recogniser NAME` (prunelab/data/build_nbest.py) and ships in prunelab/assets/."""
from __future__ import annotations

SHIPPED_NBEST = {"pocketsphinx": "nbest.parquet", "whisper": "nbest-whisper.parquet",
                 "amazon-queen": "nbest-amazon-queen.parquet"}
RECOGNISERS = ("pocketsphinx", "whisper")  # of the synthetic benchmarks
BUILD_OPTIONS = {"pocketsphinx": "--recogniser pocketsphinx", "whisper": "--recogniser whisper",
                 "amazon-queen": "--source amazon-queen --recogniser whisper-base"}
DEFAULT_NBEST = "pocketsphinx"
NBEST_HELP = (f"N-best benchmark: a shipped one by name ({', '.join(SHIPPED_NBEST)}; default {DEFAULT_NBEST}) "
              f"or a Parquet path")
