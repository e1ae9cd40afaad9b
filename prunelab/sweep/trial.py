"""The function trainable: one trial prunes the base per its sampled config, checkpoints after every stage,
reports every stage to Tune, and evaluates every deliverable. No Ray import at module level: the trial
body is plain prunelab code that Tune calls."""
from __future__ import annotations

import functools
import math
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from prunelab import storage
from prunelab.data.text import load_corpus
from prunelab.evaluate.evaluator import Benchmark, evaluate_model
from prunelab.evaluate.flops import flop_ratio
from prunelab.lm.load import from_payload, load_model, save_model
from prunelab.lm.score import perplexity
from prunelab.prune.deliver import deliverable_info, deliverable_name, save_deliverable
from prunelab.prune.run import Resume, run_pruning
from prunelab.record import EVALUATION_KEYS
from prunelab.sweep.folder import deliverables_dir
from prunelab.sweep.space import prune_config
from prunelab.sweep.spec import SweepSpec

STAGE_CHECKPOINT = "stage"  # + the model's suffix: a checkpoint file (word LM) or a folder (Hugging Face)


def trial_config(config: dict) -> dict:
    """Grid trials carry their config under one key; searched trials have it flat."""
    return dict(config.get("trial", config))


@functools.lru_cache(maxsize=2)
def _inputs(corpus_dir: str | None, nbest_path: str | None, eval_test_utts: int | None,
            ppl_valid_sentences: int | None = None, eval_dev_utts: int | None = None) -> tuple:
    """Corpus and benchmark, loaded once per worker process (Tune reuses workers across trials); the corpus's
    valid split is the benchmark's (cut to `ppl_valid_sentences`), so every stage's perplexity is on the same text."""
    bench = Benchmark.load(corpus_dir, nbest_path, eval_test_utts, corpus=load_corpus(corpus_dir),
                           max_valid_sentences=ppl_valid_sentences, max_dev_utts=eval_dev_utts)
    return bench.corpus, bench


def trial_device(gpus: float) -> str:
    """The GPU Ray assigned the trial (it sets CUDA_VISIBLE_DEVICES, so the trial sees it as cuda:0) when the spec
    asks for GPUs and CUDA is there, else the CPU."""
    return "cuda" if gpus > 0 and torch.cuda.is_available() else "cpu"


def run_trial(config: dict, base: dict, spec: dict, sweep_dir: str) -> None:
    """Tune's function trainable: `prune_trial` with Tune's trial id, checkpoint and report."""
    import ray  # deferred: ray takes seconds to import
    from ray import tune  # deferred: ray takes seconds to import

    checkpoint = tune.get_checkpoint()
    # host name and Ray node ID: several Ray nodes may share one host
    node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"

    def report(metrics: dict, folder: str) -> None:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    if checkpoint is None:
        prune_trial(config, base, spec, sweep_dir, tune.get_context().get_trial_id(), node, None, report)
    else:
        with checkpoint.as_directory() as folder:
            prune_trial(config, base, spec, sweep_dir, tune.get_context().get_trial_id(), node, folder, report)


def prune_trial(config: dict, base: dict, spec: dict, sweep_dir: str, trial_id: str, node: str,
                resume_folder: str | None, report: Callable[[dict, str], None]) -> None:
    """One trial without Ray: prune the base per its config (continuing from the stage checkpoint in
    `resume_folder`), evaluate and save every deliverable, and hand each stage's metrics and checkpoint folder to
    `report` (Tune's, or a plain function: benchmarks/gpu_check.sh runs trials this way)."""
    spec = SweepSpec.model_validate(spec)
    config = trial_config(config)
    torch.set_num_threads(max(1, int(spec.resources.cpu)))
    model = from_payload(base).to(trial_device(spec.resources.gpu))
    corpus, bench = _inputs(spec.data.corpus, spec.data.nbest, spec.data.eval_test_utts, spec.data.ppl_valid_sentences,
                            spec.data.eval_dev_utts)
    pruning = prune_config(config, spec)
    resume = None
    if resume_folder is not None:
        stage_model = load_model(Path(resume_folder) / (STAGE_CHECKPOINT + model.suffix)).to(model.device)
        info = stage_model.info
        resume = Resume(stage_model, info["stage"], info["finetune_steps"], info["wall_s"])
    delivered_wer, delivered_speed, started_at = [], [], time.time()
    if resume is not None:
        delivered_wer, delivered_speed = list(info["delivered_wer"]), list(info["delivered_speed"])
        started_at = info.get("started_at", started_at)
    for stage in run_pruning(model, corpus, pruning, log=lambda line: print(line, flush=True), resume=resume):
        metrics = {"stage": stage.stage, "n_stages": stage.n_stages, "target_size": stage.target_size,
                   "achieved_size": stage.achieved_size, "finetune_steps": stage.finetune_steps,
                   "wall_s": stage.wall_s, "node": node, "delivered": stage.delivered, "started_at": started_at,
                   "final": stage.stage == stage.n_stages}
        if stage.delivered:
            result = evaluate_model(stage.model, bench, trigram=False, speed_vs=model, speed_repeats=3,
                                    speed_sentences=spec.data.speed_sentences, threads=max(1, int(spec.resources.cpu)),
                                    test_perplexity=False, scoring_precision=spec.data.scoring_precision)
            path = save_deliverable(storage.join(deliverables_dir(sweep_dir, trial_id), deliverable_name(stage.target_size, model.suffix)),
                                    stage.model, deliverable_info(stage, pruning, spec.base, result, sweep=spec.name,
                                                                  trial_id=trial_id))
            delivered_wer.append(result["wer"])
            delivered_speed.append(result["speed_ratio"])
            metrics.update({key: result[key] for key in EVALUATION_KEYS})
            metrics.update({"flop_ratio": flop_ratio(stage.model, model), "checkpoint": str(path)})
        else:
            metrics["ppl_valid"] = perplexity(stage.model, corpus.valid, precision=spec.data.scoring_precision)
        # the search objectives, means over the sizes delivered so far (NaN before the first: Tune wants every
        # result to carry them; a trial stopped before delivering anything ends as failed in Optuna)
        metrics["wer_mean"] = statistics.fmean(delivered_wer) if delivered_wer else math.nan
        metrics["speed_ratio_mean"] = statistics.fmean(delivered_speed) if delivered_speed else math.nan
        with tempfile.TemporaryDirectory() as folder:
            save_model(stage.model, Path(folder) / (STAGE_CHECKPOINT + model.suffix),
                             {"stage": stage.stage, "finetune_steps": stage.finetune_steps, "wall_s": stage.wall_s,
                             "started_at": started_at,
                             "delivered_wer": delivered_wer, "delivered_speed": delivered_speed})
            report(metrics, folder)
