"""The search space: a define-by-run Optuna space (schedule-shape parameters exist only for incremental
trials), the grid of a full factorial, and the mapping from a sampled trial config to a PruneConfig."""
from __future__ import annotations

import itertools
import math

from prunelab.prune.run import PruneConfig
from prunelab.prune.schedulers import get_scheduler, suggest_float
from prunelab.record import reconstruction_of, recovery_of
from prunelab.sweep.spec import SweepSpec


class OptunaSpace:
    """The define-by-run space for OptunaSearch (a picklable callable, so Tune can save the searcher);
    returns the constants of every trial."""

    def __init__(self, spec: SweepSpec):
        self.spec = spec

    def __call__(self, trial) -> dict:
        spec = self.spec
        trial.suggest_categorical("criterion", spec.criteria)
        trial.suggest_categorical("method", spec.methods)
        scheduler = trial.suggest_categorical("scheduler", spec.schedulers)
        suggest_float(trial, "lr", spec.lr)
        constants = get_scheduler(scheduler).suggest(trial, spec)
        if len(spec.budgets) > 1:
            trial.suggest_categorical("finetune_steps", spec.budgets)
        else:
            constants["finetune_steps"] = spec.budgets[0]
        if len(spec.recoveries) > 1:
            trial.suggest_categorical("recovery", spec.recoveries)
        else:
            constants["recovery"] = spec.recoveries[0]
        if len(spec.reconstructions) > 1:
            trial.suggest_categorical("reconstruction", spec.reconstructions)
        else:
            constants["reconstruction"] = spec.reconstructions[0]
        return {"seed": spec.seed, **constants}


def grid_configs(spec: SweepSpec) -> list[dict]:
    """The full factorial criterion x method x scheduler x budget x recovery x reconstruction (x target size for one-shot).
    Incremental trials
    use the middle of each schedule range; the learning rate the middle of its range (geometric if log)."""
    lr = math.sqrt(spec.lr.low * spec.lr.high) if spec.lr.log else (spec.lr.low + spec.lr.high) / 2
    configs = []
    for criterion, method, scheduler, budget, recovery, reconstruction in itertools.product(
            spec.criteria, spec.methods, spec.schedulers, spec.budgets, spec.recoveries, spec.reconstructions):
        common = {"criterion": criterion, "method": method, "scheduler": scheduler, "lr": lr,
                  "finetune_steps": budget, "recovery": recovery, "reconstruction": reconstruction, "seed": spec.seed}
        configs.extend(get_scheduler(scheduler).grid(spec, common))
    return configs


def prune_config(config: dict, spec: SweepSpec) -> PruneConfig:
    """A trial's PruneConfig: one-shot prunes to its sampled size; incremental delivers every target size."""
    target, deliver, schedule = get_scheduler(config["scheduler"]).sizes(config, spec)
    return PruneConfig(config["criterion"], config["method"], config["scheduler"], target, deliver, schedule,
                       finetune_steps=config["finetune_steps"], lr=config["lr"], batch_size=spec.finetune_batch,
                       calibration_sequences=spec.calibration_sequences, prune_embedding=spec.prune_embedding,
                       seed=config.get("seed", 0), recovery=recovery_of(config),
                       reconstruction=reconstruction_of(config),
                       distill_temperature=spec.distill_temperature, distill_lm_loss_weight=spec.distill_lm_loss_weight)
