"""Keep freed heap memory in the process for reuse (glibc), instead of returning it at once.

Frame analysis works in blocks whose numpy temporaries are ~0.5 MB each. With glibc's defaults
such blocks are mmapped, or the heap top is trimmed as they are freed, so every block
page-faults its memory in again (``AUDIOCLF_MALLOC_TUNING=0 python bench/features.py``: 1574
batched clips/s, 2367 without the variable). Raising the thresholds lets the process keep up
to ``TRIM_BYTES`` of freed heap. Other C libraries are left alone;
``AUDIOCLF_MALLOC_TUNING=0`` turns it off.
"""
from __future__ import annotations

import ctypes
import os
import sys

MMAP_BYTES = 16 * 1024 * 1024  # allocations below this come from the heap
TRIM_BYTES = 16 * 1024 * 1024  # free heap kept before any is given back to the OS
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_done = False


def keep_freed_memory() -> bool:
    """Tune glibc's allocator for block-wise numpy work, once per process; True if applied."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("AUDIOCLF_MALLOC_TUNING") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries: nothing to tune
        return False
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES))
    return _done
