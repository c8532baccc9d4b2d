"""Saving drifted windows for retraining: WAV + feature vector + prediction, with a manifest.

``manifest.csv`` has the columns ``audioclf train`` reads (``path``, ``label``, ``group``);
``label`` is left empty for a person to fill in -- training refuses rows without one. Windows
overlap (a 1 s window every 0.25 s), so a run of captured windows that share samples is one
``group``: cross-validation keeps it on one side of every split, and validation does not score
audio the model was trained on. The folder is bounded: past ``max_bytes`` the oldest windows
are deleted (and counted).
"""
from __future__ import annotations

import csv
import datetime as dt
import os
import re
from collections import deque

import numpy as np

from features.audio import write_wav

COLUMNS = ["path", "label", "group", "predicted", "probability", "stream_id", "start", "end",
           "drift_state", "captured_at", "features"]


class CaptureFolderError(ValueError):
    """A capture folder that cannot be continued; one line for the user."""


class CaptureWriter:
    def __init__(self, folder: str, sr: int, max_bytes: int = 200 * 2 ** 20):
        self.folder, self.sr, self.max_bytes = folder, sr, max_bytes
        os.makedirs(folder, exist_ok=True)
        self.manifest = os.path.join(folder, "manifest.csv")
        self.rows: deque = deque()
        self.bytes = 0
        self.saved = self.dropped = self.failed = 0
        self.last_error = None  # of the latest failed save
        # stream id -> (end of its last captured window, that window's group), this session
        # only: stream time starts again at 0 in a new process
        self._runs: dict = {}
        self.columns = list(COLUMNS)
        if os.path.exists(self.manifest):  # continue an existing capture folder
            # perhaps edited in a spreadsheet meanwhile: a BOM, columns of the user's own
            try:
                with open(self.manifest, newline="", encoding="utf-8-sig") as fh:
                    reader = csv.DictReader(fh)
                    self.columns += [c for c in reader.fieldnames or [] if c not in COLUMNS]
                    for row in reader:
                        self.rows.append(row)
                        self.bytes += self._size(row)
            except (UnicodeDecodeError, csv.Error) as exc:  # before any capture overwrites it
                raise CaptureFolderError(f"{self.manifest}: not a readable capture manifest "
                                         f"({exc}); fix it or choose another --capture-dir"
                                         ) from None

    def save(self, pred, drift_state: str) -> str | None:
        if pred.audio is None:
            return None
        stem = self._free_stem(f"{re.sub(r'[^A-Za-z0-9_.-]', '_', pred.stream_id)}_"
                               f"{pred.start:011.3f}")
        wav, vec = stem + ".wav", stem + ".npy"
        try:
            write_wav(os.path.join(self.folder, wav), pred.audio, self.sr, subtype="FLOAT")
            np.save(os.path.join(self.folder, vec), pred.vector)
        except Exception as exc:  # noqa: BLE001 -- capture is best effort: monitoring goes on
            self._failed(f"{os.path.join(self.folder, wav)}: {exc}", wav, vec)
            return None
        row = {"path": wav, "label": "", "group": self._group(pred, stem),
               "predicted": pred.label or pred.value,
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
            for name in (old.get("path"), old.get("features")):
                if not name:
                    continue
                try:
                    os.remove(os.path.join(self.folder, name))
                except FileNotFoundError:
                    pass
            self.dropped += 1
        try:
            self._write_manifest()
        except OSError as exc:  # the row stays; the next save writes the manifest again
            self._failed(f"{self.manifest}: {exc}")
        return os.path.join(self.folder, wav)

    def _failed(self, error: str, *partial: str) -> None:
        """Count a failed save (disk full, folder removed...) and drop what it half wrote."""
        self.failed += 1
        self.last_error = " ".join(error.split())
        for name in partial:
            try:
                os.remove(os.path.join(self.folder, name))
            except OSError:
                pass

    def _free_stem(self, stem: str) -> str:
        """``stem``, or ``stem-2``, ``stem-3``...: a later session into the same folder starts
        its stream time at 0 again and must not overwrite windows a row still names."""
        taken = {os.path.splitext(r.get("path") or "")[0] for r in self.rows}
        candidate, k = stem, 1
        while candidate in taken or os.path.exists(os.path.join(self.folder, candidate + ".wav")):
            k += 1
            candidate = f"{stem}-{k}"
        return candidate

    def _group(self, pred, stem: str) -> str:
        """The window's run, named after its first window: it continues the stream's previous
        run if the two windows share samples."""
        last = self._runs.get(pred.stream_id)
        group = last[1] if last is not None and pred.start < last[0] else stem
        self._runs[pred.stream_id] = (pred.end, group)
        return group

    def _size(self, row) -> int:
        total = 0
        for name in (row.get("path") or "", row.get("features") or ""):
            p = os.path.join(self.folder, name)
            if name and os.path.exists(p):
                total += os.path.getsize(p)
        return total

    def _write_manifest(self):
        tmp = self.manifest + ".tmp"
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns)
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.manifest)
