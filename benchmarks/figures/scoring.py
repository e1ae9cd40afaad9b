"""N-best scoring speed: today's path (each hypothesis on its own, fp32) against prefix-shared scoring in bf16,
side by side in one process; and end-to-end `prunelab eval` both ways (benchmarks/scoring_speed.py)."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from prunelab.evaluate.evaluator import Benchmark, neural_scorer
from prunelab.lm.load import load_model
from prunelab.lm.precision import resolve_precision
from prunelab.lm.prefix_score import Trie

# (scoring, precision): the first is today's path, the last the new default where bf16 is native
PATHS = [("independent", "fp32"), ("independent", "bf16"), ("prefix-tree", "fp32"), ("prefix-tree", "bf16")]
TODAY, NEW = ("independent", "fp32"), ("prefix-tree", "auto")


def path_name(path: tuple[str, str]) -> str:
    return f"{path[0]} {path[1]}"


def _tokens(lm, groups: list[list[str]]) -> tuple[int, int]:
    """Scored tokens of the hypotheses, and the inner nodes of their tries (what prefix sharing computes)."""
    sequences = [[lm.tokenizer.ids(text) for text in group] for group in groups]
    scored = sum(len(seq) - 1 for group in sequences for seq in group)
    return scored, sum(len(Trie.of(group)) for group in sequences)


def measure_paths(model: str, nbest: str, utterances: int, repeats: int, threads: int, log=print) -> dict:
    """tokens/s of scoring the first `utterances` test N-best lists by each of PATHS, the paths timed in turn
    (round-robin, one warm-up each), median of `repeats`; log-prob differences against today's path."""
    torch.set_num_threads(threads)
    lm = load_model(model)
    groups = Benchmark.load(nbest_path=nbest, max_test_utts=utterances).test.texts
    scored, trie_inputs = _tokens(lm, groups)
    scorers = {path: neural_scorer(lm, *path) for path in PATHS}
    warm = groups[:4]
    for scorer in scorers.values():
        scorer(warm)
    times: dict = {path: [] for path in PATHS}
    scores: dict = {}
    for _ in range(repeats):
        for path, scorer in scorers.items():
            started = time.perf_counter()
            scores[path] = scorer(groups)
            times[path].append(time.perf_counter() - started)
    reference = scores[TODAY]
    rows = []
    for path in PATHS:
        seconds = statistics.median(times[path])
        diffs = sorted(abs(a - b) for a, b in zip(scores[path], reference))
        rows.append({"path": path_name(path), "seconds": seconds, "tokens_per_s": scored / seconds,
                     "speedup": statistics.median(times[TODAY]) / seconds,
                     "max_abs_diff": diffs[-1], "median_abs_diff": diffs[len(diffs) // 2]})
        log(f"{model} {nbest} {rows[-1]}")
    return {"model": model, "nbest": nbest, "utterances": len(groups), "hypotheses": len(reference),
            "scored_tokens": scored, "trie_inputs": trie_inputs, "threads": threads, "repeats": repeats, "rows": rows}


def run_eval(model: str, nbest: str, extra: list[str]) -> dict:
    """One `prunelab eval --json` in a fresh interpreter: its wall time and figures."""
    command = [str(Path(sys.executable).with_name("prunelab")), "eval", model, "--nbest", nbest, "--json", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    figures = json.loads(done.stdout[done.stdout.index("{"):])
    keep = ("wer", "wer_ci_low", "wer_ci_high", "wer_dev", "wer_1best", "ppl_valid", "ppl_test", "tokens_per_s",
            "n_test_utts", "n_dev_utts", "scoring_precision", "speed_threads")
    return {"command": " ".join(["prunelab", *command[1:]]), "seconds": seconds, **{k: figures.get(k) for k in keep}}


def measure_eval(model: str, nbest: str, limits: list[str], log=print) -> dict:
    """End-to-end `prunelab eval` with today's path (`--scoring independent --scoring-precision fp32`), then
    with the defaults (prefix-tree, auto precision), one after the other on the same machine; `limits` are
    eval's options that bound the work (`--max-test-utts N`, ...), the same for both."""
    today = run_eval(model, nbest, [*limits, "--scoring", "independent", "--scoring-precision", "fp32"])
    log(f"{model} {nbest} today {today}")
    new = run_eval(model, nbest, limits)
    log(f"{model} {nbest} new {new}")
    return {"model": model, "nbest": nbest, "limits": " ".join(limits), "today": today, "new": new, "speedup": today["seconds"] / new["seconds"],
            "auto_precision": resolve_precision("auto", "cpu"), "torch_threads": torch.get_num_threads()}
