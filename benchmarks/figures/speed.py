"""Figure 1: scoring speed-up of each method at 0.5 and 0.25 size beside its MAC-ratio limit."""
from __future__ import annotations

from methods_speed import measure_methods

from prunelab.data.text import load_corpus
from prunelab.evaluate.evaluator import Benchmark
from prunelab.lm.load import load_model

SIZES = [0.5, 0.25]
METHODS = ["unstructured", "structured", "lowrank"]
THREADS, REPEATS = 2, 5


def measure(args) -> dict:
    base = load_model("small")
    sentences = Benchmark.load(max_test_utts=200).speed_sentences()
    rows = measure_methods(base, load_corpus(), sentences, METHODS, SIZES, THREADS, REPEATS,
                           log=lambda row: print(row, flush=True))
    return {"base": "small", "base_params": base.param_counts()["params_total"], "hypotheses": len(sentences),
            "threads": THREADS, "repeats": REPEATS, "rows": rows}
