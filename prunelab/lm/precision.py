"""Which precision training runs in: bf16 autocast (fp32 master weights) where the device multiplies bfloat16
natively, fp32 elsewhere.

On a CPU without bfloat16 instructions PyTorch emulates bf16 matrix products, and they are not a little slower but
hundreds of times slower: a 1024x512 by 512x2048 product took 8.07 s in bf16 against 0.042 s in fp32 on one thread
of an AVX2-only AMD EPYC here (a fine-tuning step of the small base: ~30 s instead of under 1 s)."""
from __future__ import annotations

import functools
from pathlib import Path

import torch

PRECISIONS = ("auto", "bf16", "fp32")
CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16",  # x86: AVX512-BF16, AMX
                  "bf16"}  # aarch64: the BF16 extension (Features line)


@functools.lru_cache(maxsize=None)
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
