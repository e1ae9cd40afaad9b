"""Which precision training and scoring run in: bf16 autocast (fp32 master weights) where the device multiplies
bfloat16 natively, fp32 elsewhere.

Scoring in bf16 (`scoring_autocast`) runs the blocks in bf16 and the output layer in fp32 (`output_logits`): a
bf16 logit of magnitude ~10 is off by up to ~0.04 nats, and the output layer is a small share of a forward pass.

On a CPU without bfloat16 instructions PyTorch emulates bf16 matrix products, and they are not a little slower but
hundreds of times slower: a 1024x512 by 512x2048 product took 8.07 s in bf16 against 0.042 s in fp32 on one thread
of an AVX2-only AMD EPYC here (a fine-tuning step of the small base: ~30 s instead of under 1 s)."""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

PRECISIONS = ("auto", "bf16", "fp32")
CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16",  # x86: AVX512-BF16, AMX
                  "bf16"}  # aarch64: the BF16 extension (Features line)


@functools.cache
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the processor's flags name bfloat16 instructions (Linux; elsewhere False)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features") and CPU_BF16_FLAGS & set(value.split()):
            return True
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """'bf16' or 'fp32' for `precision` ('auto', 'bf16', 'fp32') on `device`: 'auto' takes bf16 on a CUDA device
    that supports it and on a CPU with bf16 instructions, fp32 otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


@contextlib.contextmanager
def scoring_autocast(precision: str, device: torch.device | str, weights_dtype: torch.dtype = torch.float32):
    """Scoring in `precision` ('auto', 'bf16', 'fp32', resolved as for training) on `device`: bf16 autocast of
    the blocks where it resolves to bf16 and the weights are fp32 (weights stored in bf16 already run in bf16).
    Yields the precision it resolved to."""
    resolved = resolve_precision(precision, device)
    enabled = resolved == "bf16" and weights_dtype == torch.float32
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled):
        yield resolved


def output_logits(decode, hidden: torch.Tensor) -> torch.Tensor:
    """fp32 logits of `decode` (a model's output layer) for `hidden`, outside any bf16 autocast."""
    device_type = hidden.device.type
    if not torch.is_autocast_enabled(device_type):
        return decode(hidden).float()
    with torch.autocast(device_type, enabled=False):
        return decode(hidden.float()).float()
