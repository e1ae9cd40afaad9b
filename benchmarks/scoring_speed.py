"""N-best scoring speed, today's path against prefix-shared bf16 scoring, side by side; written to
reports/benchmarks.md (section 7) and reports/benchmarks.json.

Three parts, each measurement kept under its own key so that one can be re-measured alone:

  paths   tokens/s of scoring the first N test N-best lists of a model on a benchmark by each path (independent
          or prefix-tree, fp32 or bf16), the paths timed in turn in one process, median of repeats, with the
          log-prob differences against today's path (independent, fp32)
  eval    end-to-end `prunelab eval MODEL --nbest BENCHMARK` wall time, `--scoring independent
          --scoring-precision fp32` (today) then the defaults, in fresh processes one after the other
  pruned  low-rank and structured one-shot deliverables at 0.5 and 0.25 timed against the base in fp32 and bf16,
          beside the MAC-ratio limit, with where the time goes (torch.profiler: matrix products vs the rest)

    python benchmarks/scoring_speed.py [--parts paths,eval,pruned] [--models small,smollm2-135m]
                                       [--benchmarks pocketsphinx,whisper]

The defaults measure what section 7 shows; a 135M-parameter LM's today's path takes about 10 minutes for
one end-to-end evaluation on the Whisper benchmark (2 cores), so the full run takes over an hour.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import render, scoring  # noqa: E402
from paper_figures import machine  # noqa: E402

# per model and benchmark: (test utterances the paths are timed on, repeats, limits of the end-to-end eval); a
# 135M-parameter LM's today's path on all 3,000 pocketsphinx test and 600 dev lists would take hours here
PLAN = {("small", "pocketsphinx"): (300, 3, []), ("small", "whisper"): (1000, 3, []),
        ("smollm2-135m", "pocketsphinx"): (40, 1, ["--max-test-utts", "200", "--max-dev-utts", "50", "--ppl-sentences", "500", "--no-speed"]),
        ("smollm2-135m", "whisper"): (150, 1, [])}
THREADS = 2
# pruned models against the base: (hypotheses timed, repeats); methods, sizes and precisions for both models
PRUNED_PLAN = {"small": (1024, 5), "smollm2-135m": (64, 5)}
PRUNED_METHODS, PRUNED_SIZES, PRUNED_PRECISIONS = ["lowrank", "structured"], [0.5, 0.25], ["fp32", "bf16"]
PARTS = ("paths", "eval", "pruned")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--models", default="small,smollm2-135m")
    parser.add_argument("--benchmarks", default="pocketsphinx,whisper")
    parser.add_argument("--out", default="reports/benchmarks.md")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; expected some of {', '.join(PARTS)}")
    wanted = [(m, b) for m in args.models.split(",") for b in args.benchmarks.split(",")]
    missing = [f"{m} on {b}" for m, b in wanted if (m, b) not in PLAN]
    if missing:
        parser.error(f"no plan for {', '.join(missing)}; planned: {', '.join(f'{m} on {b}' for m, b in PLAN)}")
    out = Path(args.out)
    data_path = out.with_suffix(".json")
    for part in parts:
        for model, nbest in (wanted if part != "pruned" else dict.fromkeys((m, "pocketsphinx") for m, _ in wanted)):
            utterances, repeats, eval_limits = PLAN[(model, nbest)]
            print(f"== {part}: {model} on {nbest}", flush=True)
            started = time.time()
            if part == "paths":
                measured = scoring.measure_paths(model, nbest, utterances, repeats, THREADS)
            elif part == "pruned":
                sentences, timed_repeats = PRUNED_PLAN[model]
                measured = scoring.measure_pruned(model, PRUNED_METHODS, PRUNED_SIZES, sentences, timed_repeats,
                                                  PRUNED_PRECISIONS, THREADS)
            else:
                measured = scoring.measure_eval(model, nbest, eval_limits)
            measured.update({"machine": machine(), "minutes": round((time.time() - started) / 60, 1),
                             "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
            render.merge_section(out, "scoring-speed", part, model if part == "pruned" else f"{model} {nbest}", measured)
    print(f"wrote {out} and {data_path}")


if __name__ == "__main__":
    main()
