"""Per-window feature vectors: audioclf vs the same features computed with librosa, in one run.

    python bench/features.py [--clips 600] [--repeat 3]

Clips are FSDD recordings (../shared/data/fsdd) decoded and resampled to 16 kHz beforehand
(decoding is not timed), or synthetic clips when FSDD is absent. The librosa reference is what a
careful user writes: one STFT passed as ``S`` to every librosa feature function, deltas with
``librosa.feature.delta``, statistics with numpy over the active frames. Both sides must give the
same vectors (checked). Prints clips/s for each, the ratio, and peak traced memory for a small
and a large number of clips, and for a 1- and a 10-minute recording (flat = no growth).
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time
import tracemalloc

import numpy as np

# bench/ must not shadow the packages its scripts are named after (kafka, features)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from features import (FeatureConfig, batch_windows, feature_names, read_audio,  # noqa: E402
                      signal_windows)
from features.extract import pad_to_window  # noqa: E402

CFG = FeatureConfig()
FSDD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared",
                    "data", "fsdd")


def load_clips(n: int) -> list[np.ndarray]:
    manifest = os.path.join(FSDD, "manifest.csv")
    if os.path.exists(manifest):
        import csv
        with open(manifest) as fh:
            rows = list(csv.DictReader(fh))
        rows = rows[:: max(1, len(rows) // n)][:n]
        return [read_audio(os.path.join(FSDD, r["path"]), sr=CFG.sr)[0] for r in rows]
    print("FSDD not found; using synthetic clips", file=sys.stderr)
    rng = np.random.default_rng(0)
    t = np.arange(CFG.sr) / CFG.sr
    return [(0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) * (t < rng.uniform(0.2, 1))
             + 0.01 * rng.standard_normal(len(t))).astype(np.float32) for _ in range(n)]


def librosa_vectors(y: np.ndarray, shared_stft: bool = True) -> np.ndarray:
    """The same window vectors, computed with librosa and plain numpy statistics.

    ``shared_stft=False`` is the way most code is written (and librosa's docs show): every
    feature function is given ``y`` and computes its own STFT.
    """
    import librosa

    c = CFG
    y = pad_to_window(y, c).astype(np.float64)
    frame_kw = dict(n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length,
                    center=False)
    S = np.abs(librosa.stft(y, **frame_kw))
    log_mel = librosa.power_to_db(
        librosa.feature.melspectrogram(S=S ** 2, sr=c.sr, n_mels=c.n_mels), top_db=None)
    if shared_stft:
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=c.n_mfcc)
        kw = dict(S=S, sr=c.sr)
    else:
        mfcc = librosa.feature.mfcc(y=y, sr=c.sr, n_mfcc=c.n_mfcc, n_mels=c.n_mels, **frame_kw)
        kw = dict(y=y, sr=c.sr, **frame_kw)
    flat_kw = {k: v for k, v in kw.items() if k != "sr"}
    scalars = np.vstack([
        librosa.feature.spectral_centroid(**kw), librosa.feature.spectral_bandwidth(**kw),
        librosa.feature.spectral_rolloff(**kw, roll_percent=c.rolloff_percent),
        librosa.feature.spectral_flatness(**flat_kw),
        librosa.feature.zero_crossing_rate(y, frame_length=c.n_fft, hop_length=c.hop_length,
                                           center=False),
        librosa.amplitude_to_db(librosa.feature.rms(y=y, frame_length=c.n_fft,
                                                    hop_length=c.hop_length, center=False),
                                amin=1e-5, top_db=None),
    ])
    contrast = librosa.feature.spectral_contrast(**{"n_fft": c.n_fft, **kw},
                                                 fmin=c.contrast_fmin, n_bands=c.contrast_bands)
    F, step = c.frames_per_window, c.frames_per_window_hop
    out = []
    for start in range(0, mfcc.shape[1] - F + 1, step):
        w = slice(start, start + F)
        rms_db = scalars[5, w]
        ref = rms_db.max()
        active = rms_db >= ref - c.active_db
        m = mfcc[:, w].copy()
        sc = scalars[:, w].copy()
        m[0] -= ref * np.sqrt(c.n_mels)
        sc[5] -= ref
        d = librosa.feature.delta(m, width=c.delta_width)
        flux = np.maximum(np.diff(log_mel[:, w], axis=1), 0).mean(axis=0)
        Z = np.vstack([m, d, sc, contrast[:, w]])[:, active]
        fa = active[1:] if active[1:].any() else np.ones(F - 1, bool)
        fz = flux[fa]
        vec = []
        for s in c.stats:
            f = {"mean": np.mean, "std": np.std}.get(s) or functools.partial(
                np.percentile, q=float(s[1:]))
            vec += list(f(Z, axis=1)) + [f(fz)]
        core = rms_db >= ref - c.core_db
        idx = np.flatnonzero(core)
        first, last = idx[0], idx[-1] + 1
        segs = []
        for k in range(c.n_segments):
            lo = first + (k * (last - first)) // c.n_segments
            hi = min(max(first + ((k + 1) * (last - first)) // c.n_segments, lo + 1), F)
            lo = min(lo, hi - 1)
            segs.append(m[:, lo:hi].mean(axis=1))
        segs = np.array(segs)
        vec += list(segs.ravel()) + list((segs - segs.mean(axis=0)).ravel())
        vec += [core.mean(), (last - first) / F, ref]
        out.append(vec)
    return np.asarray(out)


def ours(y):
    return signal_windows(y, CFG)[1]


def rate_batched(clips, repeat) -> float:
    """The offline path `audioclf train` uses: many clips per call, vectorised across them."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        batch_windows(clips, CFG)
        best = min(best, time.perf_counter() - t)
    return len(clips) / best


def rate(fn, clips, repeat) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for y in clips:
            fn(y)
        best = min(best, time.perf_counter() - t)
    return len(clips) / best


def peak_memory(fn, clips) -> float:
    tracemalloc.start()
    for y in clips:
        fn(y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2 ** 20


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)  # both sides single-threaded: a fair one-core comparison
    from audioclf.memory import keep_freed_memory
    keep_freed_memory()  # as audioclf's CLI and training workers run; librosa gets it too

    import librosa
    import librosa.feature.spectral as lfs
    # librosa's contrast clips valleys 80 dB below the input's loudest (see tests); disable so
    # both sides compute the same numbers.
    lfs.power_to_db = functools.partial(librosa.power_to_db, top_db=None)

    clips = load_clips(args.clips)
    names = feature_names(CFG)
    typical = functools.partial(librosa_vectors, shared_stft=False)
    worst = 0.0
    for y in clips[:50]:
        a = ours(y)
        for ref in (librosa_vectors(y), typical(y)):
            # error relative to each feature's range; floor 0.1 because the vectors are float32
            # and some features sit at ~0 (float32 rounding of a sum of values ~100 is ~1e-5)
            scale = np.maximum(np.abs(ref).max(axis=0), 0.1)
            worst = max(worst, float((np.abs(a - ref) / scale).max()))
    print(f"outputs: {len(names)} features per window; max relative difference {worst:.1e} "
          f"over 50 clips ({'EQUAL' if worst < 1e-3 else 'DIFFERENT'})")

    librosa_vectors(clips[0]), typical(clips[0]), ours(clips[0])  # warm-up (imports, caches)
    r_ours = rate(ours, clips, args.repeat)
    r_batch = rate_batched(clips, args.repeat)
    _, _, Xb = batch_windows(clips[:50], CFG)
    assert np.array_equal(Xb, np.concatenate([ours(y) for y in clips[:50]])), "batch != single"
    subset = clips[: max(50, len(clips) // 4)]
    r_lib = rate(librosa_vectors, subset, 1)
    r_typ = rate(typical, subset, 1)
    secs = np.mean([len(c) for c in clips]) / CFG.sr
    print(f"{len(clips)} clips of ~{secs:.2f} s, 1 process, single-threaded BLAS")
    print(f"audioclf, batch_windows (training path): {r_batch:8.1f} clips/s (identical vectors)")
    print(f"audioclf, one clip per call            : {r_ours:8.1f} clips/s")
    print(f"librosa, STFT per feature (typical)    : {r_typ:8.1f} clips/s -> audioclf "
          f"{r_batch / r_typ:.1f}x / {r_ours / r_typ:.1f}x faster (target >= 5x)")
    print(f"librosa, one shared STFT (careful)     : {r_lib:8.1f} clips/s -> audioclf "
          f"{r_batch / r_lib:.1f}x / {r_ours / r_lib:.1f}x faster")
    small, large = clips[: len(clips) // 6], clips
    m_small, m_large = peak_memory(ours, small), peak_memory(ours, large)
    b_small = peak_memory(lambda c: batch_windows(c, CFG), [small])
    b_large = peak_memory(lambda c: batch_windows(c, CFG), [large])
    print(f"peak traced memory, batch_windows: {b_small:.2f} MiB for {len(small)} clips, "
          f"{b_large:.2f} MiB for {len(large)} clips (growth {b_large / b_small:.2f}x; the "
          f"output matrix itself is {len(large) * len(names) * 4 / 2 ** 20:.2f} MiB)")
    print(f"peak traced memory: {m_small:.2f} MiB for {len(small)} clips, {m_large:.2f} MiB for "
          f"{len(large)} clips (growth {m_large / m_small:.2f}x)")
    # long recordings: the clips back to back, 1 and 10 minutes
    tape = np.concatenate(clips)
    tape = np.tile(tape, -(-600 * CFG.sr // len(tape)))
    one, ten = tape[: 60 * CFG.sr], tape[: 600 * CFG.sr]
    l_one, l_ten = peak_memory(ours, [one]), peak_memory(ours, [ten])
    print(f"peak traced memory, one long recording: {l_one:.2f} MiB for 1 min, {l_ten:.2f} MiB "
          f"for 10 min (growth {l_ten / l_one:.2f}x; the 10-min output itself is "
          f"{(len(ten) // CFG.window_hop_samples) * len(names) * 4 / 2 ** 20:.2f} MiB)")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
