"""A fixed-capacity ring of float32 samples: one writer (the audio callback), one reader."""
from __future__ import annotations

import threading
from collections import deque

import numpy as np


class RingBuffer:
    """``write`` copies a block in (no allocation); ``read`` returns everything unread.

    When the writer laps the reader, the oldest unread samples are overwritten and counted in
    ``overrun_samples`` -- never silently. The lock guards only a few integers.

    Stream positions: every read is contiguous audio, and ``last_index`` is the stream index of
    its first sample -- the samples written before it, plus those the writer reported lost
    upstream (``mark_gap``: a device overflow) and those overwritten here. A read stops at a
    reported gap, so a reader that compares ``last_index`` with the end of the previous read
    sees every discontinuity.
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
        # (ring position, samples lost upstream before it, in total): where the offset changes
        self._gaps = deque([(0, 0)])
        self.last_index = 0  # stream index of the first sample of the last read

    def mark_gap(self, n: int) -> None:
        """(writer) ``n`` samples were lost before the next one written (a device overflow)."""
        if n > 0:
            with self._lock:
                self._gaps.append((self._written, self._gaps[-1][1] + int(n)))

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
        """Copy out the unread samples (oldest first), up to the next reported gap."""
        with self._lock:
            start, end = self._read, self._written
            if max_samples is not None:
                end = min(end, start + max_samples)
            gaps = self._gaps
            while len(gaps) > 1 and gaps[1][0] <= start:
                gaps.popleft()
            if len(gaps) > 1:
                end = min(end, gaps[1][0])
            self.last_index = start + gaps[0][1]
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
