"""Schedulers, the third axis: when pruning happens. A registry like criteria and methods: a new scheduler
is one class here and one entry in `SCHEDULERS`; the run, the sweep's search space and grid, and the CLI
choices all ask it instead of testing its name.

- `oneshot`: one stage straight to the target size, all fine-tuning steps after it.
- `incremental`: the sizes of a schedule shape (and every deliver size) in turn, the steps split across
  the stages; it delivers several sizes from one run."""
from __future__ import annotations

from abc import ABC, abstractmethod

from prunelab.prune.schedules import Schedule


def suggest_float(trial, name: str, space) -> float:
    """A float from a spec's `{low, high, log}` range in Optuna's define-by-run space (a constant when low == high)."""
    if space.low == space.high:
        return trial.suggest_categorical(name, [space.low])
    return trial.suggest_float(name, space.low, space.high, log=space.log)


class Scheduler(ABC):
    """When pruning happens. `name` is the spec and CLI word; `delivers_several_sizes` whether one run can
    deliver several target sizes on its way down."""

    name = ""
    delivers_several_sizes = False

    @abstractmethod
    def stage_sizes(self, target: float, deliver: tuple[float, ...], schedule: Schedule) -> list[float]:
        """Sizes after each stage (without the leading 1.0), ending at `target` and passing through every
        size in `deliver`; `schedule` is the incremental schedule's shape (ignored by one-shot)."""

    @abstractmethod
    def stage_steps(self, total: int, n_stages: int, schedule: Schedule) -> list[int]:
        """How the `total` fine-tuning steps are split over `n_stages` stages (a list summing to `total`)."""

    def schedule_record(self, schedule: Schedule) -> dict | None:
        """The schedule as recorded with a deliverable (None when the scheduler has none)."""
        return None

    # ---- the sweep's side: what a trial samples, its grid entries, and what it prunes to ----
    def suggest(self, trial, spec) -> dict:
        """Sample this scheduler's parameters in Optuna's define-by-run space; returns its constants."""
        return {}

    @abstractmethod
    def grid(self, spec, common: dict) -> list[dict]:
        """The grid search's trial configs for this scheduler: `common` (the other axes' values) completed
        with this scheduler's parameters, one dict per trial, from the sweep `spec`."""

    @abstractmethod
    def sizes(self, config: dict, spec) -> tuple[float, tuple[float, ...], Schedule]:
        """(target size, further sizes to deliver, schedule) of a sampled trial `config` under the sweep `spec`."""


class OneShot(Scheduler):
    name = "oneshot"

    def stage_sizes(self, target, deliver, schedule):
        return [target]

    def stage_steps(self, total, n_stages, schedule):
        return [total]

    def suggest(self, trial, spec):
        trial.suggest_categorical("target_size", spec.target_sizes)
        return {}

    def grid(self, spec, common):
        return [{**common, "target_size": size} for size in spec.target_sizes]

    def sizes(self, config, spec):
        return config["target_size"], (), Schedule()


class Incremental(Scheduler):
    name = "incremental"
    delivers_several_sizes = True

    def stage_sizes(self, target, deliver, schedule):
        # rounded: a schedule's float arithmetic gives 0.30000000000000004 where a deliver size says 0.3, and
        # the two must be one stage, not a second stage that prunes nothing
        sizes = {round(s, 9) for s in schedule.sizes(target)[1:]} | {round(s, 9) for s in deliver}
        return sorted(sizes, reverse=True)

    def stage_steps(self, total, n_stages, schedule):
        return schedule.stage_steps(total, n_stages)

    def schedule_record(self, schedule):
        return schedule.to_dict()

    def suggest(self, trial, spec):
        if spec.incremental_mode == "per-size":
            trial.suggest_categorical("target_size", spec.target_sizes)
        shape = trial.suggest_categorical("shape", spec.schedule.shapes)
        trial.suggest_int("stages", spec.schedule.stages.low, spec.schedule.stages.high)
        if shape == "polynomial":
            suggest_float(trial, "exponent", spec.schedule.exponent)
        suggest_float(trial, "budget_split", spec.schedule.budget_split)
        return {"incremental_mode": spec.incremental_mode}

    def grid(self, spec, common):
        """One trial at the middle of each schedule range (first shape; arithmetic middles)."""
        middle = {
            "shape": spec.schedule.shapes[0],
            "stages": round((spec.schedule.stages.low + spec.schedule.stages.high) / 2),
            "exponent": (spec.schedule.exponent.low + spec.schedule.exponent.high) / 2,
            "budget_split": (spec.schedule.budget_split.low + spec.schedule.budget_split.high) / 2,
        }
        middle["incremental_mode"] = spec.incremental_mode
        if spec.incremental_mode == "per-size":
            return [{**common, **middle, "target_size": size} for size in spec.target_sizes]
        return [{**common, **middle}]

    def sizes(self, config, spec):
        schedule = Schedule(config.get("shape", "polynomial"), config["stages"], config.get("exponent", 1.0),
                            budget_split=config["budget_split"])
        if config.get("incremental_mode") == "per-size":
            return config["target_size"], (), schedule
        target = min(spec.target_sizes)
        return target, tuple(s for s in spec.target_sizes if s != target), schedule


SCHEDULERS: dict[str, Scheduler] = {s.name: s for s in (OneShot(), Incremental())}


def get_scheduler(name: str) -> Scheduler:
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; expected one of {', '.join(SCHEDULERS)}")
    return SCHEDULERS[name]
