"""Drift monitoring off the hot path: a thread compares recent windows with the model's baseline.

The engine thread only ``submit``s predictions into a bounded queue (drop-oldest when the
monitor is behind, counted). The monitor keeps a rolling window of recent feature vectors and
predicted labels and, every ``every`` windows, computes per-feature PSI, KS and standardised
mean shift against the training baseline, the share of drifted features (Evidently's
drift_share), the prediction-distribution PSI against training class frequencies, and the drop
in mean top-class confidence. :class:`DriftDetector` turns those into OK/WARN/DRIFT with
hysteresis.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from features.baseline import bin_index, ks_statistic, mean_shift, psi, psi_from_counts

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
                    confidences=None, bin_counts=None) -> dict:
    """Drift statistics of recent vectors ``X`` ``(n, n_features)`` against ``baseline``
    (``bin_counts``: their baseline-bin counts when the caller keeps them, else computed)."""
    names = baseline["names"]
    X = np.asarray(X)[:, : len(names)]  # float32 from the engine: converted where needed
    if bin_counts is None:
        p = psi(X, baseline["edges"], baseline["shares"])
    else:
        p = psi_from_counts(bin_counts, X.shape[0], baseline["shares"])
    shift = mean_shift(X, baseline["mean"].astype(np.float64), baseline["std"])
    share = float(np.mean(p > th.psi_drift))
    share_warn = float(np.mean(p > th.psi_warn))
    result = {"drift_share": share, "warn_share": share_warn, "n": int(X.shape[0])}
    top = np.argsort(p)[::-1][:5]
    ks = ks_statistic(X[:, top], baseline["quantiles"][top])  # KS for the named ones only
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
    if "class_freq" in baseline and labels_pred is not None:
        labs = baseline["labels"]
        counts = np.array([np.sum(np.asarray(labels_pred) == lab) for lab in labs], float)
        recent = np.maximum(counts / max(counts.sum(), 1), 1e-4)
        base = np.maximum(baseline["class_freq"].astype(np.float64), 1e-4)
        pred_psi = float(np.sum((recent - base) * np.log(recent / base)))
        result["prediction_psi"] = round(pred_psi, 3)
        if pred_psi > th.prediction_psi_drift and level == OK:
            level = WARN
    if confidences is not None and "confidence" in baseline:
        drop = float(baseline["confidence"] - np.mean(confidences))
        result["confidence_drop"] = round(drop, 3)
        if drop > th.confidence_drop:
            # on its own a confidence drop is a warning; with a drifted feature share as well,
            # two independent signals agree: the inputs moved *and* the model is unsure of them
            level = {OK: WARN, WARN: DRIFT}.get(level, level)
    result["level"] = level
    result["score"] = round(share, 3)
    return result


class DriftMonitor:
    """One monitor thread per running classifier; per-stream windows plus an aggregate."""

    # 480 windows = 2 min at a 0.25 s hop. Overlapping windows are strongly correlated: at 120
    # windows PSI noise alone pushed up to 46% of features past 0.25 on clean audio; at 480 the
    # worst clean share seen was 12% (bench/drift.py, README).
    def __init__(self, art, thresholds: DriftThresholds | None = None, window: int = 480,
                 every: int = 20, min_windows: int = 480, queue_size: int = 1000,
                 capture_dir: str | None = None, on_change=None):
        self.art = art
        self.baseline = art.baseline
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

    # -- hot path -------------------------------------------------------------------------
    def submit(self, pred) -> None:
        with self._cv:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1  # deque drops the oldest
            self._queue.append(pred)
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
            for pred in batch:
                self.process(pred)

    def process(self, pred) -> dict | None:
        """Add one prediction (synchronously; the thread calls this) and maybe evaluate."""
        st = self.streams.get(pred.stream_id)
        edges = self.baseline["edges"]
        if st is None:
            st = self.streams[pred.stream_id] = {
                "X": deque(maxlen=self.window), "labels": deque(maxlen=self.window),
                "conf": deque(maxlen=self.window), "since": 0, "span": [pred.start, pred.end],
                "detector": DriftDetector(self.th.k_enter, self.th.k_leave), "last": {},
                # baseline-bin counts of the windows held, updated as they come and go: PSI
                # then costs O(features x bins) per evaluation instead of a pass over them all
                "bins": deque(maxlen=self.window),
                "counts": np.zeros((edges.shape[0], edges.shape[1] + 1), np.int64)}
        tracks = np.arange(edges.shape[0])
        if len(st["bins"]) == self.window:
            st["counts"][tracks, st["bins"][0]] -= 1
        b = bin_index(pred.vector[: edges.shape[0]], edges).astype(np.uint8)
        st["counts"][tracks, b] += 1
        st["bins"].append(b)
        st["X"].append(pred.vector)
        st["labels"].append(pred.label)
        st["conf"].append(pred.probability if pred.probability is not None else np.nan)
        st["span"] = [pred.end - (len(st["X"]) - 1) * self.art.feature_config.window_hop_seconds
                      - self.art.feature_config.window_seconds, pred.end]
        st["since"] += 1
        if self.capture is not None and st["detector"].state != OK:
            self.capture.save(pred, st["detector"].state)
        if len(st["X"]) < self.min_windows or st["since"] < self.every:
            return None
        st["since"] = 0
        conf = None if self.art.labels is None else np.array(st["conf"])
        res = evaluate_window(np.stack(st["X"]), list(st["labels"]) if self.art.labels else None,
                              self.baseline, self.th, conf, bin_counts=st["counts"])
        before = st["detector"].state
        res["state"] = st["detector"].update(res["level"])
        res["stream_id"] = pred.stream_id
        res["window_span"] = [round(st["span"][0], 3), round(st["span"][1], 3)]
        st["last"] = res
        self.last = res
        self.evaluations += 1
        if res["state"] != before and self.on_change is not None:
            self.on_change(res)
        return res

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
        if self.capture is not None:
            d["captured"], d["capture_dropped"] = self.capture.saved, self.capture.dropped
        return d

    def status_text(self) -> str:
        d = self.status_dict()
        tops = ", ".join(f"{f['name']} (PSI {f['psi']})" for f in d["top_features"]) or "-"
        return (f"state {d['state']}  drift share {d['score']:.2f}  evaluations "
                f"{d['evaluations']}  dropped {d['dropped']}\ntop drifting: {tops}")
