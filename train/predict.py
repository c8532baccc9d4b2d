"""Offline prediction: a per-window timeline and one summary per file."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audioclf.artifact import ModelArtifact
from audioclf.postprocess import Smoother
from features import block_windows, read_audio_blocks
from features.extract import level_index

from .evaluate import sound_windows


@dataclass
class WindowPrediction:
    start: float  # seconds
    end: float
    label: str | None  # classification
    probability: float | None
    value: float | None  # regression
    probs: dict | None = None  # class -> probability (classification), smoothed as the label


def window_timeline(art: ModelArtifact, scores: np.ndarray, starts, smooth: int = 1,
                    duration: float | None = None):
    """Turn window scores into WindowPrediction rows (causal smoothing over ``smooth`` windows).

    ``duration`` (seconds): where the audio ends. A clip shorter than a window is scored
    zero-padded, and its window ends with the audio, not with the padding.
    """
    cfg = art.feature_config
    sm = Smoother(smooth)
    out = []
    for start, s in zip(starts, scores):
        s = sm.update(s)
        t0 = start / cfg.sr
        t1 = t0 + cfg.window_samples / cfg.sr
        if duration is not None:
            t1 = min(t1, duration)
        if art.is_classifier:
            k = int(np.argmax(s))
            out.append(WindowPrediction(t0, t1, art.labels[k], float(s[k]), None,
                                        dict(zip(art.labels, map(float, s)))))
        else:
            out.append(WindowPrediction(t0, t1, None, None, float(s)))
    return out


def predict_file(art: ModelArtifact, path, smooth: int = 1) -> dict:
    """Read a file and score every window; returns timeline and summary (mean of window scores).

    The file is decoded and scored a block at a time, so an hour-long recording costs the
    memory of its scores, not of its audio.
    """
    cfg = art.feature_config
    n_samples = 0

    def counted(blocks):
        nonlocal n_samples
        for block in blocks:
            n_samples += block.shape[0]
            yield block

    starts, scores, levels = [], [], []
    level = level_index(cfg)
    for s, X in block_windows(counted(read_audio_blocks(path, sr=cfg.sr)), cfg):
        starts.append(s)
        scores.append(art.score(X))
        levels.append(X[:, level])
    starts, scores = np.concatenate(starts), np.concatenate(scores)
    duration = n_samples / cfg.sr
    timeline = window_timeline(art, scores, starts, smooth, duration=duration)
    # the file's summary, as evaluate scores it: its silent padding is not evidence
    levels = np.concatenate(levels)
    mean = scores[sound_windows(levels, np.zeros(len(levels), int))].mean(axis=0)
    if art.is_classifier:
        k = int(np.argmax(mean))
        summary = {"label": art.labels[k], "probability": float(mean[k])}
    else:
        summary = {"value": float(mean)}
    return {"file": str(path), "duration": duration, "summary": summary,
            "windows": timeline}
