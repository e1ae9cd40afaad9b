"""Scoring speed: batched N-best scoring in inference mode, fixed threads, warm-up, median of repeats.

Absolute times on a shared machine are noisy; the figure later issues compare is `speed_ratio`,
measured by alternating the model and a reference model in one process."""
from __future__ import annotations

import statistics
import time

import torch

from prunelab.lm.adapter import ModelAdapter
from prunelab.lm.score import SCORING_BATCH, sequence_logprobs


def _time_once(model: ModelAdapter, sequences: list[list[int]], batch_size: int, precision: str) -> float:
    """Seconds for one batched scoring pass; on a GPU, between two CUDA synchronisations (kernels are asynchronous)."""
    cuda = model.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    sequence_logprobs(model, sequences, batch_size, precision=precision)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - started


def measure_speed(model: ModelAdapter, sentences: list[str], repeats: int = 5,
                  threads: int = 1, batch_size: int = SCORING_BATCH, reference: ModelAdapter | None = None,
                  precision: str = "fp32") -> dict:
    """tokens/s of scoring `sentences` (median of `repeats`) in `precision` (`prunelab.lm.precision`); with
    `reference`, also the speed ratio (reference time / model time per repeat, median), the two timed
    alternately after one warm-up each, in the same precision."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        sequences = [model.tokenizer.ids(s) for s in sentences]
        tokens = sum(len(s) - 1 for s in sequences)
        _time_once(model, sequences, batch_size, precision)
        ref_sequences = None
        if reference is not None:
            ref_sequences = [reference.tokenizer.ids(s) for s in sentences]
            _time_once(reference, ref_sequences, batch_size, precision)
        times, ratios = [], []
        for _ in range(repeats):
            elapsed = _time_once(model, sequences, batch_size, precision)
            times.append(elapsed)
            if reference is not None:
                ratios.append(_time_once(reference, ref_sequences, batch_size, precision) / elapsed)
        result = {"tokens_per_s": tokens / statistics.median(times), "speed_tokens": tokens,
                  "speed_repeats": repeats, "speed_threads": threads}
        if ratios:
            result["speed_ratio"] = statistics.median(ratios)
        return result
    finally:
        torch.set_num_threads(previous_threads)
