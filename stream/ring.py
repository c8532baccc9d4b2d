"""A fixed-capacity ring of float32 samples: one writer (the audio callback), one reader."""
from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """``write`` copies a block in (no allocation); ``read`` returns everything unread.

    When the writer laps the reader, the oldest unread samples are overwritten and counted in
    ``overrun_samples`` -- never silently. The lock guards only two integers.
    """

    def __init__(self, capacity: int):
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, dtype=np.float32)
        self._written = 0  # total samples ever written
        self._read = 0  # total samples ever read (or skipped by overrun)
        self._lock = threading.Lock()
        self.overrun_samples = 0
        self.overruns = 0

    def write(self, block: np.ndarray) -> None:
        n = block.shape[0]
        if n > self.capacity:  # only the newest capacity samples can be kept
            block = block[-self.capacity:]
            skipped_in_block = n - self.capacity
            n = self.capacity
        else:
            skipped_in_block = 0
        start = (self._written + skipped_in_block) % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start:start + first] = block[:first]
        if first < n:
            self._buf[:n - first] = block[first:]
        with self._lock:
            self._written += n + skipped_in_block
            lost = self._written - self._read - self.capacity
            if lost > 0:
                self._read += lost
                self.overrun_samples += lost
                self.overruns += 1

    def read(self, max_samples: int | None = None) -> np.ndarray:
        """Copy out the unread samples (oldest first)."""
        with self._lock:
            start, end = self._read, self._written
            if max_samples is not None:
                end = min(end, start + max_samples)
            self._read = end
        n = end - start
        i = start % self.capacity
        if i + n <= self.capacity:
            return self._buf[i:i + n].copy()
        return np.concatenate([self._buf[i:], self._buf[: n - (self.capacity - i)]])

    @property
    def available(self) -> int:
        with self._lock:
            return self._written - self._read

    @property
    def total_written(self) -> int:
        return self._written
