"""The recovery budget of a pruning study, measured before the study: one-shot perplexity of each criterion x
method at one size, and how many distillation steps bring one pruned model within 20% of its base's
perplexity; written to reports/benchmarks.md (section 8b) and reports/benchmarks.json.

    python benchmarks/recovery_budget.py [--model smollm2-135m-domain] [--steps 300] [--lr 1e-3]

18 minutes for the adapted SmolLM2 on 2 cores with bf16 instructions (300 steps of 8 x 128 tokens; measured).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import budget, render  # noqa: E402
from paper_figures import machine  # noqa: E402

THREADS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-domain")
    parser.add_argument("--size", type=float, default=0.7)
    parser.add_argument("--steps", type=int, default=300, help="distillation steps of the curve")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--ppl-sentences", type=int, default=300, help="first N valid sentences")
    parser.add_argument("--out", default="reports/benchmarks.md")
    args = parser.parse_args()
    if not 0 < args.size < 1:
        parser.error(f"--size must be in (0, 1), got {args.size}")
    if args.steps < args.eval_every or args.eval_every < 1:
        parser.error(f"--steps ({args.steps}) must be at least --eval-every ({args.eval_every}), which must be >= 1")
    plan = {"size": args.size, "criteria": ["magnitude", "activation"], "methods": ["structured", "lowrank"],
            "calibration_sequences": 16, "ppl_sentences": args.ppl_sentences, "curve_criterion": "activation",
            "curve_method": "structured", "recovery": "distill", "steps": args.steps, "batch_size": args.batch_size,
            "lr": args.lr, "eval_every": args.eval_every}
    print(f"== recovery budget: {args.model}", flush=True)
    started = time.time()
    measured = budget.measure(args.model, plan, THREADS)
    measured.update({"machine": machine(), "minutes": round((time.time() - started) / 60, 1),
                     "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    render.merge_section(Path(args.out), "recovery-budget", "models", args.model, measured)
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.json')}")


if __name__ == "__main__":
    main()
