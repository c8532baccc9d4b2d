"""A seeded generator of everyday sound types, for the embedded default model and demos.

Classes: silence, noise (white/pink/brown), tone, harmonic, siren (chirps and sweeps),
impulses (claps, knocks), speech_like (formant-filtered glottal pulses in syllables), chord
(music-like note stacks). Each clip gets a random level and a random background noise floor,
so the model learns the sound type, not the recording level.
"""
from __future__ import annotations

import csv
import os

import numpy as np

CLASSES = ("silence", "noise", "tone", "harmonic", "siren", "impulses", "speech_like", "chord")


def _noise(rng, n, colour=None):
    colour = colour or rng.choice(["white", "pink", "brown"])
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=float)
    f[0] = 1.0
    if colour == "pink":
        spectrum /= np.sqrt(f)
    elif colour == "brown":
        spectrum /= f
    x = np.fft.irfft(spectrum, n)
    return x / (np.std(x) + 1e-12)


def _envelope(rng, n, sr):
    attack = int(sr * rng.uniform(0.005, 0.05))
    release = int(sr * rng.uniform(0.02, 0.2))
    env = np.ones(n)
    env[:attack] = np.linspace(0, 1, attack)
    env[n - release:] *= np.linspace(1, 0, release)
    return env


def synth_clip(kind: str, rng: np.random.Generator, sr: int = 16_000, seconds: float = 1.5
               ) -> np.ndarray:
    """One clip of ``kind`` (see ``CLASSES``), float32 mono at ``sr``, peak-normalised then levelled."""
    n = int(sr * seconds)
    t = np.arange(n) / sr
    if kind == "silence":
        # a muted or unplugged input (or a file's digital silence) is exact zeros, a quiet
        # room a noise floor down to the converter's last bit (16-bit: -90 dBFS; below it a
        # 16-bit file holds zeros again)
        if rng.random() < 0.2:
            return np.zeros(n, np.float32)
        x = _noise(rng, n) * 10 ** (rng.uniform(-90, -65) / 20)
        return x.astype(np.float32)
    if kind == "noise":
        x = _noise(rng, n)
    elif kind == "tone":
        f0 = rng.uniform(150, 3000)
        # vibrato: the frequency (not the phase) moves by up to 1%. sin(2 pi f0 t (1 + d sin))
        # had swung it by up to d * 2 pi * rate * t -- +-47% by the end of a clip -- so the
        # "tones" were wobbling FM and a steady sine looked like nothing the model knew
        depth, rate = rng.choice([0.0, rng.uniform(0, 0.01)]), rng.uniform(3, 7)
        phase = t + depth * (1 - np.cos(2 * np.pi * rate * t)) / (2 * np.pi * rate)
        x = np.sin(2 * np.pi * f0 * phase) * _envelope(rng, n, sr)
    elif kind == "harmonic":
        f0 = rng.uniform(80, 600)
        x = sum(rng.uniform(0.2, 1) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6))
                for k in range(1, int(rng.integers(4, 12))) if k * f0 < sr / 2)
        x = x * _envelope(rng, n, sr)
    elif kind == "siren":
        lo, hi = sorted(rng.uniform(300, 3000, 2))
        if rng.random() < 0.5:  # periodic sweep (siren)
            rate = rng.uniform(0.5, 4)
            freq = lo + (hi - lo) * 0.5 * (1 + np.sin(2 * np.pi * rate * t))
        else:  # linear chirp, up or down
            freq = np.linspace(lo, hi, n) if rng.random() < 0.5 else np.linspace(hi, lo, n)
        x = np.sin(2 * np.pi * np.cumsum(freq) / sr)
    elif kind == "impulses":
        x = np.zeros(n)
        for onset in np.sort(rng.uniform(0, seconds - 0.1, int(rng.integers(2, 8)))):
            i = int(onset * sr)
            m = int(sr * rng.uniform(0.01, 0.08))
            burst = _noise(rng, m, "white") * np.exp(-np.arange(m) / (m / 5))
            x[i:i + m] += burst[: n - i] * rng.uniform(0.5, 1)
    elif kind == "speech_like":
        x = np.zeros(n)
        pos = int(sr * rng.uniform(0, 0.15))
        while pos < n - sr // 10:
            syl = int(sr * rng.uniform(0.08, 0.3))
            f0 = rng.uniform(90, 260) * (1 + 0.1 * np.sin(np.linspace(0, 3, syl)))
            phase = np.cumsum(f0) / sr
            pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
            from scipy.signal import lfilter
            voiced = np.zeros(syl)
            for formant, bw in zip(rng.uniform([300, 900, 2200], [900, 2300, 3200]),
                                   (80, 120, 160)):
                r = np.exp(-np.pi * bw / sr)
                a = [1, -2 * r * np.cos(2 * np.pi * formant / sr), r * r]
                voiced += lfilter([1 - r], a, pulses)
            voiced *= np.hanning(syl)
            x[pos:pos + syl] += voiced[: n - pos]
            pos += syl + int(sr * rng.uniform(0.03, 0.15))
    elif kind == "chord":
        root = rng.uniform(110, 440)
        ratios = [1, 2 ** (4 / 12), 2 ** (7 / 12)] if rng.random() < 0.5 else \
            [1, 2 ** (3 / 12), 2 ** (7 / 12), 2 ** (10 / 12)]
        x = np.zeros(n)
        note_len = int(sr * rng.uniform(0.3, seconds))
        for start in range(0, n, note_len):
            m = min(note_len, n - start)
            tt = np.arange(m) / sr
            r0 = root * rng.choice([1, 2 ** (5 / 12), 2 ** (7 / 12)])
            note = sum(np.sin(2 * np.pi * r0 * r * k * tt) / k ** 1.5
                       for r in ratios for k in (1, 2, 3) if r0 * r * k < sr / 2)
            x[start:start + m] += note * np.exp(-tt * rng.uniform(1, 4))
    else:
        raise ValueError(f"unknown sound type {kind!r}; choose from {', '.join(CLASSES)}")
    x = x / (np.max(np.abs(x)) + 1e-12) * 10 ** (rng.uniform(-30, -3) / 20)
    if rng.random() < 0.15:
        # a generated signal (a test tone, a synthesizer) has no noise floor: steady and
        # noiseless, its window statistics vary as little as digital silence's, and without
        # such clips the model took a steady sine for silence
        return x.astype(np.float32)
    snr_db = rng.uniform(15, 45)
    floor = _noise(rng, n) * np.sqrt(np.mean(x ** 2)) * 10 ** (-snr_db / 20)
    return np.clip(x + floor, -1, 1).astype(np.float32)


