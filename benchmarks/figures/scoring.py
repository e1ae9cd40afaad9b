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

import numpy as np
import torch

from prunelab.evaluate.evaluator import Benchmark, neural_scorer
from prunelab.evaluate.wer import paired_bootstrap_diff
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


def run_eval(model: str, nbest: str, extra: list[str], with_errors: bool = True) -> dict:
    """One `prunelab eval --json` in a fresh interpreter: its wall time and figures."""
    command = [str(Path(sys.executable).with_name("prunelab")), "eval", model, "--nbest", nbest, "--json", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    figures = json.loads(done.stdout[done.stdout.index("{"):])
    keep = ("utt_errors",) if with_errors else ()
    keep += ("wer", "wer_ci_low", "wer_ci_high", "wer_dev", "wer_1best", "ppl_valid", "ppl_test", "tokens_per_s",
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
    # the default's WER minus today's, paired over the test utterances (each at its own dev-tuned weights)
    bench = Benchmark.load(nbest_path=nbest, max_test_utts=today["n_test_utts"])
    diff, interval = paired_bootstrap_diff(np.array(new.pop("utt_errors")), np.array(today.pop("utt_errors")),
                                           bench.test.ref_words)
    return {"model": model, "nbest": nbest, "limits": " ".join(limits), "today": today, "new": new,
            "wer_diff": diff, "wer_diff_ci_low": interval.low, "wer_diff_ci_high": interval.high, "speedup": today["seconds"] / new["seconds"],
            "auto_precision": resolve_precision("auto", "cpu"), "torch_threads": torch.get_num_threads()}


# the aten kernels of matrix products (the work the MAC ratio counts); every other op's time is "other"
PRODUCT_LEAVES = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}


def time_breakdown(lm, sequences: list[list[int]], precision: str) -> dict:
    """Seconds of one scoring pass (`sequence_logprobs`) in matrix products (mm / addmm / bmm: the weight
    matrices, the output layer) and in everything else (attention's softmax, norms, activations, element-wise
    and copies), from torch.profiler's self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    from prunelab.lm.score import sequence_logprobs

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        sequence_logprobs(lm, sequences, precision=precision)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    products = sum(e.self_cpu_time_total for e in events if e.key in PRODUCT_LEAVES) / 1e6
    return {"total_s": total, "products_s": products, "other_s": total - products}


def measure_pruned(model: str, methods: list[str], sizes: list[float], sentences: int, repeats: int,
                   precisions: list[str], threads: int, log=print) -> dict:
    """Each method's one-shot magnitude deliverable at each size (no fine-tuning: speed does not depend on
    the weights' values) timed against the base alternately in each precision, beside its MAC-ratio limit,
    and where each model's time goes (matrix products vs the rest). `bound` is the speed-up the model would
    reach if its matrix products alone shrank by the MAC ratio and the rest stayed as measured:
    base time / (base products x MAC ratio + its own other time)."""
    from prunelab.data.text import load_corpus
    from prunelab.evaluate.flops import flop_ratio
    from prunelab.evaluate.speed import measure_speed
    from prunelab.prune.run import PruneConfig, run_pruning

    torch.set_num_threads(threads)
    base = load_model(model)
    corpus = load_corpus()
    texts = Benchmark.load(max_test_utts=200).speed_sentences(sentences)
    sequences = [base.tokenizer.ids(text) for text in texts]
    base_split = {p: time_breakdown(base, sequences, p) for p in precisions}
    rows = []
    for method in methods:
        for size in sizes:
            (deliverable,) = run_pruning(base, corpus, PruneConfig("magnitude", method, "oneshot", size, finetune_steps=0),
                                         log=lambda line: None)
            ratio = flop_ratio(deliverable.model, base)
            for precision in precisions:
                speed = measure_speed(deliverable.model, texts, repeats=repeats, threads=threads, reference=base,
                                      precision=precision)
                split = time_breakdown(deliverable.model, sequences, precision)
                b = base_split[precision]
                bound = b["total_s"] / (b["products_s"] * ratio + split["other_s"])
                rows.append({"method": method, "size": size, "precision": precision, "params": deliverable.params,
                             "flop_ratio": ratio, "limit": 1 / ratio, "speed_ratio": speed["speed_ratio"],
                             "of_limit": speed["speed_ratio"] * ratio, "products_share": split["products_s"] / split["total_s"],
                             "base_products_share": b["products_s"] / b["total_s"],
                             "other_vs_base": split["other_s"] / b["other_s"],
                             "products_vs_base": split["products_s"] / b["products_s"], "bound": bound})
                log(f"{model} {rows[-1]}")
    return {"model": model, "hypotheses": len(texts), "threads": threads, "repeats": repeats, "rows": rows}
