"""What a sweep trial's recovery does after reconstruction, per learning rate: one-shot pruning with least-squares
reconstruction as a trial runs it (embedding pruned unless --keep-embedding), the valid perplexity before recovery,
then after STEPS distillation steps from the same pruned model at each learning rate.

    python benchmarks/recovery_lr.py [--base smollm2-135m-domain] [--criterion activation] [--method structured]
        [--size 0.7] [--calibration-sequences 16] [--steps 40] [--lrs 1e-4,1e-3] [--keep-embedding]

About 25 minutes on 2 cores with bf16 instructions for the defaults (beside other work: 45)."""
from __future__ import annotations

import argparse
import time

import torch

from prunelab.evaluate.evaluator import Benchmark
from prunelab.lm.load import load_model
from prunelab.lm.score import perplexity
from prunelab.lm.train import Distillation
from prunelab.prune.methods import make_method
from prunelab.prune.run import PruneConfig, finetune, run_pruning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="smollm2-135m-domain")
    parser.add_argument("--criterion", default="activation")
    parser.add_argument("--method", default="structured")
    parser.add_argument("--size", type=float, default=0.7)
    parser.add_argument("--calibration-sequences", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lrs", default="1e-4,1e-3")
    parser.add_argument("--keep-embedding", action="store_true")
    parser.add_argument("--valid-sentences", type=int, default=300)
    args = parser.parse_args()
    corpus = Benchmark.load(max_valid_sentences=args.valid_sentences, max_test_utts=10).corpus
    base = load_model(args.base)
    print(f"{args.base}: valid ppl {perplexity(base, corpus.valid):.1f} (first {len(corpus.valid)} sentences)")
    config = PruneConfig(args.criterion, args.method, "oneshot", args.size, finetune_steps=0,
                         calibration_sequences=args.calibration_sequences, recovery="distill",
                         prune_embedding=not args.keep_embedding)
    started = time.time()
    pruned = list(run_pruning(base, corpus, config, log=lambda line: None))[-1].model
    print(f"{args.criterion} {args.method} one-shot {args.size:g}, least-squares, {args.calibration_sequences} "
          f"calibration sequences, embedding {'kept' if args.keep_embedding else 'pruned'} "
          f"({time.time() - started:.0f} s): valid ppl {perplexity(pruned, corpus.valid):.1f} before recovery", flush=True)
    stream = base.tokenizer.stream(corpus.train)
    teacher = Distillation(base.eval(), 1.0, 0.0)
    method = make_method(args.method, base.param_counts()["params_total"], not args.keep_embedding)
    for lr in (float(value) for value in args.lrs.split(",")):
        model = pruned.clone()
        started = time.time()
        finetune(model, stream, args.steps, lr, args.batch, torch.Generator().manual_seed(1001), method.after_step,
                 teacher)
        print(f"  + {args.steps} distillation steps of {args.batch} sequences at lr {lr:g} ({time.time() - started:.0f} "
              f"s): valid ppl {perplexity(model.eval(), corpus.valid):.1f}", flush=True)


if __name__ == "__main__":
    main()
