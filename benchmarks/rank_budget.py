"""Low-rank ranks weighted by measured layer sensitivity, the experiment behind
`prune.methods.RANK_SENSITIVITY_POWER`: SmolLM2-domain, activation low-rank one-shot to 0.7 of the model (embedding
kept), least-squares reconstruction, valid perplexity on the first 300 sentences, for each power (0: every layer's
energy shares as they are).

    python benchmarks/rank_budget.py [--powers 0,1,1.5] [--calibration-sequences 128] [--size 0.7]

Measured 2026-12-08 on 2 cores (AMD EPYC, AVX512-BF16), 128 sequences, with a script of the same steps:
214.1 (0), 190.6 (0.5), 167.9 (1), 149.6 (1.5), 152.8 (2); base 56.1. About 12 minutes a power. Prints only."""
from __future__ import annotations

import argparse
import time

from smollm2_experiment import calibration, model_and_valid

from prunelab.lm.score import perplexity
from prunelab.prune import methods
from prunelab.prune.criteria import get_criterion
from prunelab.prune.reconstruct import reconstruct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--powers", default="0,1,1.5")
    parser.add_argument("--calibration-sequences", type=int, default=128)
    parser.add_argument("--size", type=float, default=0.7)
    args = parser.parse_args()
    corpus, valid, base = model_and_valid()
    batches, calib = calibration(base, corpus, args.calibration_sequences)
    total = base.param_counts()["params_total"]
    print(f"base ppl {perplexity(base, valid):.1f}", flush=True)
    for power in (float(x) for x in args.powers.split(",")):
        started = time.time()
        methods.RANK_SENSITIVITY_POWER = power
        lm = methods.LowRank(total, prune_embedding=False).prune(base.clone(), args.size, get_criterion("activation"), calib)
        reconstruct(lm, base, batches)
        size = lm.param_counts()["params_total"] / total
        print(f"power {power:g}: size {size:.3f}, ppl {perplexity(lm, valid):.1f} ({time.time() - started:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main()