def generate_dataset(out_dir, n_per_class: int = 40, seed: int = 0, sr: int = 16_000,
                     seconds: float = 1.5) -> str:
    """Write ``out_dir/<class>/<class>_NNN.wav`` and ``manifest.csv`` (with a 20% test split)."""
    from features.audio import write_wav

    rng = np.random.default_rng(seed)
    rows = []
    for kind in CLASSES:
        os.makedirs(os.path.join(out_dir, kind), exist_ok=True)
        for i in range(n_per_class):
            rel = os.path.join(kind, f"{kind}_{i:03d}.wav")
            y = synth_clip(kind, rng, sr, seconds)
            if not y.any():  # digital silence: cut to a random length, or the zero clips would
                # be byte-identical files on both sides of the test split
                y = y[: int(len(y) * rng.uniform(0.4, 1.0))]
            write_wav(os.path.join(out_dir, rel), y, sr)
            rows.append({"path": rel, "label": kind,
                         "split": "test" if i % 5 == 0 else "train"})
    manifest = os.path.join(out_dir, "manifest.csv")
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "label", "split"])
        w.writeheader()
        w.writerows(rows)
    return manifest


def demo_sequence(seed: int = 1, sr: int = 16_000, seconds_each: float = 2.0,
                  kinds=CLASSES) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """A soundtrack that walks through the sound types; returns (audio, [(start s, end s, kind)])."""
    rng = np.random.default_rng(seed)
    parts, spans, t = [], [], 0.0
    for kind in kinds:
        parts.append(synth_clip(kind, rng, sr, seconds_each))
        spans.append((t, t + seconds_each, kind))
        t += seconds_each
    return np.concatenate(parts), spans


def random_soundtrack(seed: int, seconds: float, sr: int = 16_000) -> np.ndarray:
    """Clips of random sound types back to back, ``seconds`` long: in-distribution live audio
    for the default model (a new seed is audio it never trained on)."""
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < seconds * sr:
        parts.append(synth_clip(CLASSES[rng.integers(len(CLASSES))], rng, sr))
        total += len(parts[-1])
    return np.concatenate(parts)[: int(seconds * sr)]
