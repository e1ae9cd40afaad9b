"""Giving freed memory back to the system between the phases of a long run.

glibc's allocator keeps the pages of freed tensors (a fine-tuning stage's optimizer state, a calibration's
gradients) for reuse, so a process's resident size stays at its high-water mark and each later phase adds
its own peak on top of that. Measured on a pruning run of the small base (activation low-rank, 5 stages,
2 evaluations): resident size between stages 970-1,160 MB without trimming, 670-760 MB with it; the run's
peak 1,270 MB without, 1,200 MB with (with the chunked training loss in both)."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


@functools.lru_cache(maxsize=1)
def _libc():
    """The C library when it has glibc's malloc_trim, else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
    except OSError:  # (a name of None opens the running program itself, which links the C library)
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def release_memory() -> None:
    """Collect garbage and return the allocator's free pages to the system (glibc only; elsewhere a no-op)."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
