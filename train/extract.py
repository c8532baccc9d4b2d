"""Feature extraction for a dataset: parallel (joblib), cached on disk, bad files skipped.

The cache key is the file's SHA-256 plus the FeatureConfig digest, so renamed files hit, edited
files miss, and a config change never reuses stale vectors. The same SHA-256 tells a model which
files it was trained on (:func:`content_ids`), so evaluating on them can be flagged.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from features import (AudioError, FeatureConfig, batch_windows, block_windows, read_audio,
                      read_audio_blocks)
from features.audio import read_audio_segment
from features.extract import WINDOW_CHUNK

from .progress import progress_bar


# files larger than this are decoded a block at a time (a 16 kHz 16-bit mono WAV of 2 min, an
# MP3 of ~4): a whole hour-long recording would be held, resampled, by every worker
LONG_FILE_BYTES = 4 << 20


def default_cache_dir() -> str:
    return os.environ.get("AUDIOCLF_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "audioclf", "features")


@dataclass
class Windows:
    """Window vectors of a set of files: ``X[i]`` came from file ``owner[i]`` at ``starts[i]``."""

    X: np.ndarray
    owner: np.ndarray
    starts: np.ndarray
    skipped: list = field(default_factory=list)  # (path, one-line reason)
    cache_hits: int = 0
    sha256: dict = field(default_factory=dict)  # file index -> hex digest of its bytes (read)


def extract_windows(paths: list[str], cfg: FeatureConfig, n_jobs: int = -1,
                    cache_dir: str | None = "", progress: bool = True, chunk: int = 24,
                    segments: list | None = None) -> Windows:
    """Window vectors for every file in ``paths`` (resampled to ``cfg.sr``).

    ``segments``: per file ``None`` (all of it) or ``(offset, duration)`` in seconds (duration
    ``None``: to the end), the part of a recording a manifest row labels; window starts
    count from the segment's start. ``cache_dir=""`` uses the default cache, ``None``
    disables it. Files that cannot be read are reported in ``skipped`` and left out; the
    others are unaffected.
    """
    from joblib import Parallel, delayed

    if cache_dir == "":
        cache_dir = default_cache_dir()
    if cache_dir:
        cache_dir = os.path.join(cache_dir, cfg.digest()[:16])
        os.makedirs(cache_dir, exist_ok=True)
    chunks = [list(range(i, min(i + chunk, len(paths)))) for i in range(0, len(paths), chunk)]
    segments = segments or [None] * len(paths)
    jobs = (delayed(_extract_chunk)([(i, paths[i], segments[i]) for i in c], cfg, cache_dir)
            for c in chunks)
    n_jobs = 1 if len(chunks) <= 1 else n_jobs
    runner = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    results, digests = {}, {}
    hits = 0
    with progress_bar(progress, len(paths)) as advance:
        for part, part_digests, part_hits in runner(jobs):
            hits += part_hits
            results.update(part)
            digests.update(part_digests)
            advance(len(part))
    X, owner, starts, skipped = [], [], [], []
    for i in range(len(paths)):
        res = results[i]
        if isinstance(res, str):
            skipped.append((paths[i], res))
            continue
        s, x = res
        X.append(x)
        owner.append(np.full(len(s), i))
        starts.append(s)
    if not X:
        return Windows(np.zeros((0, 0), np.float32), np.zeros(0, int), np.zeros(0, int),
                       skipped, hits)
    return Windows(np.concatenate(X), np.concatenate(owner), np.concatenate(starts), skipped,
                   hits, {i: digests[i] for i in np.unique(np.concatenate(owner)).tolist()})


def content_ids(sha256_hex) -> np.ndarray:
    """Compact ids of file contents: the first 64 bits of each SHA-256, sorted ``(n,)`` uint64
    (8 bytes a file in a model artifact; a chance collision among 10^5 files is ~3e-10)."""
    return np.unique(np.array([int(h[:16], 16) for h in sha256_hex], dtype=np.uint64))


def _extract_chunk(items, cfg: FeatureConfig, cache_dir):
    """Worker: ``{index: (starts, X) | error message}``, ``{index: sha256 hex}`` of the files it
    could open, and the number of cache hits."""
    from audioclf.memory import keep_freed_memory
    from features import n_features

    keep_freed_memory()  # see audioclf/memory.py (once per worker process)

    out, digests, todo, hits = {}, {}, [], 0
    width = n_features(cfg)
    # recordings longer than this are analysed as soon as they are read (bounded memory)
    long_samples = cfg.window_samples + WINDOW_CHUNK * cfg.window_hop_samples
    known = {}  # path -> digest: a recording's labelled parts are hashed once
    for i, path, segment in items:
        cached = None
        try:  # the cache key, and which content a model was trained (or evaluated) on
            digests[i] = known[path] = known.get(path) or _sha256(path)
        except OSError as exc:
            out[i] = f"{path}: cannot open ({exc.strerror or exc})"
            continue
        if cache_dir:
            part = "" if segment is None else f"-{segment[0]:g}-{_g(segment[1])}"
            cached = os.path.join(cache_dir, digests[i] + part + ".npz")
        if cached and os.path.exists(cached):
            try:
                with np.load(cached) as z:
                    entry = (z["starts"], z["X"])
                if entry[1].ndim == 2 and entry[1].shape[1] == width:
                    out[i] = entry
                    hits += 1
                    continue
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache entry is recomputed
        try:
            if segment is not None:  # a labelled part of a recording: only it is held
                y = read_audio_segment(path, cfg.sr, *segment)
            elif os.path.getsize(path) > LONG_FILE_BYTES:  # decoded and analysed block by block
                parts = list(block_windows(read_audio_blocks(path, sr=cfg.sr), cfg))
                _store(out, i, np.concatenate([s for s, _ in parts]),
                       np.concatenate([X for _, X in parts]), cached)
                continue
            else:
                y, _ = read_audio(path, sr=cfg.sr)
        except AudioError as exc:
            out[i] = str(exc)
            continue
        if len(y) > long_samples:  # a long recording now, so the chunk never holds many
            _windows_into([(i, y, cached)], cfg, out)
        else:
            todo.append((i, y, cached))
    _windows_into(todo, cfg, out)
    return out, digests, hits


def _g(seconds: float | None) -> str:
    return "end" if seconds is None else f"{seconds:g}"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):  # a long recording is not held twice
            h.update(block)
    return h.hexdigest()


def _windows_into(todo, cfg: FeatureConfig, out: dict) -> None:
    """Window vectors of ``(index, samples, cache path | None)`` into ``out[index]`` (+ cache)."""
    if not todo:
        return
    owner, starts, X = batch_windows([y for _, y, _ in todo], cfg)
    for k, (i, _, cached) in enumerate(todo):
        sel = owner == k
        _store(out, i, starts[sel], X[sel], cached)


def _store(out: dict, i: int, starts: np.ndarray, X: np.ndarray, cached: str | None) -> None:
    """File ``i``'s windows into ``out`` and, with a cache path, the cache."""
    out[i] = (starts, X)
    if cached:
        tmp = f"{cached}.{os.getpid()}.tmp.npz"
        np.savez(tmp, starts=starts, X=X)
        os.replace(tmp, cached)
