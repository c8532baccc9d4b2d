"""Process-wide memory settings for block-wise numpy work and for long-running streams.

Keep freed heap memory in the process for reuse (glibc), instead of returning it at once.

Frame analysis works in blocks whose numpy temporaries are ~0.5 MB each. With glibc's defaults
such blocks are mmapped, or the heap top is trimmed as they are freed, so every block
page-faults its memory in again (``AUDIOCLF_MALLOC_TUNING=0 python bench/features.py``: 1574
batched clips/s, 2367 without the variable). Raising the thresholds lets the process keep up
to ``TRIM_BYTES`` of freed heap. Other C libraries are left alone;
``AUDIOCLF_MALLOC_TUNING=0`` turns it off.

Collect Python's garbage less often in a streaming service (:func:`settle_gc`): see there.
"""
from __future__ import annotations

import ctypes
import gc
import os
import sys

MMAP_BYTES = 16 * 1024 * 1024  # allocations below this come from the heap
TRIM_BYTES = 16 * 1024 * 1024  # free heap kept before any is given back to the OS
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
YOUNG_GC_THRESHOLD = 20_000  # container allocations between young collections (CPython: 700)
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


def settle_gc() -> bool:
    """Once a streaming service has loaded its model: keep the cyclic garbage collector off
    what is loaded, and collect young objects less often. True if applied.

    A Kafka poll batch makes ~25 thousand short-lived containers (records, header lists,
    chunks: 37 young collections a batch) that outlive CPython's 700-allocation young
    collections, so they are promoted, and the promotions set off full collections over
    every loaded module's objects (~120 thousand): in ``bench/kafka.py`` 9-12% of the
    consumer's CPU, with the GIL held. Loaded objects are frozen (:func:`gc.freeze`: never
    scanned, so never collected -- modules and the model, which live as long as the process)
    and young collections wait for ``YOUNG_GC_THRESHOLD`` allocations, by when most of a batch
    has been freed by reference counting, which does not wait: 2-4% of the CPU. Garbage in
    reference cycles lives a little longer; nothing else changes. ``AUDIOCLF_GC_TUNING=0``
    turns it off. (``listen`` allocates too little to need it: one young collection in a
    minute of listening.)
    """
    if os.environ.get("AUDIOCLF_GC_TUNING") == "0":
        return False
    gc.collect()  # what is garbage now must not be frozen
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])
    return True
