"""Saving drifted windows for retraining: WAV + feature vector + prediction, with a manifest.

``manifest.csv`` has the columns ``audioclf train`` reads (``path``, ``label``, ``group``);
``label`` is left empty for a person to fill in -- training refuses rows without one. Windows
overlap (a 1 s window every 0.25 s), so a run of captured windows that share samples is one
``group``: cross-validation keeps it on one side of every split, and validation does not score
audio the model was trained on. The folder is bounded: past ``max_bytes`` the oldest windows
are deleted (and counted), down to 90% of it.
"""
from __future__ import annotations

import contextlib
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
    """Writes each captured window's WAV and vector and appends its row to ``manifest.csv``.

    A save appends one line (the whole manifest used to be rewritten each time: 8.6 ms a save
    at 3000 rows, while drifting under Kafka load). Past ``max_bytes`` the oldest windows go in
    one pass, down to 90% of it, and only then is the manifest rewritten. Appends and rewrites
    hold an exclusive lock on the folder, and a rewrite re-reads the manifest first, so several
    ``consume`` processes of a group can share one folder (and labels typed into it meanwhile
    are kept); each process bounds its view of the folder.
    """

    def __init__(self, folder: str, sr: int, max_bytes: int = 200 * 2 ** 20):
        self.folder, self.sr, self.max_bytes = folder, sr, max_bytes
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise CaptureFolderError(f"--capture-dir {folder}: is a file, not a folder")
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise CaptureFolderError(f"--capture-dir {folder}: cannot create it "
                                     f"({exc.strerror or exc})") from None
        self.manifest = os.path.join(folder, "manifest.csv")
        self.rows: deque = deque()
        self.bytes = 0
        self.saved = self.dropped = self.failed = 0
        self.last_error = None  # of the latest failed save
        # stream id -> (end of its last captured window, that window's group), this session
        # only: stream time starts again at 0 in a new process
        self._runs: dict = {}
        self._stems: set = set()
        self._unwritten: list = []  # rows whose append failed; retried with the next save
        self.columns = list(COLUMNS)
        with self._locked():
            header, rows = self._read()
            self._adopt(rows)
            if header is not None and (header != self.columns or self._has_bom()):
                # a spreadsheet's BOM or column order: normalise once, so appends line up
                self._write_manifest()

    def _read(self) -> tuple[list | None, list]:
        """The manifest's header and rows (None, [] when there is none yet)."""
        if not os.path.exists(self.manifest):
            return None, []
        # perhaps edited in a spreadsheet meanwhile: a BOM, columns of the user's own
        try:
            with open(self.manifest, newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                rows = list(reader)
                header = [c for c in reader.fieldnames or []]
        except (UnicodeDecodeError, csv.Error) as exc:  # before any capture overwrites it
            raise CaptureFolderError(f"{self.manifest}: not a readable capture manifest "
                                     f"({exc}); fix it or choose another --capture-dir"
                                     ) from None
        self.columns += [c for c in header if c not in self.columns]
        return header, rows

    def _adopt(self, rows) -> None:
        self.rows = deque(rows)
        self.bytes = sum(self._size(row) for row in rows)
        self._stems = {os.path.splitext(r.get("path") or "")[0] for r in rows}

    def _has_bom(self) -> bool:
        with open(self.manifest, "rb") as fh:
            return fh.read(3) == b"\xef\xbb\xbf"

    @contextlib.contextmanager
    def _locked(self):
        """An exclusive lock shared with other processes writing this folder (POSIX only)."""
        try:
            import fcntl
        except ImportError:  # no flock: one writer per folder
            yield
            return
        fd = os.open(self.folder, os.O_RDONLY)  # the folder itself: no lock file in it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

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
        self._stems.add(stem)
        self.bytes += self._size(row)
        self.saved += 1
        self._unwritten.append(row)
        try:
            with self._locked():
                if self.bytes > self.max_bytes and len(self.rows) > 1:
                    self._rewrite(evict=True)
                elif self._header_on_disk() not in (None, self.columns):
                    # edited meanwhile (a spreadsheet's column order, a column of its own):
                    # rows appended in this order would not line up
                    self._rewrite(evict=False)
                else:
                    self._append(self._unwritten)
                self._unwritten = []
        except (OSError, ValueError, csv.Error) as exc:  # the rows stay; the next save writes them
            self._failed(f"{self.manifest}: {exc}")
        return os.path.join(self.folder, wav)

    def _append(self, rows) -> None:
        new = not os.path.exists(self.manifest) or os.path.getsize(self.manifest) == 0
        with open(self.manifest, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerows(rows)

    def _header_on_disk(self) -> list | None:
        try:
            with open(self.manifest, newline="", encoding="utf-8-sig") as fh:
                return next(csv.reader(fh), None)
        except FileNotFoundError:
            return None

    def _rewrite(self, evict: bool) -> None:
        """Rewrite the manifest from what is on disk now (other processes' rows, labels typed
        in) plus what this process has not written yet; with ``evict``, first delete the
        oldest windows down to 90% of ``max_bytes``."""
        _, rows = self._read()
        on_disk = {r.get("path") for r in rows}
        self._adopt(rows + [r for r in self._unwritten if r.get("path") not in on_disk])
        while evict and self.bytes > 0.9 * self.max_bytes and len(self.rows) > 1:
            old = self.rows.popleft()
            self.bytes -= self._size(old)
            self._stems.discard(os.path.splitext(old.get("path") or "")[0])
            for name in (old.get("path"), old.get("features")):
                if not name:
                    continue
                try:
                    os.remove(os.path.join(self.folder, name))
                except FileNotFoundError:
                    pass
            self.dropped += 1
        self._write_manifest()

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
        candidate, k = stem, 1
        while (candidate in self._stems
               or os.path.exists(os.path.join(self.folder, candidate + ".wav"))):
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
        tmp = f"{self.manifest}.{os.getpid()}.tmp"
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.manifest)
