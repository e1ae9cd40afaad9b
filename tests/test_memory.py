import os

import pytest
import torch

from prunelab.memory import _libc, release_memory


def resident_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) / 1024


@pytest.mark.skipif(_libc() is None, reason="needs glibc's malloc_trim")
def test_freed_tensor_memory_goes_back_to_the_system():
    keep = [torch.ones(25_000) for _ in range(2_000)]  # 100 kB each: below glibc's mmap threshold, on the heap
    keep.append(torch.ones(10))  # a live allocation after them, so the heap's top cannot simply shrink
    del keep[:-1]
    held = resident_mb()
    release_memory()
    assert resident_mb() < held - 100  # about 200 MB were freed
