"""What pruning a model costs on this machine: loading, scoring speed, one fine-tuning step, calibration, and
each method's one-shot pruning to a size, whose deliverable is reloaded and exported for plain transformers.

    python benchmarks/model_costs.py [MODEL] [--size 0.5] [--threads 2] [--batch 8] [--memory]

MODEL is anything `prunelab eval` accepts (default smollm2-135m). Prints one line per figure; times are
wall-clock medians of the repeats stated on each line. `--memory` adds the peak resident memory of one
`prunelab prune` run of MODEL with calibration and fine-tuning (a child process; see MEMORY_RUN)."""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from figures.memory import peak_rss  # noqa: E402

from prunelab.data.text import load_corpus
from prunelab.lm.load import load_model, save_model
from prunelab.lm.precision import resolve_precision
from prunelab.lm.score import sentence_logprobs
from prunelab.lm.train import make_optimizer, random_batch, training_step
from prunelab.prune.calibration import calibrate
from prunelab.prune.run import PruneConfig, run_pruning

# what a pruning run holds at its peak: the base, the model being pruned, calibration statistics, AdamW state and
# fine-tuning activations (the default batch of 32 sequences; memory does not grow with the steps, so 2 per stage),
# two deliverables saved. Without evaluation (scoring holds one batch of 128
# sentences and 128-token logit chunks), which would take most of an hour on 2 cores.
MEMORY_RUN = ["--criterion", "activation", "--method", "lowrank", "--scheduler", "incremental", "--target-size", "0.4",
              "--deliver", "0.7", "--stages", "3", "--finetune-steps", "6", "--calibration-sequences", "32", "--no-eval"]


def timed(function, repeats: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="smollm2-135m")
    parser.add_argument("--size", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8, help="fine-tuning batch (sequences of the model's context)")
    parser.add_argument("--methods", default="unstructured,structured,lowrank")
    parser.add_argument("--memory", action="store_true", help="also the peak memory of one pruning run (MEMORY_RUN)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = load_corpus()
    seconds, lm = timed(lambda: load_model(args.model))
    counts = lm.param_counts()
    print(f"{args.model}: {counts['params_total']:,} parameters, context {lm.context}; loaded in {seconds:.1f} s; "
          f"{args.threads} threads, torch {torch.__version__}", flush=True)
    sentences = corpus.test[:200]
    tokens = sum(len(lm.tokenizer.ids(s)) - 1 for s in sentences)
    seconds, _ = timed(lambda: sentence_logprobs(lm, sentences), repeats=3)
    print(f"scoring: {tokens / seconds:,.0f} tokens/s ({len(sentences)} test sentences, {tokens:,} tokens, median of 3)",
          flush=True)
    stream = lm.tokenizer.stream(corpus.train[:20000])
    generator = torch.Generator().manual_seed(0)
    work = lm.clone().train()
    optimizer = make_optimizer(work, 1e-4, 0.01)
    seconds, _ = timed(lambda: training_step(work, optimizer, *random_batch(stream, args.batch, lm.context, generator)),
                       repeats=3)
    precision = resolve_precision("auto", "cpu")
    print(f"fine-tuning step: {seconds:.2f} s (batch {args.batch} x {lm.context} tokens, {precision}, median of 3)",
          flush=True)
    seconds, _ = timed(lambda: calibrate(lm, corpus, n_sequences=16, batch_size=8, stream=stream))
    print(f"calibration: {seconds / 16:.2f} s per sequence of {lm.context} tokens (16 sequences)", flush=True)
    for method in args.methods.split(","):
        config = PruneConfig("magnitude", method, "oneshot", args.size, finetune_steps=0)
        seconds, stages = timed(lambda: list(run_pruning(lm, corpus, config, log=lambda line: None)))
        pruned = stages[-1].model
        with tempfile.TemporaryDirectory() as folder:
            saved = save_model(pruned, Path(folder) / ("d" + pruned.suffix))
            reloaded = load_model(saved)
            same = sentence_logprobs(reloaded, sentences[:20]) == sentence_logprobs(pruned, sentences[:20])
            exported = ""
            if hasattr(pruned, "layout"):
                from prunelab.lm.export import export_model

                result = export_model(reloaded, Path(folder) / "export")
                exported = f", export {'with' if result['remote_code'] else 'without'} remote code"
        print(f"{method} to {args.size}: size {stages[-1].achieved_size:.4f} in {seconds:.1f} s (magnitude, no "
              f"fine-tuning); reload {'identical' if same else 'DIFFERENT'}{exported}", flush=True)
    if args.memory:
        peak_mb, wall_s = peak_rss(["prune", args.model, *MEMORY_RUN])
        print(f"peak memory of one pruning run: {peak_mb / 1024:.2f} GB resident in {wall_s:.0f} s "
              f"(prunelab prune {args.model} {' '.join(MEMORY_RUN)})", flush=True)


if __name__ == "__main__":
    main()
