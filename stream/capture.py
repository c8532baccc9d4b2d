"""Saving drifted windows for retraining: WAV + feature vector + prediction, with a manifest.

``manifest.csv`` has the columns ``audioclf train`` reads (``path``, ``label``); ``label`` is
left empty for a person to fill in -- training refuses rows without one. The folder is bounded:
past ``max_bytes`` the oldest windows are deleted (and counted).
"""
from __future__ import annotations

import csv
import datetime as dt
import os
import re
from collections import deque

import numpy as np

from features.audio import write_wav

COLUMNS = ["path", "label", "predicted", "probability", "stream_id", "start", "end",
           "drift_state", "captured_at", "features"]


class CaptureWriter:
    def __init__(self, folder: str, sr: int, max_bytes: int = 200 * 2 ** 20):
        self.folder, self.sr, self.max_bytes = folder, sr, max_bytes
        os.makedirs(folder, exist_ok=True)
        self.manifest = os.path.join(folder, "manifest.csv")
        self.rows: deque = deque()
        self.bytes = 0
        self.saved = self.dropped = 0
        if os.path.exists(self.manifest):  # continue an existing capture folder
            with open(self.manifest, newline="") as fh:
                for row in csv.DictReader(fh):
                    self.rows.append(row)
                    self.bytes += self._size(row)

    def save(self, pred, drift_state: str) -> str | None:
        if pred.audio is None:
            return None
        stem = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', pred.stream_id)}_{pred.start:011.3f}"
        wav, vec = stem + ".wav", stem + ".npy"
        write_wav(os.path.join(self.folder, wav), pred.audio, self.sr, subtype="FLOAT")
        np.save(os.path.join(self.folder, vec), pred.vector)
        row = {"path": wav, "label": "", "predicted": pred.label or pred.value,
               "probability": "" if pred.probability is None else f"{pred.probability:.4f}",
               "stream_id": pred.stream_id, "start": f"{pred.start:.3f}",
               "end": f"{pred.end:.3f}", "drift_state": drift_state,
               "captured_at": dt.datetime.now(dt.timezone.utc).isoformat(), "features": vec}
        self.rows.append(row)
        self.bytes += self._size(row)
        self.saved += 1
        while self.bytes > self.max_bytes and len(self.rows) > 1:
            old = self.rows.popleft()
            self.bytes -= self._size(old)
            for name in (old["path"], old["features"]):
                try:
                    os.remove(os.path.join(self.folder, name))
                except FileNotFoundError:
                    pass
            self.dropped += 1
        self._write_manifest()
        return os.path.join(self.folder, wav)

    def _size(self, row) -> int:
        total = 0
        for name in (row["path"], row.get("features") or ""):
            p = os.path.join(self.folder, name)
            if name and os.path.exists(p):
                total += os.path.getsize(p)
        return total

    def _write_manifest(self):
        tmp = self.manifest + ".tmp"
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.manifest)
