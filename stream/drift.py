"""Drift monitoring off the hot path: a thread compares recent windows with the model's baseline.

The engine thread only ``submit``s predictions into a bounded queue (drop-oldest when the
monitor is behind, counted). Per stream it keeps a bounded summary of the recent windows
(:class:`StreamHistory`: exponentially weighted baseline-bin shares and mean, the last
predicted classes and confidences) and, every ``every`` windows, computes per-feature PSI, KS
and standardised mean shift against the training baseline, the share of drifted features
(Evidently's drift_share), the prediction-distribution PSI against training class frequencies,
and the drop in mean top-class confidence. :class:`DriftDetector` turns those into
OK/WARN/DRIFT with hysteresis.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from features.baseline import (bin_counts, bin_index, bin_totals, class_counts,
                               ks_from_counts, ks_statistic, psi_from_counts,
                               standardised_shift)

OK, WARN, DRIFT = "OK", "WARN", "DRIFT"
_RANK = {OK: 0, WARN: 1, DRIFT: 2}


@dataclass
class DriftThresholds:
    psi_warn: float = 0.1  # per feature: moderate shift
    psi_drift: float = 0.25  # per feature: major shift
    share_warn: float = 0.15  # share of features beyond psi_drift -> WARN
    share_drift: float = 0.3  # -> DRIFT
    prediction_psi_drift: float = 0.5  # predicted-class mix vs training frequencies
    confidence_drop: float = 0.25  # mean top-class probability below baseline by this much
    level_shift_sd: float = 2.0  # input level (level_dbfs) mean moved this many training sds
    level_psi_drift: float = 1.0  # ... or its PSI this high (clean audio peaked at 0.34)
    k_enter: int = 2  # consecutive evaluations to raise the state
    k_leave: int = 5  # consecutive evaluations to lower it


def drift_thresholds(overrides: dict | None) -> DriftThresholds:
    """:class:`DriftThresholds` with ``overrides`` (name -> number) applied; raises ValueError
    naming what is wrong (an unknown name, a bad value, a warn level above its drift level)."""
    from dataclasses import fields, replace

    base = DriftThresholds()
    if not overrides:
        return base
    names = [f.name for f in fields(DriftThresholds)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValueError(f"unknown threshold(s) {', '.join(unknown)} (known: {', '.join(names)})")
    values = {}
    for name, value in overrides.items():
        if name in ("k_enter", "k_leave"):
            if value != int(value) or value < 1:
                raise ValueError(f"{name}={value:g}: need a whole number of evaluations >= 1")
            value = int(value)
        elif not 0 < value < float("inf"):
            raise ValueError(f"{name}={value:g}: need a number > 0")
        values[name] = value
    th = replace(base, **values)
    for warn, drift in (("psi_warn", "psi_drift"), ("share_warn", "share_drift")):
        if getattr(th, warn) > getattr(th, drift):
            raise ValueError(f"{warn}={getattr(th, warn):g} is above {drift}="
                             f"{getattr(th, drift):g}")
    return th


class DriftDetector:
    """``update(level)`` with the raw level of one evaluation, then read ``state``.

    A tiny state machine: moving up needs ``k_enter`` consecutive evaluations at or above the
    new level, moving down needs ``k_leave`` consecutive evaluations below the current one.
    """

    def __init__(self, k_enter: int = 3, k_leave: int = 5):
        self.k_enter, self.k_leave = k_enter, k_leave
        self.state = OK
        self._up = self._down = 0
        self._up_level = self._down_level = OK

    @property
    def drift_detected(self) -> bool:
        return self.state == DRIFT

    def update(self, level: str) -> str:
        if level == self.state:
            self._up = self._down = 0
        elif _RANK[level] > _RANK[self.state]:
            self._down = 0
            self._up += 1
            # enter the lowest level seen during the run (WARN, WARN, DRIFT -> WARN)
            self._up_level = level if self._up == 1 else min(self._up_level, level, key=_RANK.get)
            if self._up >= self.k_enter:
                self.state, self._up = self._up_level, 0
        else:
            self._up = 0
            self._down += 1
            self._down_level = level if self._down == 1 else max(self._down_level, level,
                                                                  key=_RANK.get)
            if self._down >= self.k_leave:
                self.state, self._down = self._down_level, 0
        return self.state


def evaluate_window(X: np.ndarray, labels_pred, baseline: dict, th: DriftThresholds,
                    confidences=None) -> dict:
    """Drift statistics of recent vectors ``X`` ``(n, n_features)`` against ``baseline``
    (``drift-report``; the monitor keeps the same summaries window by window)."""
    names = baseline["names"]
    X = np.asarray(X)[:, : len(names)]  # float32 from the engine: converted where needed
    counts_c = None
    if "class_freq" in baseline and labels_pred is not None:
        counts_c = class_counts(labels_pred, baseline["labels"])
    result = evaluate_summary(
        bin_counts(X, baseline["edges"]), X.mean(axis=0, dtype=np.float64), counts_c,
        None if confidences is None else float(np.mean(confidences)), baseline, th)
    # with the values at hand, KS at the baseline's full quantile resolution
    top = [names.index(f["name"]) for f in result["top_features"]]
    for f, k in zip(result["top_features"], ks_statistic(X[:, top], baseline["quantiles"][top])):
        f["ks"] = round(float(k), 3)
    return result


def evaluate_summary(counts: np.ndarray, mean: np.ndarray, predicted_counts, mean_confidence,
                     baseline: dict, th: DriftThresholds) -> dict:
    """Drift level of recent windows from their summaries: baseline-bin counts per feature
    ``(n_features, n_bins)``, mean vector, predicted-class counts (or None) and mean top-class
    confidence (or None)."""
    names = baseline["names"]
    n = int(round(counts[0].sum()))
    p = psi_from_counts(counts, n, baseline["shares"])
    shift = standardised_shift(mean, baseline["mean"].astype(np.float64), baseline["std"])
    share = float(np.mean(p > th.psi_drift))
    share_warn = float(np.mean(p > th.psi_warn))
    result = {"drift_share": share, "warn_share": share_warn, "n": n}
    top = np.argsort(p)[::-1][:5]
    ks = ks_from_counts(counts[top], baseline["shares"][top])
    result["top_features"] = [{"name": names[j], "psi": round(float(p[j]), 3),
                               "ks": round(float(k), 3), "shift_sd": round(float(shift[j]), 2)}
                              for j, k in zip(top, ks)]
    level = OK
    if share >= th.share_drift:
        level = DRIFT
    elif share >= th.share_warn:
        level = WARN
    if "level_dbfs" in names:
        # loudness-normalised features do not see a gain change; the input level does
        j = names.index("level_dbfs")
        result["level_shift_sd"] = round(float(shift[j]), 2)
        result["level_psi"] = round(float(p[j]), 3)
        if shift[j] >= th.level_shift_sd or p[j] >= th.level_psi_drift:
            level = DRIFT
    if "class_freq" in baseline and predicted_counts is not None:
        counts_c = np.asarray(predicted_counts, dtype=np.float64)
        recent = np.maximum(counts_c / max(counts_c.sum(), 1), 1e-4)
        base = np.maximum(baseline["class_freq"].astype(np.float64), 1e-4)
        pred_psi = float(np.sum((recent - base) * np.log(recent / base)))
        result["prediction_psi"] = round(pred_psi, 3)
        if pred_psi > th.prediction_psi_drift and level == OK:
            level = WARN
    if mean_confidence is not None and "confidence" in baseline:
        drop = float(baseline["confidence"] - mean_confidence)
        result["confidence_drop"] = round(drop, 3)
        if drop > th.confidence_drop:
            # on its own a confidence drop is a warning; with a drifted feature share as well,
            # two independent signals agree: the inputs moved *and* the model is unsure of them
            level = {OK: WARN, WARN: DRIFT}.get(level, level)
    result["level"] = level
    result["score"] = round(share, 3)
    return result


class StreamHistory:
    """One stream's recent windows as the drift statistics need them, in ~24 KB (428 features):
    per feature the shares of the baseline bins, and the mean vector -- both plain averages
    while the first ``size`` windows arrive, then exponential (alpha = 2 / (size + 1), the
    centre of mass of a ``size``-window moving average, and the same sampling noise) -- plus
    the last ``size`` predicted classes and confidences.

    Exponential shares need no record of each window to take it out again: keeping the bins of
    480 windows (4 bits per feature) cost 103 KB per stream, 5x everything else a stream holds.
    """

    def __init__(self, n_tracks: int, n_bins: int, size: int, n_classes: int = 0):
        self.size, self.n, self.pos = size, 0, 0
        self.n_tracks = n_tracks
        self.shares = np.zeros((n_tracks, n_bins), np.float32)
        self.mean = np.zeros(n_tracks)
        self.classes = np.full(size, -1, np.int16)
        self.class_counts = np.zeros(n_classes, np.int64)
        self.conf = np.full(size, np.nan, np.float32)

    def add_many(self, bins: np.ndarray, vectors: np.ndarray, classes, confs) -> None:
        """Add windows in order: bins and vectors ``(m, n_tracks)``, classes (-1: none) and
        confidences (NaN: none). The averages take all ``m`` in one step (closed form)."""
        held = self.n
        for cls, conf in zip(classes, confs):
            if held == self.size and self.classes[self.pos] >= 0:  # the oldest class leaves
                self.class_counts[self.classes[self.pos]] -= 1
            held = min(held + 1, self.size)
            self.classes[self.pos], self.conf[self.pos] = cls, conf
            if cls >= 0:
                self.class_counts[cls] += 1
            self.pos = (self.pos + 1) % self.size
        vectors = np.asarray(vectors, dtype=np.float64)
        filling = min(len(vectors), self.size - self.n)
        if filling:  # plain averages: n windows so far, `filling` more
            n = self.n + filling
            self._fold(bins[:filling], np.full(filling, 1.0 / n), self.n / n)
            self.mean = (self.mean * self.n + vectors[:filling].sum(axis=0)) / n
            self.n = n
        rest = len(vectors) - filling
        if rest:  # exponential: the k-th newest of them weighs alpha * (1 - alpha)**k
            alpha = 2.0 / (self.size + 1)
            weights = alpha * (1 - alpha) ** np.arange(rest - 1, -1, -1)
            decay = (1 - alpha) ** rest
            self._fold(bins[filling:], weights, decay)
            self.mean = self.mean * decay + weights @ vectors[filling:]

    def _fold(self, bins: np.ndarray, weights: np.ndarray, decay: float) -> None:
        """``shares = decay * shares + sum_j weights[j] * onehot(bins[j])``, in place."""
        self.shares *= np.float32(decay)
        if len(bins) == 1:  # the common case off a quiet queue: no (n_tracks, n_bins) temporary
            self.shares[_arange(self.n_tracks), bins[0]] += np.float32(weights[0])
            return
        self.shares += bin_totals(bins, self.shares.shape[1], weights)

    @property
    def counts(self) -> np.ndarray:
        """Bin shares scaled to the windows they summarise, ``(n_tracks, n_bins)`` float64."""
        return self.shares.astype(np.float64) * self.n

    def mean_confidence(self) -> float | None:
        held = self.conf[~np.isnan(self.conf)]
        return float(held.mean()) if held.size else None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.shares, self.mean, self.classes, self.class_counts,
                                      self.conf))


@lru_cache(maxsize=8)
def _arange(n: int) -> np.ndarray:
    out = np.arange(n)
    out.flags.writeable = False  # shared by every stream's history
    return out


# windows before a stream's first evaluation: fewer and PSI is mostly sampling noise
MIN_WINDOWS = 480


class DriftMonitor:
    """One monitor thread per running classifier; per-stream windows plus an aggregate."""

    # 480 windows = 2 min at a 0.25 s hop. Overlapping windows are strongly correlated: at 120
    # windows PSI noise alone pushed up to 46% of features past 0.25 on clean audio; at 480 the
    # worst clean share seen was 12% (bench/drift.py, README).
    def __init__(self, art, thresholds: DriftThresholds | None = None, window: int = 480,
                 every: int = 20, min_windows: int = MIN_WINDOWS, queue_size: int = 1000,
                 capture_dir: str | None = None, on_change=None):
        self.art = art
        self.baseline = art.baseline
        # the baseline's classes, when the model is a classifier (prediction-mix drift)
        self.labels = self.baseline.get("labels") if art.labels is not None else None
        self.th = thresholds or DriftThresholds()
        self.window, self.every, self.min_windows = window, every, min_windows
        self.capture = None
        if capture_dir:
            from .capture import CaptureWriter
            self.capture = CaptureWriter(capture_dir, art.feature_config.sr)
        self.on_change = on_change
        self._queue: deque = deque(maxlen=queue_size)
        self.dropped = 0
        self._cv = threading.Condition()
        self._stop = False
        self._thread = None
        self.streams: dict[str, dict] = {}
        self.evaluations = 0
        self.last: dict = {}
        self.errors, self.last_error = 0, None  # batches the thread failed to process

    # -- hot path -------------------------------------------------------------------------
    def submit(self, pred) -> None:
        self.submit_many([pred])

    def submit_many(self, preds) -> None:
        """Queue predictions; one wake-up for all, so the thread folds them in as a batch."""
        with self._cv:
            self.dropped += max(0, len(self._queue) + len(preds) - self._queue.maxlen)
            self._queue.extend(preds)  # the deque drops the oldest
            self._cv.notify()

    # -- monitor thread -------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._run, name="drift-monitor", daemon=True)
        self._thread.start()

    def stop(self):
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self):
        while True:
            with self._cv:
                while not self._queue and not self._stop:
                    self._cv.wait(timeout=0.5)
                if self._stop and not self._queue:
                    return
                batch = list(self._queue)
                self._queue.clear()
            try:
                self.process_many(batch)
            except Exception as exc:  # noqa: BLE001 -- a service must not lose its monitor
                self.errors += 1  # reported by status_dict; the batch is lost, not the thread
                self.last_error = f"{type(exc).__name__}: {exc}"

    def process(self, pred) -> dict | None:
        """Add one prediction (synchronously) and maybe evaluate; the evaluation or None."""
        results = self.process_many([pred])
        return results[-1] if results else None

    def process_many(self, preds) -> list[dict]:
        """Add predictions (synchronously; the thread calls this with what it dequeued).

        The same as one by one, but binned all at once, and each stream's run of windows up to
        its next evaluation folded into its history in one step. Returns the evaluations.
        """
        if not preds:
            return []
        edges = self.baseline["edges"]
        n_tracks = edges.shape[0]
        vectors = np.stack([p.vector[:n_tracks] for p in preds])
        bins = bin_index(vectors, edges)
        mine: dict[str, list[int]] = {}
        for i, p in enumerate(preds):
            mine.setdefault(p.stream_id, []).append(i)
        results = []
        for stream_id, idx in mine.items():
            st = self._stream(stream_id)
            done = 0
            while done < len(idx):
                # windows until this stream's next evaluation is due (or all there are)
                hist = st["history"]
                due = max(self.every - st["since"], self.min_windows - hist.n, 1)
                part = idx[done:done + due]
                done += len(part)
                res = self._add(st, [preds[i] for i in part], bins[part], vectors[part])
                if res is not None:
                    results.append(res)
        return results

    def _stream(self, stream_id: str) -> dict:
        st = self.streams.get(stream_id)
        if st is None:
            edges = self.baseline["edges"]
            st = self.streams[stream_id] = {
                "history": StreamHistory(edges.shape[0], edges.shape[1] + 1, self.window,
                                         len(self.labels or ())),
                "since": 0, "detector": DriftDetector(self.th.k_enter, self.th.k_leave),
                "last": {}}
        return st

    def _add(self, st: dict, preds: list, bins: np.ndarray, vectors: np.ndarray
             ) -> dict | None:
        """Add consecutive predictions of one stream (no evaluation due before the last)."""
        hist = st["history"]
        labels = self.labels
        classes = [labels.index(p.label) if labels and p.label in labels else -1 for p in preds]
        confs = [np.nan if p.probability is None else p.probability for p in preds]
        hist.add_many(bins, vectors, classes, confs)
        cfg = self.art.feature_config
        last = preds[-1]
        st["span"] = [last.end - (hist.n - 1) * cfg.window_hop_seconds - cfg.window_seconds,
                      last.end]
        st["since"] += len(preds)
        if self.capture is not None and st["detector"].state != OK:
            for p in preds:
                self.capture.save(p, st["detector"].state)
        if hist.n < self.min_windows or st["since"] < self.every:
            return None
        st["since"] = 0
        res = evaluate_summary(hist.counts, hist.mean, hist.class_counts if labels else None,
                               hist.mean_confidence() if self.art.labels is not None else None,
                               self.baseline, self.th)
        before = st["detector"].state
        res["state"] = st["detector"].update(res["level"])
        res["stream_id"] = last.stream_id
        res["window_span"] = [round(st["span"][0], 3), round(st["span"][1], 3)]
        st["last"] = res
        self.last = res
        self.evaluations += 1
        if res["state"] != before and self.on_change is not None:
            self.on_change(res)
        return res

    def forget(self, stream_id: str) -> None:
        """Drop a stream's history (the caller evicted or handed the stream over)."""
        self.streams.pop(stream_id, None)

    @property
    def nbytes(self) -> int:
        return sum(st["history"].nbytes for st in list(self.streams.values()))

    # -- reporting ------------------------------------------------------------------------
    def state(self, stream_id: str | None = None) -> str:
        if stream_id is not None:
            st = self.streams.get(stream_id)
            return st["detector"].state if st else OK
        states = [st["detector"].state for st in self.streams.values()] or [OK]
        return max(states, key=_RANK.get)

    def status_dict(self) -> dict:
        d = {"state": self.state(), "score": self.last.get("score", 0.0),
             "evaluations": self.evaluations, "dropped": self.dropped,
             "top_features": self.last.get("top_features", [])[:3]}
        if not self.evaluations:  # "OK" means nothing yet: say how long until it does
            seen = max((st["history"].n for st in list(self.streams.values())), default=0)
            d["windows_to_first_evaluation"] = max(1, self.min_windows - seen)
        if self.errors:
            d["errors"], d["last_error"] = self.errors, self.last_error
        if self.capture is not None:
            d["captured"], d["capture_dropped"] = self.capture.saved, self.capture.dropped
            if self.capture.failed:
                d["capture_failed"] = self.capture.failed
                d["capture_error"] = self.capture.last_error
        return d

    def status_text(self) -> str:
        d = self.status_dict()
        tops = ", ".join(f"{f['name']} (PSI {f['psi']})" for f in d["top_features"]) or "-"
        if "windows_to_first_evaluation" in d:
            hop = self.art.feature_config.window_hop_seconds
            left = d["windows_to_first_evaluation"]
            text = (f"not evaluated yet: the first evaluation needs {self.min_windows} windows "
                    f"of one stream ({self.min_windows * hop:.0f} s); {left} to go "
                    f"(~{left * hop:.0f} s)  dropped {d['dropped']}")
        else:
            text = (f"state {d['state']}  drift share {d['score']:.2f}  evaluations "
                    f"{d['evaluations']}  dropped {d['dropped']}\ntop drifting: {tops}")
        if d.get("errors"):
            text += f"\nmonitor errors {d['errors']}x: {d['last_error']}"
        if d.get("capture_failed"):
            text += f"\ncapture failed {d['capture_failed']}x: {d['capture_error']}"
        return text
