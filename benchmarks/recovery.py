"""Recovery by distillation against plain fine-tuning at equal steps and sizes, side by side; written to
reports/benchmarks.md (section 8) and reports/benchmarks.json.

Per model: one one-shot pruned model (PLAN: criterion, method, size), recovered once by `finetune` and once by
`distill` (KL divergence to the unpruned base's next-token distribution, temperature 1, the base in memory)
for the same steps on the same batches, each in a child process: seconds per step (median), peak resident
memory, valid perplexity every few steps, then WER on the benchmark with the paired difference distill - finetune.

    python benchmarks/recovery.py [--models small,smollm2-135m-domain]

About 15 minutes for `small` and 30 for the adapted SmolLM2 on 2 cores.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import recovery, render  # noqa: E402
from paper_figures import machine  # noqa: E402

PLAN = {
    "small": dict(criterion="magnitude", method="structured", size=0.5, steps=200, batch_size=32, lr=3e-4,
                  eval_every=25, nbest="pocketsphinx", test_utts=None, dev_utts=None, ppl_sentences=1000),
    "smollm2-135m-domain": dict(criterion="magnitude", method="structured", size=0.7, steps=60, batch_size=8,
                                lr=1e-4, eval_every=10, nbest="pocketsphinx", test_utts=1000, dev_utts=200,
                                ppl_sentences=300, calibration_sequences=16),
}
THREADS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(PLAN))
    parser.add_argument("--out", default="reports/benchmarks.md")
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in PLAN]
    if unknown:
        parser.error(f"no plan for {', '.join(unknown)}; planned: {', '.join(PLAN)}")
    out = Path(args.out)
    for model in models:
        print(f"== recovery: {model}", flush=True)
        started = time.time()
        measured = recovery.measure(model, PLAN[model], THREADS)
        measured.update({"machine": machine(), "minutes": round((time.time() - started) / 60, 1),
                         "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
        render.merge_section(out, "recovery", "models", model, measured)
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
