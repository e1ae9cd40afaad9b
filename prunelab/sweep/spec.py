"""The sweep spec: YAML validated into a typed object before anything starts.

Key names are shared with CLI flags, Parquet columns and W&B config keys."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prunelab.errors import PrunelabError
from prunelab.paths import resolve_spec
from prunelab.prune.criteria import CRITERIA
from prunelab.prune.methods import METHODS
from prunelab.prune.schedulers import SCHEDULERS
from prunelab.record import DEFAULT_RECONSTRUCTION, RECONSTRUCTIONS, RECOVERIES

# the allowed values come from the registries of the three axes
Criterion = Literal[tuple(CRITERIA)]
Method = Literal[tuple(METHODS)]
Recovery = Literal[RECOVERIES]
Reconstruction = Literal[RECONSTRUCTIONS]
Scheduler = Literal[tuple(SCHEDULERS)]
Shape = Literal["polynomial", "exponential"]

SEARCH_METRIC = "wer_mean"  # what a search minimises: the mean WER over the sizes a trial delivered


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntRange(Strict):
    low: int
    high: int

    @model_validator(mode="after")
    def ordered(self):
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
        return self


class FloatRange(Strict):
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def ordered(self):
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class ScheduleSpace(Strict):
    """Ranges the search samples incremental schedule shapes from (one-shot trials have none)."""

    shapes: list[Shape] = ["polynomial"]
    stages: IntRange = IntRange(low=2, high=4)
    exponent: FloatRange = FloatRange(low=1.0, high=3.0)
    budget_split: FloatRange = FloatRange(low=0.7, high=1.5)


class DataSpec(Strict):
    corpus: str | None = None          # folder; None = the shipped corpus
    nbest: str | None = None           # Parquet; None = the shipped N-best benchmark
    eval_test_utts: int | None = Field(default=None, ge=1)  # evaluate deliverables on the first N test utterances
    eval_dev_utts: int | None = Field(default=None, ge=1)   # tune rescoring weights on the first N dev utterances
    # perplexity on the first N valid sentences (None: all 6,253; a large LM scores them in minutes on a CPU)
    ppl_valid_sentences: int | None = Field(default=None, ge=1)
    # test hypotheses each deliverable's speed ratio is timed on (as `prunelab eval`: 1,024; fewer suit a large LM)
    speed_sentences: int = Field(default=1024, ge=1)
    # the precision deliverables' N-best lists are scored in: auto = bf16 where the device has bf16 instructions
    scoring_precision: Literal["auto", "bf16", "fp32"] = "auto"


class WandbSpec(Strict):
    project: str = "prunelab"
    mode: Literal["offline", "online", "disabled"] = "offline"


class Resources(Strict):
    cpu: float = Field(default=1.0, gt=0)
    gpu: float = Field(default=0.0, ge=0)  # GPUs per trial, fractions allowed as Ray does; 0 runs on the CPU


class SweepSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    base: str                                    # checkpoint path or preset name (tiny, small)
    data: DataSpec = DataSpec()
    target_sizes: list[float] = Field(min_length=1)
    criteria: list[Criterion] = Field(min_length=1)
    methods: list[Method] = Field(min_length=1)
    schedulers: list[Scheduler] = Field(min_length=1)
    schedule: ScheduleSpace = ScheduleSpace()
    # the fine-tuning budget, equal for one-shot and incremental trials: a fair comparison; a list of budgets makes
    # the budget an axis of the sweep (every configuration at each budget)
    finetune_steps: int | list[int] = 300
    # how pruned models recover (prunelab.record.RECOVERIES); several make the recovery an axis of the sweep
    recoveries: list[Recovery] = Field(default=[RECOVERIES[0]], min_length=1)
    # the closed-form refit after pruning (prunelab.record.RECONSTRUCTIONS); several make it an axis of the sweep
    reconstructions: list[Reconstruction] = Field(default=[DEFAULT_RECONSTRUCTION], min_length=1)
    distill_temperature: float = Field(default=1.0, gt=0)
    distill_lm_loss_weight: float = Field(default=0.0, ge=0, le=1)
    lr: FloatRange = FloatRange(low=3e-4, high=3e-4, log=True)
    finetune_batch: int = Field(default=32, ge=1)  # sequences of the model's context per fine-tuning step
    calibration_sequences: int = Field(default=128, ge=1)
    prune_embedding: bool = True
    # multi-size: one incremental run delivers every target size (the paper's multi-size variant);
    # per-size: one incremental trial per target size with the whole budget (the equal-budget comparison of (b))
    incremental_mode: Literal["multi-size", "per-size"] = "multi-size"
    search: Literal["optuna-tpe", "optuna-nsga2", "random", "grid"] = "optuna-tpe"
    num_samples: int = Field(default=8, ge=1)
    startup_trials: int = Field(default=10, ge=1)    # optuna-tpe: random trials before TPE models the results
    # optuna-tpe: running trials count as if they had the worst value seen, so trials suggested while many run differ
    constant_liar: bool = False
    max_concurrent: int = Field(default=1, ge=1)
    resources: Resources = Resources()
    early_stopping: bool = False
    # earlier sweeps (folders, names under storage, or URIs) whose completed trials the sampler starts from
    warm_start: list[str] = []
    wandb: WandbSpec = WandbSpec()
    storage: str = "runs"
    seed: int = 0

    @field_validator("target_sizes")
    @classmethod
    def sizes_in_range(cls, sizes: list[float]) -> list[float]:
        for size in sizes:
            if not 0 < size < 1:
                raise ValueError(f"each target size must be between 0 and 1 (exclusive), got {size}")
        if len(set(sizes)) != len(sizes):
            raise ValueError("target sizes must be distinct")
        return sorted(sizes, reverse=True)

    @field_validator("finetune_steps")
    @classmethod
    def budgets_valid(cls, steps: int | list[int]) -> int | list[int]:
        budgets = steps if isinstance(steps, list) else [steps]
        if not budgets or any(b < 0 for b in budgets) or len(set(budgets)) != len(budgets):
            raise ValueError(f"fine-tuning budgets must be distinct integers >= 0, got {steps}")
        return steps

    @field_validator("warm_start", mode="before")
    @classmethod
    def one_or_more_sweeps(cls, value):
        return [value] if isinstance(value, str) else value

    @property
    def budgets(self) -> list[int]:
        """The fine-tuning budgets: one (the usual case) or several (the budget is then an axis of the sweep)."""
        return self.finetune_steps if isinstance(self.finetune_steps, list) else [self.finetune_steps]


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "spec"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        return f"unknown key {where!r}"
    if error["type"] == "literal_error":
        allowed = error.get("ctx", {}).get("expected", "")
        return f"{where}: {error.get('input')!r} is not allowed; expected {allowed}"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    return f"{where}: {message.removeprefix('Value error, ')}"


def parse_spec(data: dict, source: str = "spec") -> SweepSpec:
    if not isinstance(data, dict):
        raise PrunelabError(f"{source}: a sweep spec is a YAML mapping of keys")
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(_describe(e) for e in error.errors())
        raise PrunelabError(f"{source}: {problems}") from None


def load_spec(path: str | Path, overrides: dict | None = None) -> SweepSpec:
    """A spec from a YAML path or a shipped spec's name (`demo`), validated, with `overrides` applied."""
    path = resolve_spec(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise PrunelabError(f"{path}: malformed YAML{where}: {getattr(error, 'problem', error)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PrunelabError(f"{path}: a sweep spec is a YAML mapping of keys, not a {type(data).__name__}")
    data = {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    return parse_spec(data, str(path))
