"""Does a subword LM rescore better on the recogniser's own cased, punctuated text than on the normalised text?
Each model scores the same N-best lists twice (`--hypothesis-text normalised` and `raw`), its weights tuned on dev
each time; errors are counted on the normalised text both ways. Prints one row per model: both WERs and the paired
difference raw - normalised with its 95% interval (same test utterances, bootstrap).

    python benchmarks/raw_text.py [--models smollm2-135m,smollm2-135m-domain] [--nbest amazon-queen]

About 2 minutes per model for the amazon-queen benchmark on 2 cores with bf16 instructions.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from prunelab.evaluate.evaluator import Benchmark, evaluate_model
from prunelab.evaluate.wer import paired_bootstrap_diff
from prunelab.lm.load import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="smollm2-135m,smollm2-135m-domain")
    parser.add_argument("--nbest", default="amazon-queen")
    args = parser.parse_args()
    started = time.time()
    benches = {text: Benchmark.load(nbest_path=args.nbest, hypothesis_text=text, max_valid_sentences=1)
               for text in ("normalised", "raw")}
    ref_words = benches["normalised"].test.ref_words
    print(f"{args.nbest}: {len(ref_words):,} test utterances, {int(ref_words.sum()):,} words; weights tuned on "
          f"{len(benches['normalised'].dev.texts):,} dev utterances each way\n")
    print("| model | WER, normalised text | WER, raw text | raw - normalised, paired (95% CI) | lm_scale normalised / raw |")
    print("|---|---|---|---|---|")
    for name in args.models.split(","):
        model = load_model(name)
        runs = {text: evaluate_model(model, bench, trigram=False, speed=False, test_perplexity=False,
                                     valid_perplexity=False) for text, bench in benches.items()}
        diff, interval = paired_bootstrap_diff(np.array(runs["raw"]["utt_errors"]),
                                               np.array(runs["normalised"]["utt_errors"]), ref_words)
        print(f"| {name} | {100 * runs['normalised']['wer']:.2f}% | {100 * runs['raw']['wer']:.2f}% | "
              f"{100 * diff:+.2f} points ({100 * interval.low:+.2f} to {100 * interval.high:+.2f}) | "
              f"{runs['normalised']['lm_scale']:.3f} / {runs['raw']['lm_scale']:.3f} |", flush=True)
    print(f"\n1-best {100 * runs['raw']['wer_1best']:.2f}%, oracle {100 * runs['raw']['wer_oracle']:.2f}%; "
          f"measured in {(time.time() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
