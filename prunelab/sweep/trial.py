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
from pathlib import Path

import torch

from prunelab import storage
from prunelab.data.text import load_corpus
from prunelab.evaluate.evaluator import Benchmark, evaluate_model
from prunelab.evaluate.flops import flop_ratio
from prunelab.lm.checkpoint import load_checkpoint, save_checkpoint
from prunelab.lm.model import LMConfig, TransformerLM
from prunelab.lm.score import perplexity
from prunelab.lm.vocab import Vocab
from prunelab.prune.deliver import deliverable_name
from prunelab.prune.run import Resume, run_pruning
from prunelab.sweep.space import prune_config
from prunelab.sweep.spec import SweepSpec

STAGE_CHECKPOINT = "stage.pt"


def model_payload(model: TransformerLM, vocab: Vocab) -> dict:
    """What travels to every trial through Ray's object store (plain data and tensors)."""
    return {"config": model.config.to_dict(), "state_dict": model.state_dict(), "vocab": vocab.words,
            "oov_penalty": vocab.oov_penalty}


def model_from_payload(payload: dict) -> tuple[TransformerLM, Vocab]:
    model = TransformerLM(LMConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval(), Vocab(list(payload["vocab"]), payload["oov_penalty"])


def trial_config(config: dict) -> dict:
    """Grid trials carry their config under one key; searched trials have it flat."""
    return dict(config.get("trial", config))


def deliverables_dir(sweep_dir: str, trial_id: str) -> str:
    return storage.join(sweep_dir, "deliverables", trial_id)


def save_deliverable(location: str, model: TransformerLM, vocab: Vocab, info: dict) -> str:
    """Save a deliverable checkpoint to the sweep's storage (a local folder or a URI); returns its location."""
    local = storage.local_path(location)
    if local is not None:
        return str(save_checkpoint(local, model, vocab, info))
    with tempfile.TemporaryDirectory() as folder:
        return storage.upload(save_checkpoint(Path(folder) / "model.pt", model, vocab, info), location)


@functools.lru_cache(maxsize=2)
def _inputs(corpus_dir: str | None, nbest_path: str | None, eval_test_utts: int | None) -> tuple:
    """Corpus and benchmark, loaded once per worker process (Tune reuses workers across trials)."""
    corpus = load_corpus(corpus_dir)
    return corpus, Benchmark.load(corpus_dir, nbest_path, eval_test_utts, corpus=corpus)


def run_trial(config: dict, base: dict, spec: dict, sweep_dir: str) -> None:
    import ray
    from ray import tune

    spec = SweepSpec.model_validate(spec)
    config = trial_config(config)
    torch.set_num_threads(max(1, int(spec.resources.cpu)))
    model, vocab = model_from_payload(base)
    corpus, bench = _inputs(spec.data.corpus, spec.data.nbest, spec.data.eval_test_utts)
    pruning = prune_config(config, spec)
    context = tune.get_context()
    trial_id = context.get_trial_id()
    # host name and Ray node ID: several Ray nodes may share one host
    node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            stage_model, _, info = load_checkpoint(Path(folder) / STAGE_CHECKPOINT)
        resume = Resume(stage_model, info["stage"], info["finetune_steps"], info["wall_s"])
    delivered_wer, delivered_speed, started_at = [], [], time.time()
    if resume is not None:
        delivered_wer, delivered_speed = list(info["delivered_wer"]), list(info["delivered_speed"])
        started_at = info.get("started_at", started_at)
    for stage in run_pruning(model, vocab, corpus, pruning, log=lambda line: print(line, flush=True), resume=resume):
        metrics = {"stage": stage.stage, "n_stages": stage.n_stages, "target_size": stage.target_size,
                   "achieved_size": stage.achieved_size, "finetune_steps": stage.finetune_steps,
                   "wall_s": stage.wall_s, "node": node, "delivered": stage.delivered, "started_at": started_at,
                   "final": stage.stage == stage.n_stages}
        if stage.delivered:
            result = evaluate_model(stage.model, vocab, bench, trigram=False, speed_vs=(model, vocab),
                                    speed_repeats=3, threads=max(1, int(spec.resources.cpu)))
            path = save_deliverable(storage.join(deliverables_dir(sweep_dir, trial_id), deliverable_name(stage.target_size)),
                                    stage.model, vocab, {**result, "trial_config": config})
            delivered_wer.append(result["wer"])
            delivered_speed.append(result["speed_ratio"])
            metrics.update({key: result[key] for key in ("ppl_valid", "wer", "wer_ci_low", "wer_ci_high", "utt_errors",
                                                          "speed_ratio", "params_total")})
            metrics.update({"flop_ratio": flop_ratio(stage.model, model), "checkpoint": str(path)})
        else:
            metrics["ppl_valid"] = perplexity(stage.model, vocab, corpus.valid)
        # the search objectives, means over the sizes delivered so far (NaN before the first: Tune wants every
        # result to carry them; a trial stopped before delivering anything ends as failed in Optuna)
        metrics["wer_mean"] = statistics.fmean(delivered_wer) if delivered_wer else math.nan
        metrics["speed_ratio_mean"] = statistics.fmean(delivered_speed) if delivered_speed else math.nan
        with tempfile.TemporaryDirectory() as folder:
            save_checkpoint(Path(folder) / STAGE_CHECKPOINT, stage.model, vocab,
                            {"stage": stage.stage, "finetune_steps": stage.finetune_steps, "wall_s": stage.wall_s,
                             "started_at": started_at,
                             "delivered_wer": delivered_wer, "delivered_speed": delivered_speed})
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
