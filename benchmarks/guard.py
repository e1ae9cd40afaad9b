"""How often the rescoring guard fires, and what it does to test WER, on the shipped N-best benchmarks.

For each benchmark and each model (presets, checkpoints or deliverable folders; the Kneser-Ney trigram of the
first model's vocabulary comes along), one evaluation as `prunelab eval` runs it: the test WER as deployed (the
guard applied), the WER rescored at the dev-tuned weights without the guard, the recogniser's 1-best, the no-LM
reference, and whether the guard kept the 1-best. Prints one Markdown row per (benchmark, model).

    python benchmarks/guard.py [--models small,DELIVERABLE,...] [--nbest pocketsphinx,whisper,amazon-queen]
        [--test-utts N] [--dev-utts N]
"""
from __future__ import annotations

import argparse
import time

from prunelab.evaluate.evaluator import Benchmark, evaluate_model
from prunelab.lm.load import load_model


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _row(benchmark: str, name: str, m: dict) -> str:
    fired = "1-best kept" if m["kept_1best"] else "LM used"
    return (f"| {benchmark} | {name} | {fired} | {_pct(m['wer'])} | {_pct(m['wer_unguarded'])} | "
            f"{100 * (m['wer'] - m['wer_unguarded']):+.2f} | {_pct(m['wer_1best'])} | {_pct(m['wer_nolm'])} | "
            f"{100 * m['wer_dev_cv_diff_1best']:+.2f} ({100 * m['wer_dev_cv_diff_1best_ci_low']:+.2f} to "
            f"{100 * m['wer_dev_cv_diff_1best_ci_high']:+.2f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="small")
    parser.add_argument("--nbest", default="pocketsphinx,whisper,amazon-queen")
    parser.add_argument("--test-utts", type=int, default=None, help="the first N test utterances only")
    parser.add_argument("--dev-utts", type=int, default=None, help="tune on the first N dev utterances only")
    args = parser.parse_args()
    started = time.time()
    models = {name: load_model(name) for name in args.models.split(",")}
    print("| benchmark | model | guard | test WER as deployed | rescored, no guard | guard's effect, points | "
          "recogniser's 1-best | no-LM reference | dev: cross-validated minus 1-best, points (95% CI) |")
    print("|---|---|---|---|---|---|---|---|---|")
    fired = total = 0
    for benchmark in args.nbest.split(","):
        bench = Benchmark.load(nbest_path=None if benchmark == "pocketsphinx" else benchmark,
                               max_test_utts=args.test_utts, max_dev_utts=args.dev_utts, max_valid_sentences=1)
        for number, (name, model) in enumerate(models.items()):
            m = evaluate_model(model, bench, trigram=number == 0, speed=False, test_perplexity=False,
                               valid_perplexity=False)
            rows = [(name, m)]
            if "trigram" in m:  # the trigram has no no-LM reference of its own: the model's is the same
                rows.append(("KN trigram", {**m["trigram"], "wer_1best": m["wer_1best"], "wer_nolm": m["wer_nolm"]}))
            for label, figures in rows:
                print(_row(benchmark, label, figures), flush=True)
                fired, total = fired + bool(figures["kept_1best"]), total + 1
    print(f"\nThe guard kept the 1-best in {fired} of {total} evaluations; measured in "
          f"{(time.time() - started) / 60:.1f} min.")


if __name__ == "__main__":
    main()
