"""The C allocator, set for training (memory freed by one mini-batch is kept for the next) and
for scoring on threads (one arena for them all).

A training step allocates and frees the same few arrays every batch: a 512 x 256 float32
activation is 512 KB, an epoch's gathered rows a few MB. glibc's ``malloc`` serves such sizes from
its heap, but by default gives the heap's free top back to the kernel once it passes a threshold
that adapts to the largest block freed so far (twice it, here about 1 MB), so the next batch maps
the same pages again, each with a page fault and a page of zeroing. ``mallopt`` fixes both
thresholds instead: blocks under 32 MB come from the heap, and up to 128 MB of free heap stays
mapped. Measured on this project's 2-core machine, PyTorch twin, one epoch on the real file: the
epoch's row gather took 20 ms of page faults instead of 1.6 ms, element-wise operators on 512 x 256
activations 30-60 us instead of 12-22 us, and epochs varied 0.24-0.36 s between processes instead
of 0.25-0.28 s. PyTorch's CPU tuning guide makes the same point by recommending jemalloc or
tcmalloc; this is the same effect with the allocator already loaded.

For in-memory training the memory kept is memory the process has used at its peak already: the
twins' peak resident memory stayed within 2 MB. Streamed training is another matter. It frees
large blocks of features and chunks, and keeping them raised the peak of a streamed 10^7-row run
from 535 to 678 MB (637 MB with thresholds of 8 and 32 MB), for no time gained, so streamed
training leaves glibc's defaults alone. Other C libraries (musl) and other systems are left as
they are.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
HEAP_BLOCK_LIMIT = 32 << 20  # bytes: larger blocks are mapped on their own and unmapped when freed
KEEP_FREE = 128 << 20  # bytes of free heap top kept mapped


def keep_freed_memory() -> bool:
    """Fix glibc's heap thresholds for this process (see the module doc); returns whether they were
    set (False without glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    mapped = libc.mallopt(M_MMAP_THRESHOLD, HEAP_BLOCK_LIMIT)  # 1 on success, 0 on a refused value
    trimmed = libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREE)
    return bool(mapped and trimmed)


def _glibc():
    """The loaded C library when it is glibc on Linux, else None (musl's mallopt does nothing)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)  # the symbols of the C library this process has loaded
    return libc if hasattr(libc, "gnu_get_libc_version") else None


def one_arena() -> bool:
    """Let every thread allocate from glibc's one main arena (returns whether it was set). By
    default each new thread that allocates gets an arena of its own, whose freed blocks it keeps:
    the reasons' member threads (:func:`noshow.clinic.reasons.reason_sizes`) raised a streamed
    10^6-row predict's peak from about 600 to 770 MB that way, for no time gained (36-38 s either
    way). Their allocations are a few large arrays per block, so sharing one arena's lock costs
    nothing measurable. Call it before the threads start; it is process-wide and idempotent."""
    libc = _glibc()
    return bool(libc and libc.mallopt(M_ARENA_MAX, 1))
