"""Warm starts: completed trials of earlier sweeps given to a new sweep's sampler as evaluated points.

An earlier trial is replayed through the new sweep's define-by-run space (`OptunaSpace`): each parameter the
space asks for must be one the earlier trial had, inside the new range or among the new choices, and what the
space holds constant (the fine-tuning budget, the incremental mode, the delivered sizes) must match. Trials that
fit become complete Optuna trials with their measured objectives; the others are skipped and counted.

Refused with one line, before anything is written: a path that holds no sweep, a sweep of another base model or
evaluated on other data (its objectives would not be comparable), and earlier sweeps none of whose trials fit."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from prunelab.errors import PrunelabError
from prunelab.lm.presets import resolve_model
from prunelab.record import reconstruction_of, recovery_of
from prunelab.sweep.folder import SPEC_FILE, read_spec
from prunelab.sweep.query import find_sweep
from prunelab.sweep.space import OptunaSpace
from prunelab.sweep.spec import SEARCH_METRIC, SweepSpec
from prunelab.sweep.store import read_results
from prunelab.sweep.study import target_sizes


class OutsideSpace(Exception):
    """An earlier trial's value that the new search space cannot take."""


class ReplayTrial:
    """Answers a define-by-run space's suggestions with an earlier trial's values, recording the distributions."""

    def __init__(self, values: dict):
        self.values, self.params, self.distributions = values, {}, {}

    def _take(self, name: str, distribution, fits) -> object:
        value = self.values.get(name)
        if value is None:
            raise OutsideSpace(f"it has no {name}")
        if not fits(value):
            raise OutsideSpace(f"its {name} {value!r} is outside the new space")
        self.params[name], self.distributions[name] = value, distribution
        return value

    def suggest_categorical(self, name, choices):
        from optuna.distributions import CategoricalDistribution  # deferred: optuna takes seconds to import

        return self._take(name, CategoricalDistribution(list(choices)), lambda v: v in choices)

    def suggest_int(self, name, low, high, step=1, log=False):
        from optuna.distributions import IntDistribution  # deferred: optuna takes seconds to import

        return self._take(name, IntDistribution(low, high, step=step, log=log), lambda v: low <= v <= high)

    def suggest_float(self, name, low, high, step=None, log=False):
        from optuna.distributions import FloatDistribution  # deferred: optuna takes seconds to import

        return self._take(name, FloatDistribution(low, high, step=step, log=log), lambda v: low <= v <= high)


@dataclass
class WarmStart:
    trials: list = field(default_factory=list)         # optuna FrozenTrials, complete, ready for study.add_trials
    skipped: dict[str, int] = field(default_factory=dict)  # per earlier sweep: trials outside the new space

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        return (f"warm start: {len(self.trials)} earlier trial(s) given to the sampler"
                f"{f', {skipped} outside the search space skipped' if skipped else ''}")


def _same_base(earlier: str, new: str) -> bool:
    if earlier == new:
        return True
    try:
        return resolve_model(earlier).resolve() == resolve_model(new).resolve()
    except (PrunelabError, OSError):
        return False


def earlier_trials(sweep_dir: str) -> list[dict]:
    """One record per completed trial of a sweep: its config from the results store and its objectives (means
    over its deliverables, as the searcher saw them)."""

    trials: dict[str, list[dict]] = {}
    for row in read_results(sweep_dir).drop_columns(["utt_errors"]).to_pylist():
        if row["status"] == "complete" and row["target_size"] is not None and row["wer"] is not None:
            trials.setdefault(row["trial_id"], []).append(row)
    records = []
    for trial_id, rows in sorted(trials.items()):
        first = rows[0]
        config = {key: first[key] for key in ("criterion", "method", "scheduler", "shape", "stages", "exponent",
                                              "budget_split", "lr", "incremental_mode")}
        sizes = sorted({row["target_size"] for row in rows}, reverse=True)
        if len(sizes) == 1:
            config["target_size"] = sizes[0]
        config["finetune_steps"] = max(row["finetune_steps"] for row in rows)  # the last deliverable spent it all
        config["recovery"] = recovery_of(first)
        config["reconstruction"] = reconstruction_of(first)
        speeds = [row["speed_ratio"] for row in rows]
        records.append({"trial_id": trial_id, "config": config, "target_sizes": sizes,
                        "wer_mean": statistics.fmean(row["wer"] for row in rows),
                        "speed_ratio_mean": statistics.fmean(speeds) if None not in speeds else None})
    return records


