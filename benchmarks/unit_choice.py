"""Which structured units go, the experiment behind the `activation` criterion's `gram_choice`: `prunelab prune
smollm2-135m-domain --criterion activation --method structured --scheduler oneshot --target-size 0.7
--finetune-steps 0 --keep-embedding --calibration-sequences N --reconstruction least-squares` run in-process, with
the units chosen by least-squares reconstruction from the full Gram matrices (`gram`) and by the criterion's scores
(`criterion`); valid perplexity on the first 300 sentences.

    python benchmarks/unit_choice.py [--calibration-sequences 128] [--size 0.7]

Measured 2026-12-07 on 2 cores (AMD EPYC, AVX512-BF16), before the per-layer sensitivity spread: 122.4 (gram)
against 124.2 (criterion) at 128 sequences; base 56.1. About 6-10 minutes a variant. Prints only."""
from __future__ import annotations

import argparse
import time

from smollm2_experiment import model_and_valid

from prunelab.lm.score import perplexity
from prunelab.prune.criteria import CRITERIA
from prunelab.prune.run import PruneConfig, run_pruning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration-sequences", type=int, default=128)
    parser.add_argument("--size", type=float, default=0.7)
    args = parser.parse_args()
    corpus, valid, base = model_and_valid()
    activation = type(CRITERIA["activation"])
    for variant in ("gram", "criterion"):
        activation.gram_choice = variant == "gram"
        started = time.time()
        config = PruneConfig("activation", "structured", "oneshot", args.size, finetune_steps=0,
                             calibration_sequences=args.calibration_sequences, prune_embedding=False,
                             reconstruction="least-squares")
        stage = list(run_pruning(base, corpus, config, log=lambda _line: None))[-1]
        print(f"choice by {variant}: size {stage.achieved_size:.4f}, valid ppl {perplexity(stage.model, valid):.1f} "
              f"({time.time() - started:.0f} s)", flush=True)
    activation.gram_choice = True


if __name__ == "__main__":
    main()
