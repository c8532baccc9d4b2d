"""Stateful polyphase resampling for streams: block edges leave no clicks."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from features.audio import lowpass_fir


class StreamResampler:
    """Resample a stream ``from_sr -> to_sr`` block by block with one windowed-sinc FIR.

    Output equals filtering the concatenated input (the history needed by the filter is kept
    between calls), so splitting the input differently gives the same samples. Causal: the
    output lags by the filter's group delay (``delay_seconds``).
    """

    def __init__(self, from_sr: int, to_sr: int, taps_per_phase: int = 24):
        ratio = Fraction(int(to_sr), int(from_sr))
        self.up, self.down = ratio.numerator, ratio.denominator
        self.identity = self.up == self.down == 1
        if self.identity:
            return
        n_taps = taps_per_phase * self.up
        if n_taps % 2 == 0:
            n_taps += 1
        h = lowpass_fir(n_taps, 1.0 / max(self.up, self.down), beta=8.0) * self.up
        self.K = -(-n_taps // self.up)  # input samples per output sample
        h = np.pad(h, (0, self.K * self.up - n_taps))
        # weights[phase, j] multiplies x[i_max - j] for outputs whose upsampled index has `phase`
        self.weights = np.stack([h[p::self.up][: self.K] for p in range(self.up)])
        self.delay_seconds = (n_taps - 1) / 2 / (self.up * from_sr)
        self._hist = np.zeros(self.K - 1, dtype=np.float64)
        self._in_total = 0  # input samples consumed
        self._out_total = 0  # output samples produced

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if self.identity:
            return x
        buf = np.concatenate([self._hist, x])  # buf[k] is input index (in_total-K+1+k)
        n_in = self._in_total + x.shape[0]
        # outputs m whose newest input index floor(m*down/up) is already available
        m_end = (n_in * self.up + self.down - 1) // self.down
        m = np.arange(self._out_total, m_end)
        upsampled = m * self.down
        i_max = upsampled // self.up
        phase = upsampled % self.up
        local = i_max - (self._in_total - (self.K - 1))  # index into buf
        idx = local[:, None] - np.arange(self.K)[None, :]
        y = np.einsum("nk,nk->n", buf[idx], self.weights[phase])
        self._out_total = m_end
        self._in_total = n_in
        self._hist = buf[-(self.K - 1):] if self.K > 1 else buf[:0]
        return y.astype(np.float32)
