"""The allocator setting for training: a batch's freed arrays are reused, not mapped afresh.

Each case runs in a fresh interpreter with glibc's default settings, so the page faults counted
are that interpreter's alone.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Three 512 x 256 float32 arrays per step, as a hidden layer's forward and backward make them;
# prints the minor page faults of 100 steps after a warm-up.
STEPS = """
import resource, sys
import numpy as np
if {keep}:
    from noshow.allocator import keep_freed_memory
    assert keep_freed_memory()
def step():
    a = np.ones((512, 256), np.float32)
    b = np.ones((512, 256), np.float32)
    c = a * b
for _ in range(10):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (AttributeError, ValueError, OSError):
        return False


glibc = pytest.mark.skipif(not _glibc(), reason="needs glibc's mallopt")


def page_faults(keep: bool) -> int:
    # glibc's defaults, whatever this environment sets for its allocator.
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "LD_PRELOAD") and not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", STEPS.format(keep=keep)], capture_output=True, text=True, check=True,
                          env=env)
    return int(done.stdout)


@glibc
def test_repeated_batches_fault_pages_in_again_by_default():
    # glibc's adaptive threshold hands the freed heap top back, so every step maps its pages again:
    # about 128 faults per 512 KB array.
    assert page_faults(keep=False) > 100 * 128


@glibc
def test_kept_freed_memory_serves_repeated_batches_without_page_faults():
    assert page_faults(keep=True) < 100
