"""What happens to model scores after the forest: smoothing across windows and label events.

Shared by offline ``predict`` and the live engine so both report the same timeline.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


class Smoother:
    """Causal smoothing of score vectors: moving average over ``n`` windows, or EMA.

    ``update(p)`` returns the smoothed scores including ``p``. ``n=1`` (default) is a no-op;
    ``alpha`` in (0, 1] switches to an exponential moving average ``s = a*p + (1-a)*s``.
    """

    def __init__(self, n: int = 1, alpha: float | None = None):
        if n < 1:
            raise ValueError("smoothing length must be >= 1")
        if alpha is not None and not 0 < alpha <= 1:
            raise ValueError("EMA alpha must be in (0, 1]")
        self.n, self.alpha = n, alpha
        self._recent: deque = deque(maxlen=n)
        self._sum = None
        self._ema = None

    def update(self, p) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        if self.alpha is not None:
            self._ema = p.copy() if self._ema is None else self.alpha * p + (1 - self.alpha) * self._ema
            return self._ema
        if len(self._recent) == self.n:
            self._sum -= self._recent[0]
        self._recent.append(p)
        self._sum = p.copy() if self._sum is None else self._sum + p
        if len(self._recent) == 1:
            self._sum = p.copy()
        return self._sum / len(self._recent)


@dataclass
class LabelEvent:
    label: str
    onset: float  # stream seconds
    offset: float | None = None  # None while still active


class Hysteresis:
    """Label events with hysteresis: a label starts after ``k_on`` consecutive windows with
    probability >= ``on``, and ends after ``k_off`` consecutive windows below ``off`` (or when
    another label starts). ``update(probs, t_start, t_end)`` returns the events that changed."""

    def __init__(self, labels, on: float = 0.6, off: float = 0.4, k_on: int = 2, k_off: int = 2):
        if not 0 <= off <= on <= 1:
            raise ValueError("need 0 <= off <= on <= 1")
        self.labels = list(labels)
        self.on, self.off, self.k_on, self.k_off = on, off, k_on, k_off
        self.active: LabelEvent | None = None
        self._candidate, self._count_on, self._count_off = None, 0, 0
        self._candidate_start = 0.0

    def update(self, probs, t_start: float, t_end: float) -> list[LabelEvent]:
        probs = np.asarray(probs)
        top = int(np.argmax(probs))
        label, p = self.labels[top], float(probs[top])
        changed = []
        if self.active is not None:
            p_active = float(probs[self.labels.index(self.active.label)])
            self._count_off = self._count_off + 1 if p_active < self.off else 0
            if self._count_off >= self.k_off:
                self.active.offset = t_end
                changed.append(self.active)
                self.active = None
                self._count_off = 0
        if p >= self.on and (self.active is None or label != self.active.label):
            if label == self._candidate:
                self._count_on += 1
            else:
                self._candidate, self._count_on, self._candidate_start = label, 1, t_start
            if self._count_on >= self.k_on:
                if self.active is not None:
                    self.active.offset = t_start
                    changed.append(self.active)
                self.active = LabelEvent(label, self._candidate_start)
                changed.append(self.active)
                self._candidate, self._count_on = None, 0
        else:
            self._candidate, self._count_on = None, 0
        return changed
