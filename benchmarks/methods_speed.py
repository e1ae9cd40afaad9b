"""Scoring speed-up of each pruning method against the dense base, beside its MAC-ratio limit.

For each method at each size: prune the base one-shot (magnitude, no fine-tuning: speed does not depend
on the weights' values), then time batched N-best scoring of the same test hypotheses for the pruned model
and the base alternately in this one process (one warm-up each, median of the per-repeat ratios).

    python benchmarks/methods_speed.py [BASE] [--sizes 0.5,0.25] [--threads 2] [--repeats 7]
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
from prunelab.lm.checkpoint import load_checkpoint
from prunelab.prune.run import PruneConfig, run_pruning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", default="models/small.pt")
    parser.add_argument("--sizes", default="0.5,0.25")
    parser.add_argument("--methods", default="unstructured,structured,lowrank")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    base, vocab, _ = load_checkpoint(args.base)
    corpus = load_corpus()
    sentences = Benchmark.load(max_test_utts=200).speed_sentences()
    print(f"base {args.base}: {base.param_counts()['params_total']:,} parameters; {len(sentences)} hypotheses, "
          f"{args.threads} threads, median of {args.repeats}; {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}")
    print(f"{'method':<13} {'size':>5} {'params':>10} {'MAC ratio':>9} {'limit':>6} {'speed-up':>8} {'of limit':>8}")
    for method in args.methods.split(","):
        for size in (float(s) for s in args.sizes.split(",")):
            config = PruneConfig("magnitude", method, "oneshot", size, finetune_steps=0)
            (deliverable,) = run_pruning(base, vocab, corpus, config, log=lambda line: None)
            model = deliverable.model
            started = time.perf_counter()
            speed = measure_speed(model, vocab, sentences, repeats=args.repeats, threads=args.threads,
                                  reference=(base, vocab))
            ratio = flop_ratio(model, base)
            print(f"{method:<13} {size:>5.2f} {deliverable.params:>10,} {ratio:>9.3f} {1 / ratio:>5.2f}x "
                  f"{speed['speed_ratio']:>7.2f}x {speed['speed_ratio'] * ratio:>7.0%}   "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