def fit_trial(record: dict, spec: SweepSpec):
    """(params, distributions) of an earlier trial in the new space, or OutsideSpace naming why it does not fit."""

    replay = ReplayTrial(record["config"])
    constants = OptunaSpace(spec)(replay)
    for key, value in constants.items():
        if key == "seed":
            continue
        if record["config"].get(key) != value:
            raise OutsideSpace(f"its {key} {record['config'].get(key)!r} differs from this sweep's {value!r}")
    delivered = target_sizes({**replay.params, **constants}, spec)
    if sorted(delivered) != sorted(record["target_sizes"]):
        raise OutsideSpace(f"it delivered sizes {record['target_sizes']}, this sweep's trial would deliver {delivered}")
    return replay.params, replay.distributions


def load_warm_start(spec: SweepSpec) -> WarmStart:
    """The earlier sweeps' trials that fit the spec's search space, as complete Optuna trials."""
    from optuna.trial import create_trial  # deferred: optuna takes seconds to import


    warm = WarmStart()
    if not spec.warm_start:
        return warm
    if spec.search == "grid":
        raise PrunelabError("warm_start: a grid sweep runs every configuration anyway; warm starts need an Optuna "
                            "search (search: optuna-tpe, optuna-nsga2 or random)")
    multi_objective = spec.search == "optuna-nsga2"
    for location in spec.warm_start:
        try:
            sweep_dir = find_sweep(location, spec.storage)
        except PrunelabError:
            raise PrunelabError(f"warm_start: {location} holds no sweep (no {SPEC_FILE} there)") from None
        earlier = read_spec(sweep_dir)
        if not _same_base(earlier.base, spec.base):
            raise PrunelabError(f"warm_start: {location} is a sweep of base {earlier.base!r}, this sweep prunes "
                                f"{spec.base!r}; its results would not carry over")
        if earlier.data != spec.data:
            raise PrunelabError(f"warm_start: {location} was evaluated on other data ({earlier.data.model_dump()}, "
                                f"this sweep: {spec.data.model_dump()}); its WERs are not comparable")
        records = earlier_trials(sweep_dir)
        fitted, reasons = [], []
        for record in records:
            try:
                params, distributions = fit_trial(record, spec)
            except OutsideSpace as why:
                reasons.append(f"trial {record['trial_id']}: {why}")
                continue
            if multi_objective and record["speed_ratio_mean"] is None:
                reasons.append(f"trial {record['trial_id']}: it has no speed ratio")
                continue
            values = ([record[SEARCH_METRIC], record["speed_ratio_mean"]] if multi_objective
                      else [record[SEARCH_METRIC]])
            fitted.append(create_trial(params=params, distributions=distributions, values=values,
                                       user_attrs={"warm_start_from": sweep_dir,
                                                   "warm_start_trial_id": record["trial_id"],
                                                   "target_sizes": record["target_sizes"],
                                                   "wer_mean": record["wer_mean"],
                                                   "speed_ratio_mean": record["speed_ratio_mean"]}))
        if not fitted:
            why = f" (first: {reasons[0]})" if reasons else ""
            raise PrunelabError(f"warm_start: {location} has no completed trial that fits this sweep's search space: "
                                f"{len(records)} completed, none fit{why}")
        warm.trials.extend(fitted)
        warm.skipped[sweep_dir] = len(reasons)
    return warm
