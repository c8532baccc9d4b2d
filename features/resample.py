"""Resampling a stream block by block to exactly the samples the offline path gives the file."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from .audio import resample_block, resample_inputs, resample_outputs, resample_taps


class StreamResampler:
    """Resample a stream ``from_sr -> to_sr`` block by block.

    Output sample ``m`` equals sample ``m`` of ``features.audio.resample`` over the whole
    stream (the filter training used, zero-phase, same alignment; to float32 rounding),
    however the input is split: train and serve see the same audio at any device or message
    rate. An output is emitted once every input it reads has arrived, which holds it back by
    half the filter, under 1 ms for common rates -- and until a whole block of outputs is
    ready, which one matrix product computes at a third of the cost (16 outputs, 1 ms, from
    48 kHz; a cycle of 160, 10 ms, from 44.1 kHz; ``delay_seconds``: the most an output
    waits). ``flush`` emits the last ones at the end of a stream.
    """

    def __init__(self, from_sr: int, to_sr: int, start: int = 0):
        """``start``: the first output to produce. 0 begins at the stream's start (zeros before
        it, as offline); later, the resampler joins a stream already under way, and its first
        input must be the stream's input sample :meth:`first_input` -- the earliest that output
        ``start`` reads -- so that every output equals the offline one."""
        ratio = Fraction(int(to_sr), int(from_sr))
        self.up, self.down = ratio.numerator, ratio.denominator
        self.identity = self.up == self.down == 1
        if self.identity:
            return
        taps, self._half = resample_taps(self.up, self.down)
        self._block = resample_block(self.up, self.down)  # outputs are emitted in whole blocks
        self.delay_seconds = self._half / self.up / from_sr + (self._block - 1) / to_sr
        # inputs later outputs still read (taps - 1, plus those of outputs held back for a
        # whole block); zeros before the stream starts
        self._hist = np.zeros(taps - 1 if start == 0 else 0, dtype=np.float32)
        # the stream's input index of the first sample fed, and the indexes reached
        self.start_input = 0 if start == 0 else self.first_input(start)
        self._in_total = self.start_input
        self._out_total = int(start)

    def first_input(self, out_index: int) -> int:
        """The earliest input sample that output ``out_index`` (or any later one) reads."""
        return out_index if self.identity else \
            resample_inputs(out_index, out_index + 1, self.up, self.down)[0]

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if self.identity:
            return x
        base = self._in_total - self._hist.shape[0]  # input index of the buffer's first sample
        self._in_total += x.shape[0]
        # the outputs whose newest input, (m*down + half) // up, has arrived
        ready = (self._in_total * self.up - 1 - self._half) // self.down + 1
        ready -= ready % self._block
        return self._emit(np.concatenate([self._hist, x]), base, ready)

    def flush(self) -> np.ndarray:
        """End of stream: the remaining outputs, reading zeros after the last input (as the
        offline path pads the end of a file)."""
        if self.identity:
            return np.zeros(0, np.float32)
        n_out = -(-self._in_total * self.up // self.down)
        if n_out <= self._out_total:
            return np.zeros(0, np.float32)
        base = self._in_total - self._hist.shape[0]
        _, hi = resample_inputs(self._out_total, n_out, self.up, self.down)
        tail = np.zeros(max(0, hi - self._in_total), np.float32)
        return self._emit(np.concatenate([self._hist, tail]), base, n_out)

    def _emit(self, buf: np.ndarray, base: int, ready: int) -> np.ndarray:
        """Outputs ``_out_total..ready-1`` from ``buf`` (input ``base`` onwards); keeps the
        inputs later outputs still read."""
        start = self._out_total
        y = np.zeros(0, np.float32)
        if ready > start:
            lo, _ = resample_inputs(start, ready, self.up, self.down)
            y = resample_outputs(buf[lo - base:], lo, start, ready, self.up, self.down)
            self._out_total = ready
        keep_from, _ = resample_inputs(self._out_total, self._out_total + 1, self.up, self.down)
        self._hist = buf[keep_from - base:self._in_total - base].copy()
        return y
