"""Training a base LM on the corpus: a token stream of `<s> words </s>` sentences, random context windows."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from prunelab.data.text import Corpus
from prunelab.lm.adapter import ModelAdapter
from prunelab.lm.model import PRESETS, LMConfig, TransformerLM
from prunelab.lm.precision import resolve_precision
from prunelab.lm.score import perplexity
from prunelab.lm.vocab import Vocab
from prunelab.lm.word_adapter import WordLM


@dataclass
class TrainConfig:
    minutes: float | None = None   # wall-clock budget; training stops at whichever of minutes/steps comes first
    steps: int = 10_000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 100
    grad_clip: float = 1.0
    eval_every: int = 200
    eval_sentences: int = 1500     # valid subset for progress lines; the final figure uses the whole split
    seed: int = 0
    threads: int | None = None
    precision: str = "auto"        # "bf16": autocast matmuls to bfloat16 (fp32 master weights); "fp32"; "auto":
                                   # bf16 where the device has bf16 instructions (prunelab.lm.precision)
    checkpoint_every_minutes: float = 10.0  # how often `train_or_load_base` saves a partial checkpoint


def lr_at(step: int, total: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total - config.warmup_steps))
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def random_batch(stream: torch.Tensor, batch_size: int, context: int, generator: torch.Generator):
    starts = torch.randint(0, len(stream) - context - 1, (batch_size,), generator=generator)
    windows = torch.stack([stream[s:s + context + 1] for s in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]


def make_optimizer(lm: ModelAdapter, lr: float, weight_decay: float) -> torch.optim.AdamW:
    parameters = [p for p in lm.parameters() if p.requires_grad]
    decay = [p for p in parameters if p.dim() >= 2]
    no_decay = [p for p in parameters if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98))


MICRO_BATCH = 16  # sequences per forward/backward pass of the blocks
# Target tokens per output-layer call in training. The (tokens x vocab) logits, their log-softmax and their
# gradients are the largest tensors of a step (about 330 MB for 16 x 64 tokens of the small base); computed
# 256 tokens at a time and recomputed in the backward pass, they stay near 20 MB each. Measured here (small
# base, 2 threads, 12 fine-tuning steps): peak RSS 954-993 MB -> 835-868 MB, 0.69-0.80 s per step either way.
LOSS_CHUNK = 256


def _summed_loss(decode: Callable[[torch.Tensor], torch.Tensor], hidden: torch.Tensor,
                 targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(decode(hidden).float(), targets, reduction="sum")


def summed_output_loss(decode: Callable[[torch.Tensor], torch.Tensor], hidden: torch.Tensor, targets: torch.Tensor,
                       chunk: int = LOSS_CHUNK) -> torch.Tensor:
    """Cross-entropy of the output layer on final hidden states, summed over all targets, run `chunk`
    targets at a time (the logits are recomputed in the backward pass instead of kept)."""
    hidden, targets = hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1)
    parts = [checkpoint(_summed_loss, decode, hidden[start:start + chunk], targets[start:start + chunk],
                        use_reentrant=False) for start in range(0, len(targets), chunk)]
    return torch.stack(parts).sum()


def _summed_kl(decode: Callable[[torch.Tensor], torch.Tensor], hidden: torch.Tensor,
               teacher_logprobs: torch.Tensor, temperature: float) -> torch.Tensor:
    student = F.log_softmax(decode(hidden).float() / temperature, dim=-1)
    return F.kl_div(student, teacher_logprobs, log_target=True, reduction="sum") * temperature ** 2


def summed_distill_loss(decode: Callable[[torch.Tensor], torch.Tensor], hidden: torch.Tensor,
                        teacher_decode: Callable[[torch.Tensor], torch.Tensor], teacher_hidden: torch.Tensor,
                        temperature: float = 1.0, chunk: int = LOSS_CHUNK) -> torch.Tensor:
    """KL(teacher || student) of the next-token distributions at `temperature` (times temperature², so its
    gradients keep their scale), summed over all positions, `chunk` positions at a time like the plain loss: the
    teacher's log-probs of one chunk exist only while that chunk's loss is computed."""
    hidden = hidden.reshape(-1, hidden.shape[-1])
    teacher_hidden = teacher_hidden.reshape(-1, teacher_hidden.shape[-1])
    parts = []
    for start in range(0, len(hidden), chunk):
        with torch.no_grad():
            teacher = F.log_softmax(teacher_decode(teacher_hidden[start:start + chunk]).float() / temperature, dim=-1)
        parts.append(checkpoint(_summed_kl, decode, hidden[start:start + chunk], teacher, temperature,
                                use_reentrant=False))
    return torch.stack(parts).sum()


@dataclass(frozen=True)
class Distillation:
    """Recovery by distillation: the loss is the KL divergence to `teacher`'s next-token distribution at
    `temperature`, mixed with the plain next-token loss by `lm_loss_weight` (0: KL only)."""
    teacher: ModelAdapter
    temperature: float = 1.0
    lm_loss_weight: float = 0.0


def training_step(lm: ModelAdapter, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
                  targets: torch.Tensor, precision: str = "auto", grad_clip: float = 1.0,
                  micro_batch: int = MICRO_BATCH, distill: Distillation | None = None) -> float:
    """One optimizer step on next-token cross-entropy over the whole batch (with `distill`, on the KL divergence
    to the teacher, mixed as it says); returns the loss.

    The batch runs in slices of `micro_batch` sequences whose gradients add up to the whole batch's
    (each slice's summed loss over the batch's token count), so memory stays bounded without changing the step."""
    optimizer.zero_grad(set_to_none=True)
    precision = resolve_precision(precision, inputs.device)
    total = 0.0
    for start in range(0, len(inputs), micro_batch):
        part_inputs, part_targets = inputs[start:start + micro_batch], targets[start:start + micro_batch]
        with torch.autocast(part_inputs.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            hidden = lm.hidden(part_inputs)
            if distill is None:
                loss = summed_output_loss(lm.decode, hidden, part_targets)
            else:
                with torch.no_grad():
                    teacher_hidden = distill.teacher.hidden(part_inputs)
                loss = summed_distill_loss(lm.decode, hidden, distill.teacher.decode, teacher_hidden,
                                           distill.temperature)
                if distill.lm_loss_weight:
                    loss = ((1 - distill.lm_loss_weight) * loss
                            + distill.lm_loss_weight * summed_output_loss(lm.decode, hidden, part_targets))
            loss = loss / targets.numel()
        loss.backward()
        total += loss.item()
    torch.nn.utils.clip_grad_norm_([p for p in lm.parameters() if p.grad is not None], grad_clip)
    optimizer.step()
    return total


def train_base(corpus: Corpus, preset: str, config: TrainConfig,
               log: Callable[[str], None] = print,
               on_progress: Callable[[TransformerLM, Vocab, dict], None] | None = None,
               init: tuple[TransformerLM, Vocab] | None = None) -> tuple[TransformerLM, Vocab, dict]:
    """Train a base model of a preset from scratch, or go on training `init` (model, vocabulary) with a
    fresh warm-up and cosine schedule; returns model, vocabulary and a summary of this run."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    precision = resolve_precision(config.precision, "cpu")  # an unknown one fails before anything is built
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    if init is not None:
        model, vocab = init
    else:
        shape = dict(PRESETS[preset])
        vocab = Vocab.build(corpus.train, shape.pop("vocab"))
        model = TransformerLM(LMConfig(vocab_size=len(vocab), **shape))
    lm = WordLM.of(model, vocab)
    stream = lm.tokenizer.stream(corpus.train)
    valid_subset = corpus.valid[: config.eval_sentences]
    optimizer = make_optimizer(lm, config.lr, config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    context = model.config.context
    deadline = time.monotonic() + 60 * config.minutes if config.minutes else math.inf
    total_steps = config.steps  # with a time budget, re-estimated after 20 steps so the schedule fits it
    started = time.monotonic()
    step, tokens_seen, history = 0, 0, []
    model.train()
    while step < total_steps and time.monotonic() < deadline:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, total_steps, config)
        inputs, targets = random_batch(stream, config.batch_size, context, generator)
        loss = training_step(lm, optimizer, inputs, targets, precision, config.grad_clip)
        step += 1
        tokens_seen += inputs.numel()
        if step == 20 and config.minutes:
            per_step = (time.monotonic() - started) / step
            total_steps = min(config.steps, int(60 * config.minutes / per_step))
        if step % config.eval_every == 0 or step == total_steps:
            elapsed = time.monotonic() - started
            ppl = perplexity(lm, valid_subset)
            model.train()
            history.append({"step": step, "minutes": elapsed / 60, "ppl_valid_subset": ppl})
            if on_progress:
                on_progress(model, vocab, {"steps": step, "tokens": tokens_seen, "history": history})
            log(f"step {step}/{total_steps}  loss {loss:.3f}  lr {optimizer.param_groups[0]['lr']:.2e}  "
                f"{tokens_seen / elapsed:,.0f} tokens/s  valid ppl (subset) {ppl:.1f}  {elapsed / 60:.1f} min")
    model.eval()
    elapsed = time.monotonic() - started
    summary = {"preset": preset, "steps": step, "tokens": tokens_seen, "train_minutes": round(elapsed / 60, 2),
               "tokens_per_s": round(tokens_seen / elapsed, 1), "epochs": round(tokens_seen / len(stream), 3),
               "precision": precision,
               "history": history, "train_config": {k: v for k, v in vars(config).items()}}
    return model, vocab, summary
