"""Scoring speed-up of each pruning method against the dense base, beside its MAC-ratio limit.

For each method at each size: prune the base one-shot (magnitude, no fine-tuning: speed does not depend
on the weights' values), then time batched N-best scoring of the same test hypotheses for the pruned model
and the base alternately in this one process (one warm-up each, median of the per-repeat ratios).

    python benchmarks/methods_speed.py [BASE] [--sizes 0.5,0.25] [--threads 2] [--repeats 7] [--sentences 1024]

A 135M-parameter LM scores ~160 tokens/s on 2 CPU cores: `--sentences 128` keeps its run to minutes.
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from prunelab.data.text import load_corpus
from prunelab.evaluate.evaluator import Benchmark
from prunelab.evaluate.flops import flop_ratio
from prunelab.evaluate.speed import measure_speed
from prunelab.lm.load import load_model
from prunelab.prune.run import PruneConfig, run_pruning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", default="small", help="preset, checkpoint or Hugging Face folder (default small)")
    parser.add_argument("--sizes", default="0.5,0.25")
    parser.add_argument("--methods", default="unstructured,structured,lowrank")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sentences", type=int, default=1024, help="test hypotheses timed (default 1024)")
    args = parser.parse_args()
    base = load_model(args.base)
    corpus = load_corpus()
    sentences = Benchmark.load(max_test_utts=200).speed_sentences(args.sentences)
    print(f"base {args.base}: {base.param_counts()['params_total']:,} parameters; {len(sentences)} hypotheses, "
          f"{args.threads} threads, median of {args.repeats}; {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}")
    print(f"{'method':<13} {'size':>5} {'params':>10} {'MAC ratio':>9} {'limit':>6} {'speed-up':>8} {'of limit':>8}")
    measure_methods(base, corpus, sentences, args.methods.split(","),
                    [float(s) for s in args.sizes.split(",")], args.threads, args.repeats, log=print_row)


def print_row(row: dict) -> None:
    print(f"{row['method']:<13} {row['size']:>5.2f} {row['params']:>10,} {row['flop_ratio']:>9.3f} "
          f"{row['limit']:>5.2f}x {row['speed_ratio']:>7.2f}x {row['of_limit']:>7.0%}   ({row['seconds']:.0f} s)",
          flush=True)


def measure_methods(base, corpus, sentences: list[str], methods: list[str], sizes: list[float],
                    threads: int, repeats: int, log=lambda row: None) -> list[dict]:
    """One row per method and size: parameters, MAC ratio, its limit 1/ratio, measured speed-up, share of limit."""
    rows = []
    for method in methods:
        for size in sizes:
            config = PruneConfig("magnitude", method, "oneshot", size, finetune_steps=0)
            (deliverable,) = run_pruning(base, corpus, config, log=lambda line: None)
            started = time.perf_counter()
            speed = measure_speed(deliverable.model, sentences, repeats=repeats, threads=threads,
                                  reference=base)
            ratio = flop_ratio(deliverable.model, base)
            rows.append({"method": method, "size": size, "params": deliverable.params, "flop_ratio": ratio,
                         "limit": 1 / ratio, "speed_ratio": speed["speed_ratio"],
                         "of_limit": speed["speed_ratio"] * ratio, "seconds": time.perf_counter() - started})
            log(rows[-1])
    return rows

if __name__ == "__main__":
    main()
