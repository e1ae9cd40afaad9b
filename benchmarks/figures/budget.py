"""The recovery budget a pruning study needs: how much each criterion x method combination loses at one shot,
then the perplexity curve of one pruned model recovered by distillation, and the steps until it is within 20%
of its base's perplexity (benchmarks/recovery_budget.py)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from prunelab.data.text import load_corpus
from prunelab.lm.load import load_model, save_model
from prunelab.lm.score import perplexity
from prunelab.memory import release_memory
from prunelab.prune.run import PruneConfig, run_pruning

from .recovery import _recover, steps_within


def measure(model: str, plan: dict, threads: int, log=print) -> dict:
    """`plan`: size, criteria, methods, calibration_sequences, ppl_sentences, and the curve's criterion, method,
    recovery, steps, batch_size, lr, eval_every."""
    torch.set_num_threads(threads)
    corpus = load_corpus()
    valid = corpus.valid[: plan["ppl_sentences"]]
    base = load_model(model)
    base_params = base.param_counts()["params_total"]
    base_ppl = perplexity(base, valid, precision="auto")
    log(f"{model}: {base_params:,} parameters, valid ppl {base_ppl:.1f} on {len(valid)} sentences")
    oneshot, curve = [], None
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for criterion in plan["criteria"]:
            for method in plan["methods"]:
                started = time.time()
                config = PruneConfig(criterion, method, "oneshot", plan["size"], finetune_steps=0,
                                     calibration_sequences=plan["calibration_sequences"])
                (stage,) = run_pruning(base, corpus, config, log=lambda *a: None)
                ppl = perplexity(stage.model, valid, precision="auto")
                oneshot.append({"criterion": criterion, "method": method, "ppl_valid": ppl,
                                "prune_s": time.time() - started})
                log(f"  one-shot {criterion} {method} {plan['size']:g}: ppl {ppl:,.1f}")
                if (criterion, method) == (plan["curve_criterion"], plan["curve_method"]):
                    pruned_path = save_model(stage.model, folder / ("pruned" + stage.model.suffix))
                del stage
                release_memory()
        base_path = base.source if Path(str(base.source)).exists() else save_model(base, folder / ("base" + base.suffix))
        del base
        release_memory()
        job = {"recovery": plan["recovery"], "pruned": str(pruned_path), "base": str(base_path),
               "method": plan["curve_method"], "base_params": base_params, "steps": plan["steps"], "lr": plan["lr"],
               "batch_size": plan["batch_size"], "eval_every": plan["eval_every"], "seed": 0, "threads": threads,
               "ppl_sentences": plan["ppl_sentences"], "out": str(folder / ("recovered" + pruned_path.suffix))}
        started = time.time()
        run = _recover(job)
        curve = {"step_s_median": run["step_s_median"], "history": run["history"], "wall_s": time.time() - started,
                 "peak_rss_mb": run["peak_rss_mb"], "steps_within_20pct": steps_within(run["history"], base_ppl)}
        log(f"  {plan['recovery']} {plan['curve_criterion']} {plan['curve_method']}: {run['step_s_median']:.2f} s/step, "
            f"ppl {[round(h['ppl_valid_subset'], 1) for h in run['history']]}")
    return {"model": model, "base_params": base_params, "base_ppl_valid": base_ppl, "ppl_sentences": len(valid),
            "threads": threads, "oneshot": oneshot, "curve": curve,
            **{k: plan[k] for k in ("size", "calibration_sequences", "curve_criterion", "curve_method", "recovery",
                                    "steps", "batch_size", "lr", "eval_every")}}
