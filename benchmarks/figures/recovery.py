"""Recovery at equal steps: one one-shot pruned model recovered by fine-tuning and by distillation from the
unpruned base, each in its own child process (its peak memory its own), the same batches in the same order;
per-step time, peak resident memory, the valid perplexity along the way, and the end WER with a paired
interval (benchmarks/recovery.py)."""
from __future__ import annotations

import multiprocessing
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from prunelab.data.text import load_corpus
from prunelab.evaluate.evaluator import Benchmark, evaluate_model
from prunelab.evaluate.wer import paired_bootstrap_diff
from prunelab.lm.load import load_model, save_model
from prunelab.lm.score import perplexity
from prunelab.lm.train import Distillation
from prunelab.memory import release_memory
from prunelab.prune.methods import make_method
from prunelab.prune.run import PruneConfig, finetune, run_pruning
from prunelab.record import RECOVERIES


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _recover(job: dict) -> dict:
    """In a child process: recover the pruned model `job["pruned"]` for `job["steps"]` steps; save it; return
    the step times, perplexity history and peak memory."""
    torch.set_num_threads(job["threads"])
    corpus = load_corpus()
    valid = corpus.valid[: job["ppl_sentences"]]
    model = load_model(job["pruned"])
    teacher = load_model(job["base"]) if job["recovery"] == "distill" else None
    loaded_mb = _rss_mb()
    stream = model.tokenizer.stream(corpus.train)
    method = make_method(job["method"], job["base_params"], True)
    history, step_s, last = [], [], [time.perf_counter()]

    def after_step(lm):
        method.after_step(lm)
        step_s.append(time.perf_counter() - last[0])
        if len(step_s) % job["eval_every"] == 0:
            history.append({"step": len(step_s), "ppl_valid_subset": perplexity(lm, valid, precision="auto")})
            lm.train()
        last[0] = time.perf_counter()

    distill = Distillation(teacher.eval()) if teacher is not None else None
    generator = torch.Generator().manual_seed(job["seed"])
    finetune(model, stream, job["steps"], job["lr"], job["batch_size"], generator, after_step, distill)
    peak_mb = _rss_mb()
    save_model(model, job["out"], {"recovery": job["recovery"]})
    return {"recovery": job["recovery"], "step_s_median": statistics.median(step_s), "step_s": step_s,
            "loaded_rss_mb": loaded_mb, "peak_rss_mb": peak_mb, "history": history}


def steps_within(history: list[dict], base_ppl: float, margin: float = 0.2) -> int | None:
    """The first recorded step whose perplexity is within `margin` of the base's (None: never)."""
    return next((h["step"] for h in history if h["ppl_valid_subset"] <= (1 + margin) * base_ppl), None)


def measure(model: str, plan: dict, threads: int, log=print) -> dict:
    """`plan`: criterion, method, size, steps, batch_size, lr, eval_every, nbest, test_utts, dev_utts, ppl_sentences."""
    torch.set_num_threads(threads)
    base = load_model(model)
    corpus = load_corpus()
    bench = Benchmark.load(nbest_path=plan["nbest"], max_test_utts=plan["test_utts"], max_dev_utts=plan["dev_utts"],
                           max_valid_sentences=plan["ppl_sentences"], corpus=corpus)
    base_ppl = perplexity(base, bench.corpus.valid, precision="auto")
    config = PruneConfig(plan["criterion"], plan["method"], "oneshot", plan["size"], finetune_steps=0,
                         calibration_sequences=plan.get("calibration_sequences", 128))
    (stage,) = run_pruning(base, corpus, config, log=log)
    pruned_ppl = perplexity(stage.model, bench.corpus.valid, precision="auto")
    log(f"{model}: base ppl {base_ppl:.1f}, {plan['method']} {plan['size']:g} one-shot ppl {pruned_ppl:.1f}")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        pruned_path = save_model(stage.model, folder / ("pruned" + stage.model.suffix))
        base_path = base.source if Path(str(base.source)).exists() else save_model(base, folder / ("base" + base.suffix))
        base_params = base.param_counts()["params_total"]
        del stage, base
        release_memory()
        runs, evaluations = {}, {}
        context = multiprocessing.get_context("spawn")
        for recovery in RECOVERIES:
            job = {"recovery": recovery, "pruned": str(pruned_path), "base": str(base_path), "method": plan["method"],
                   "base_params": base_params, "steps": plan["steps"], "lr": plan["lr"],
                   "batch_size": plan["batch_size"], "eval_every": plan["eval_every"], "seed": 0, "threads": threads,
                   "ppl_sentences": plan["ppl_sentences"], "out": str(folder / (recovery + pruned_path.suffix))}
            started = time.time()
            with context.Pool(1) as pool:
                runs[recovery] = pool.apply(_recover, (job,))
            runs[recovery]["wall_s"] = time.time() - started
            log(f"{model} {recovery}: {runs[recovery]['step_s_median']:.2f} s/step, peak {runs[recovery]['peak_rss_mb']:,.0f} MB, "
                f"ppl {[round(h['ppl_valid_subset'], 1) for h in runs[recovery]['history']]}")
            recovered = load_model(job["out"])
            evaluations[recovery] = evaluate_model(recovered, bench, trigram=False, speed=False, test_perplexity=False)
            log(f"{model} {recovery}: WER {100 * evaluations[recovery]['wer']:.2f}%")
            del recovered
            release_memory()
    rows = []
    for recovery in RECOVERIES:
        run, result = runs[recovery], evaluations[recovery]
        rows.append({"recovery": recovery, "step_s_median": run["step_s_median"], "peak_rss_mb": run["peak_rss_mb"],
                     "loaded_rss_mb": run["loaded_rss_mb"], "history": run["history"], "wall_s": run["wall_s"],
                     "ppl_valid": result["ppl_valid"], "wer": result["wer"], "wer_ci_low": result["wer_ci_low"],
                     "wer_ci_high": result["wer_ci_high"], "wer_1best": result["wer_1best"],
                     "steps_within_20pct": steps_within(run["history"], base_ppl)})
    diff, interval = paired_bootstrap_diff(np.array(evaluations["distill"]["utt_errors"]),
                                           np.array(evaluations["finetune"]["utt_errors"]), bench.test.ref_words)
    return {"model": model, **{k: plan[k] for k in ("criterion", "method", "size", "steps", "batch_size", "lr", "nbest")},
            "n_test_utts": len(bench.test.texts), "n_dev_utts": len(bench.dev.texts),
            "ppl_sentences": len(bench.corpus.valid), "threads": threads, "base_ppl_valid": base_ppl,
            "pruned_ppl_valid": pruned_ppl, "rows": rows, "wer_diff": diff, "wer_diff_ci_low": interval.low,
            "wer_diff_ci_high": interval.high}
