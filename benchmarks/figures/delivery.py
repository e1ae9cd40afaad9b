"""Figure 2: incremental low-rank delivering every target size in one run vs one one-shot run per size.

Compute: the paper sweep's own configurations (same spec, same seeds) re-run here for pruning and fine-tuning
only, one after the other in this process with one thread (as a trial runs), timed in CPU seconds of this
process (robust to other load on the host) and wall seconds. Evaluation is left out of both sides: every
deliverable is evaluated once either way. Quality: each deliverable's WER, interval and paired difference from
the sweep's store (the models the sweep trained and evaluated)."""
from __future__ import annotations

import time

import numpy as np
import torch

from prunelab.data.text import load_corpus
from prunelab.evaluate.evaluator import Benchmark
from prunelab.evaluate.wer import paired_bootstrap_diff
from prunelab.lm.load import load_model
from prunelab.prune.run import run_pruning
from prunelab.report.build import load_spec_of
from prunelab.sweep.space import grid_configs, prune_config
from prunelab.sweep.store import read_results

CRITERION = "activation"


def _timed_run(base, corpus, config) -> dict:
    cpu, wall = time.process_time(), time.perf_counter()
    stages = []
    for stage in run_pruning(base, corpus, config, log=lambda line: None):
        stages.append({"size": stage.target_size, "finetune_steps": stage.finetune_steps,
                       "cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall})
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall,
            "finetune_steps": stages[-1]["finetune_steps"], "stages": stages}


def compute(spec, criterion: str) -> dict:
    torch.set_num_threads(max(1, int(spec.resources.cpu)))
    base = load_model(spec.base)
    corpus = load_corpus(spec.data.corpus)
    configs = [c for c in grid_configs(spec) if c["criterion"] == criterion and c["method"] == "lowrank"]
    (incremental,) = [c for c in configs if c["scheduler"] == "incremental"]
    runs = {"incremental": _timed_run(base, corpus, prune_config(incremental, spec))}
    print(f"incremental: {runs['incremental']['cpu_s']:.0f} CPU s", flush=True)
    for config in (c for c in configs if c["scheduler"] == "oneshot"):
        name = f"oneshot {config['target_size']:g}"
        runs[name] = _timed_run(base, corpus, prune_config(config, spec))
        print(f"{name}: {runs[name]['cpu_s']:.0f} CPU s", flush=True)
    separate = [r for name, r in runs.items() if name.startswith("oneshot")]
    return {"criterion": criterion, "threads": torch.get_num_threads(), "runs": runs,
            "cpu_ratio": runs["incremental"]["cpu_s"] / sum(r["cpu_s"] for r in separate),
            "wall_ratio": runs["incremental"]["wall_s"] / sum(r["wall_s"] for r in separate),
            "steps_ratio": runs["incremental"]["finetune_steps"] / sum(r["finetune_steps"] for r in separate)}


def quality(sweep_dir: str, spec) -> list[dict]:
    """Per criterion and size: the incremental low-rank deliverable vs the one-shot low-rank run to that size."""
    rows = [r for r in read_results(sweep_dir).to_pylist() if r["wer"] is not None and r["method"] == "lowrank"]
    ref_words = Benchmark.load(spec.data.corpus, spec.data.nbest, spec.data.eval_test_utts).test.ref_words
    out = []
    for r in sorted((r for r in rows if r["scheduler"] == "incremental"), key=lambda r: (r["criterion"], -r["target_size"])):
        matches = [o for o in rows if o["scheduler"] == "oneshot" and o["criterion"] == r["criterion"]
                   and o["target_size"] == r["target_size"]]
        entry = {"criterion": r["criterion"], "target_size": r["target_size"], "finetune_steps": r["finetune_steps"],
                 "wer": r["wer"], "wer_ci": [r["wer_ci_low"], r["wer_ci_high"]], "oneshot": None}
        if matches:
            o = matches[0]
            diff, interval = paired_bootstrap_diff(np.asarray(r["utt_errors"]), np.asarray(o["utt_errors"]), ref_words)
            entry["oneshot"] = {"wer": o["wer"], "wer_ci": [o["wer_ci_low"], o["wer_ci_high"]],
                                "finetune_steps": o["finetune_steps"], "diff": diff, "diff_ci": [interval.low, interval.high]}
        out.append(entry)
    return out


def measure_compute(args) -> dict:
    spec = load_spec_of(args.sweep)
    return {"sweep": args.sweep, "finetune_steps": spec.finetune_steps, "target_sizes": spec.target_sizes,
            **compute(spec, CRITERION)}


def measure_wer(args) -> dict:
    spec = load_spec_of(args.sweep)
    return {"sweep": args.sweep, "n_test_utts": spec.data.eval_test_utts, "rows": quality(args.sweep, spec)}
