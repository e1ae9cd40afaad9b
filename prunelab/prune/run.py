"""One pruning run: a scheduler drives a method and a criterion from the base down to the target size,
fine-tuning between stages, and yields a deliverable at every requested size it passes."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch

from prunelab.data.text import Corpus
from prunelab.lm.adapter import ModelAdapter
from prunelab.lm.train import Distillation, TrainConfig, lr_at, make_optimizer, random_batch, training_step
from prunelab.memory import release_memory
from prunelab.prune.calibration import calibrate
from prunelab.prune.criteria import get_criterion
from prunelab.prune.methods import make_method
from prunelab.prune.reconstruct import reconstruct
from prunelab.prune.schedulers import SCHEDULERS, get_scheduler
from prunelab.prune.schedules import Schedule
from prunelab.prune.size import check_size
from prunelab.record import DEFAULT_RECONSTRUCTION, RECONSTRUCTIONS, RECOVERIES


@dataclass(frozen=True)
class PruneConfig:
    criterion: str
    method: str
    scheduler: str
    target_size: float
    deliver: tuple[float, ...] = ()     # further sizes to deliver on the way (incremental only)
    schedule: Schedule = field(default_factory=Schedule)
    finetune_steps: int = 300           # total optimizer steps, equal for one-shot and incremental
    lr: float = 3e-4
    batch_size: int = 32
    calibration_sequences: int = 128
    prune_embedding: bool = True
    seed: int = 0
    recovery: str = RECOVERIES[0]
    distill_temperature: float = 1.0
    distill_lm_loss_weight: float = 0.0  # distill: the plain LM loss's share of the loss (0: KL only)
    reconstruction: str = DEFAULT_RECONSTRUCTION  # closed-form refit after each stage's pruning (prune.reconstruct)

    def __post_init__(self):
        get_criterion(self.criterion)
        if self.recovery not in RECOVERIES:
            raise ValueError(f"unknown recovery {self.recovery!r}; expected one of {', '.join(RECOVERIES)}")
        if self.reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"unknown reconstruction {self.reconstruction!r}; expected one of {', '.join(RECONSTRUCTIONS)}")
        if self.distill_temperature <= 0:
            raise ValueError(f"the distillation temperature must be > 0, got {self.distill_temperature}")
        if not 0 <= self.distill_lm_loss_weight <= 1:
            raise ValueError(f"the LM loss weight of distillation must be in [0, 1], got {self.distill_lm_loss_weight}")
        scheduler = get_scheduler(self.scheduler)
        for size in (self.target_size, *self.deliver):
            if not 0 < size < 1:
                raise ValueError(f"target size must be between 0 and 1 (exclusive), got {size}")
        if self.deliver and not scheduler.delivers_several_sizes:
            several = " or ".join(s.name for s in SCHEDULERS.values() if s.delivers_several_sizes)
            raise ValueError(f"--deliver needs the {several} scheduler ({self.scheduler} passes no other size)")
        if any(size < self.target_size for size in self.deliver):
            raise ValueError(f"deliver sizes must be >= the target size {self.target_size}")
        if self.finetune_steps < 0:
            raise ValueError("finetune_steps must be >= 0")

    def to_dict(self) -> dict:
        return {**asdict(self), "deliver": list(self.deliver), "schedule": self.schedule.to_dict()}

    def stage_sizes(self) -> list[float]:
        """Sizes after each stage (without the leading 1.0), deliver sizes included."""
        return get_scheduler(self.scheduler).stage_sizes(self.target_size, self.deliver, self.schedule)


@dataclass
class StageResult:
    target_size: float
    achieved_size: float
    params: int
    stage: int
    finetune_steps: int     # optimizer steps spent so far in this run
    wall_s: float
    model: ModelAdapter
    delivered: bool = True  # a size the run was asked to deliver (else an intermediate stage)
    n_stages: int = 1

    def record(self, config: PruneConfig) -> dict:
        return {"target_size": self.target_size, "achieved_size": self.achieved_size, "params_total": self.params,
                "stage": self.stage, "finetune_steps": self.finetune_steps, "wall_s": round(self.wall_s, 2),
                "criterion": config.criterion, "method": config.method, "scheduler": config.scheduler,
                "recovery": config.recovery, "reconstruction": config.reconstruction, "schedule": get_scheduler(config.scheduler).schedule_record(config.schedule)}


def finetune(lm: ModelAdapter, stream: torch.Tensor, steps: int, lr: float, batch_size: int,
             generator: torch.Generator, after_step: Callable[[ModelAdapter], None],
             distill: Distillation | None = None) -> None:
    """Recovery: `steps` optimizer steps on the plain LM loss, or with `distill` on the KL divergence to its teacher."""
    if steps <= 0:
        return
    optimizer = make_optimizer(lm, lr, weight_decay=0.01)
    schedule = TrainConfig(lr=lr, warmup_steps=max(1, min(20, steps // 10)))
    lm.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, schedule)
        inputs, targets = random_batch(stream, batch_size, lm.context, generator)
        training_step(lm, optimizer, inputs.to(lm.device), targets.to(lm.device), distill=distill)
        after_step(lm)
    lm.eval()


def calibration_batches(stream: torch.Tensor, n_sequences: int, context: int, seed: int,
                        batch_size: int = 8) -> list[torch.Tensor]:
    """The token windows reconstruction fits on: `n_sequences` random windows of the training stream."""
    generator = torch.Generator().manual_seed(seed)
    sizes = [min(batch_size, n_sequences - done) for done in range(0, n_sequences, batch_size)]
    return [random_batch(stream, size, context, generator)[0] for size in sizes]


@dataclass
class Resume:
    """Where an interrupted run continues: the model after `completed_stages` stages and the steps spent."""

    model: ModelAdapter
    completed_stages: int
    finetune_steps: int
    wall_s: float


def run_pruning(base: ModelAdapter, corpus: Corpus, config: PruneConfig,
                log: Callable[[str], None] = print, resume: Resume | None = None) -> Iterator[StageResult]:
    """Prune a copy of `base` per `config`, yielding the model after every stage (`StageResult.wanted` tells
    whether its size was asked for). Each stage seeds its own calibration and fine-tuning randomness, so a
    run resumed after stage k (`resume`) continues exactly as the uninterrupted run would."""
    criterion = get_criterion(config.criterion)
    base_params = base.param_counts()["params_total"]
    # a criterion whose statistic is the diagonal of the input Gram matrix leaves which units go (structured) to
    # the full Gram matrices that least-squares reconstruction computes
    gram_choice = config.reconstruction == "least-squares" and criterion.gram_choice
    method = make_method(config.method, base_params, config.prune_embedding, leave_choice=gram_choice)
    sizes = config.stage_sizes()
    steps = get_scheduler(config.scheduler).stage_steps(config.finetune_steps, len(sizes), config.schedule)
    wanted = {config.target_size, *config.deliver}
    stream = base.tokenizer.stream(corpus.train)
    distill = None
    if config.recovery == "distill":  # the unpruned base as it is, in memory beside the student
        distill = Distillation(base.eval(), config.distill_temperature, config.distill_lm_loss_weight)
    model = (resume.model if resume else base).clone().eval()
    done = resume.completed_stages if resume else 0
    spent = resume.finetune_steps if resume else 0
    started = time.monotonic() - (resume.wall_s if resume else 0.0)
    for stage in range(done + 1, len(sizes) + 1):
        size, stage_steps = sizes[stage - 1], steps[stage - 1]
        release_memory()  # what the previous stage and its evaluation freed, before calibration allocates
        torch.manual_seed(config.seed * 1000 + stage)
        calib = None
        reference = None  # the model before this stage, unfactorised: what calibration and reconstruction read
        if criterion.data_driven or config.reconstruction != "none":
            first_stage = stage == 1 and resume is None and not any(slot.factorized for slot in base.all_slots())
            reference = base if first_stage else model.densified()  # base: no third copy of the model in memory
        batches = None
        if config.reconstruction == "least-squares":
            batches = calibration_batches(stream, config.calibration_sequences, model.context, config.seed * 1000 + stage)
        if criterion.data_driven:
            calib = calibrate(reference, corpus, config.calibration_sequences, seed=config.seed * 1000 + stage,
                              stream=stream, gradients=criterion.needs_gradients)
            release_memory()  # the calibration's gradients and temporaries
        model = method.prune(model, size, criterion, calib)
        if batches is not None:
            calib = None  # the criterion's statistics are spent: free them before the refit allocates
            release_memory()
            reconstruct(model, reference, batches, choose=method.left_choice())
        del reference
        achieved = method.stored_params(model) / base_params
        check_size(achieved, size)
        generator = torch.Generator().manual_seed(config.seed * 1000 + stage)
        finetune(model, stream, stage_steps, config.lr, config.batch_size, generator, method.after_step, distill)
        del calib
        release_memory()  # the optimizer state and calibration statistics
        spent += stage_steps
        log(f"stage {stage}/{len(sizes)}: size {achieved:.4f} (target {size:g}), {stage_steps} {config.recovery} steps, "
            f"{time.monotonic() - started:.0f} s")
        last = stage == len(sizes)  # nothing prunes it further: handed over as it is, not copied (peak memory)
        yield StageResult(size, achieved, method.stored_params(model), stage, spent, time.monotonic() - started,
                          model if last else model.clone(), delivered=size in wanted, n_stages=len(sizes))
