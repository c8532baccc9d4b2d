"""The one feature path: samples -> per-frame rows -> per-window vectors.

Offline (a file), live (a microphone) and Kafka streams all call :class:`FrameAnalyzer` on STFT
frames and :func:`window_vectors` on the frame rows of a window; :class:`IncrementalFeatures`
only decides *which* frames are new. Per-frame rows are a function of one frame; everything
that looks across frames (deltas, flux, activity gating, statistics, segment pooling) happens in
:func:`window_vectors` on the window's own frames, so a streamed window equals the offline one.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .config import FeatureConfig
from . import spectral as sp

SCALAR_DESCRIPTORS = ("centroid", "bandwidth", "rolloff", "flatness", "zcr", "rms_db")


class FrameLayout:
    """Column layout of a per-frame row ``(n_mels log-mel | n_mfcc MFCC | scalars | contrast)``."""

    def __init__(self, cfg: FeatureConfig):
        self.logmel = slice(0, cfg.n_mels)
        self.mfcc = slice(cfg.n_mels, cfg.n_mels + cfg.n_mfcc)
        start = self.mfcc.stop
        self.scalar = {name: start + i for i, name in enumerate(SCALAR_DESCRIPTORS)}
        self.scalars = slice(start, start + len(SCALAR_DESCRIPTORS))
        self.contrast = slice(self.scalars.stop, self.scalars.stop + cfg.contrast_bands + 1)
        self.width = self.contrast.stop


class FrameAnalyzer:
    """Per-frame spectral analysis for one config; the constant matrices are built once.

    ``analyze(frames)`` maps raw frames ``(n_frames, n_fft)`` to float32 rows
    ``(n_frames, layout.width)``: log-mel power (dB), MFCC, centroid/bandwidth/rolloff (Hz),
    flatness, zero-crossing rate, RMS (dBFS) and spectral contrast (dB).
    """

    def __init__(self, cfg: FeatureConfig):
        self.cfg = cfg
        self.layout = FrameLayout(cfg)
        self.freqs = sp.fft_frequencies(cfg.sr, cfg.n_fft)
        # float64 products: float32 BLAS results depend on the batch size, and a streamed frame
        # must equal the same frame analysed in a long file.
        self.mel_fb = sp.mel_filterbank(cfg.sr, cfg.n_fft, cfg.n_mels, cfg.fmin,
                                        cfg.fmax).astype(np.float64)
        self.dct = sp.dct_matrix(cfg.n_mels, cfg.n_mfcc).astype(np.float64)
        self.magnitude_sums = sp.magnitude_sums_matrix(cfg.sr, cfg.n_fft, self.ROLLOFF_BLOCK)
        self._silent_row = None  # built on first use (see silent_row)

    # frames per pass: large enough to amortise ~30 numpy calls, small enough for the float64
    # temporaries (2 MB of spectrum) to stay in cache; 512 measured fastest (64-2048 tried)
    BLOCK = 512
    ROLLOFF_BLOCK = 16  # bins per block of the roll-off's two-level search

    def analyze(self, frames: np.ndarray) -> np.ndarray:
        out = np.empty((frames.shape[0], self.layout.width), dtype=np.float32)
        # all-zero frames (a short clip's padding, digital silence) share one row: computing it
        # once halves the analysis of a typical padded speech-clip dataset
        silent = self._silent_frames(frames)
        if silent.any():
            out[silent] = self.silent_row
            live = np.flatnonzero(~silent)
            if live.size:
                out[live] = self.analyze(frames[live])
            return out
        for b in range(0, frames.shape[0], self.BLOCK):
            self._analyze_block(frames[b:b + self.BLOCK], out[b:b + self.BLOCK])
        return out

    @staticmethod
    def _silent_frames(frames: np.ndarray) -> np.ndarray:
        """Which frames are all zero: only frames whose first, middle and last samples are zero
        are read whole (sounding audio rarely has any; a full pass cost 2% of the analysis)."""
        silent = np.zeros(frames.shape[0], bool)
        n = frames.shape[1]  # (n_frames, n_fft)
        maybe = np.flatnonzero((frames[:, 0] == 0) & (frames[:, n // 2] == 0)
                               & (frames[:, n - 1] == 0))
        if maybe.size:
            silent[maybe] = ~frames[maybe].any(axis=1)
        return silent

    @property
    def silent_row(self) -> np.ndarray:
        """The row of an all-zero frame (rows depend on their own frame only), computed in a full
        block: BLAS rounding varies with the batch size (~1e-15), and a full block gives the
        exact zeros the DCT of a constant log-mel has."""
        if self._silent_row is None:
            rows = np.empty((self.BLOCK, self.layout.width), dtype=np.float32)
            self._analyze_block(np.zeros((self.BLOCK, self.cfg.n_fft), np.float32), rows)
            self._silent_row = rows[0]
        return self._silent_row

    def _analyze_block(self, frames: np.ndarray, out: np.ndarray) -> None:
        cfg, lay = self.cfg, self.layout
        raw = frames.astype(np.float64)  # for the RMS; then windowed in place for the FFT
        rms_db = sp.power_to_db(sp.rms(raw) ** 2)
        # |X| (hypot) and its square: one pass over the complex spectrum fewer than re²+im²
        # and its square root
        magnitude = np.abs(sp.stft_frames(raw, cfg.win_length, overwrite=True))  # (n, n_bins)
        power = magnitude * magnitude
        log_mel = sp.power_to_db(power @ self.mel_fb.T)  # (n, n_mels)
        out[:, lay.logmel] = log_mel
        out[:, lay.mfcc] = log_mel @ self.dct.T
        sums = magnitude @ self.magnitude_sums  # raw moments and the roll-off's block sums
        centroid, bandwidth = sp.moments_to_centroid_bandwidth(sums[:, :3])
        out[:, lay.scalar["centroid"]] = centroid
        out[:, lay.scalar["bandwidth"]] = bandwidth
        out[:, lay.scalar["rolloff"]] = self.freqs[sp.rolloff_bins(
            magnitude, cfg.rolloff_percent, self.ROLLOFF_BLOCK, block_cum=sums[:, 3:])]
        out[:, lay.scalar["flatness"]] = sp.power_flatness(power)
        out[:, lay.scalar["zcr"]] = sp.zero_crossing_rate(frames)
        out[:, lay.scalar["rms_db"]] = rms_db
        out[:, lay.contrast] = sp.spectral_contrast(magnitude.T, cfg.sr, cfg.n_fft,
                                                    cfg.contrast_fmin, cfg.contrast_bands).T

    def frame_rows(self, y: np.ndarray) -> np.ndarray:
        """Rows for every full frame of ``y`` (frame t starts at sample ``t*hop_length``)."""
        return self.analyze(sp.frame(np.asarray(y, dtype=np.float32), self.cfg.n_fft,
                                     self.cfg.hop_length))


@lru_cache(maxsize=16)
def _analyzer(cfg: FeatureConfig) -> FrameAnalyzer:
    """The shared analyser of a config (its matrices are built once per process)."""
    return FrameAnalyzer(cfg)


def frame_descriptor_names(cfg: FeatureConfig) -> list[str]:
    """Names of the per-frame descriptors that get window statistics, in vector order."""
    return ([f"mfcc{i:02d}" for i in range(cfg.n_mfcc)]
            + [f"dmfcc{i:02d}" for i in range(cfg.n_mfcc)]
            + list(SCALAR_DESCRIPTORS)
            + [f"contrast{i}" for i in range(cfg.contrast_bands + 1)]
            + ["flux"])


def feature_names(cfg: FeatureConfig) -> list[str]:
    """Stable name of every element of a window vector (``feature_names_out``)."""
    return list(_feature_names(cfg))


@lru_cache(maxsize=16)
def _feature_names(cfg: FeatureConfig) -> tuple[str, ...]:  # cached: building them is ~70 us
    descs = frame_descriptor_names(cfg)
    names = [f"{d}_{s}" for s in cfg.stats for d in descs]
    names += [f"seg{k}_mfcc{i:02d}" for k in range(cfg.n_segments) for i in range(cfg.n_mfcc)]
    names += [f"seg{k}_cmn{i:02d}" for k in range(cfg.n_segments) for i in range(cfg.n_mfcc)]
    names += ["active_fraction", "active_span", "level_dbfs"]
    return tuple(names)


def n_features(cfg: FeatureConfig) -> int:
    return len(_feature_names(cfg))


def level_index(cfg: FeatureConfig) -> int:
    """Where a window vector holds ``level_dbfs`` (its loudest frame's RMS, dBFS)."""
    return _feature_names(cfg).index("level_dbfs")


def window_vectors(rows: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Aggregate the frame rows of windows ``(n_windows, frames_per_window, width)`` -> ``(n_windows, n_features)``.

    * Frames within ``active_db`` of the window's loudest frame are *active*; statistics
      (mean, std, 10/50/90th percentile, linear interpolation) are taken over active frames only,
      so zero padding or a quiet background does not dilute a short sound.
    * Deltas (Savitzky-Golay, ``delta_width``) use all the window's frames; flux is the mean
      positive log-mel rise from the previous frame of the same window.
    * ``normalize_loudness``: RMS (dB) and MFCC 0 are taken relative to the loudest frame, which
      makes the vector invariant to gain (up to the -100 dB floor) except for the one
      ``level_dbfs`` element (loudest frame RMS, dBFS).
    * Segment pooling: the span from the first to the last *core* frame (within ``core_db`` of
      the loudest) is cut into ``n_segments`` equal parts and MFCC means are taken per part, so
      temporal shape survives; repeated with the mean over segments subtracted (cepstral mean
      normalisation), which lifted leave-one-speaker-out accuracy on FSDD from 69% to 75%.
      Spanning the 20 dB core rather than the 40 dB active frames lifted it to 77% and the
      official-split test accuracy from 99.0% to 100% (mean of 4 forest seeds).
      ``active_fraction`` and ``active_span`` describe the core.
    """
    rows = np.asarray(rows, dtype=np.float32)
    if rows.ndim == 2:
        rows = rows[None]
    if rows.shape[0] > VECTOR_BATCH:  # see VECTOR_BATCH
        return np.concatenate([window_vectors(rows[i:i + VECTOR_BATCH], cfg)
                               for i in range(0, rows.shape[0], VECTOR_BATCH)])
    N, F, _ = rows.shape
    lay = FrameLayout(cfg)
    rms_db = rows[:, :, lay.scalar["rms_db"]]
    ref = rms_db.max(axis=1)  # (N,)
    active = rms_db >= (ref - cfg.active_db)[:, None]  # (N, F); the loudest frame always is

    # descriptor-major (N, D, F) in float64: every reduction and sort runs along contiguous
    # frames, and element-wise float64 arithmetic rounds the same whatever N is (a streamed
    # window must equal the offline one)
    n_mfcc, n_scalars = cfg.n_mfcc, lay.scalars.stop - lay.scalars.start
    c_delta, c_scalars = n_mfcc, 2 * n_mfcc
    c_contrast = c_scalars + n_scalars
    Z = np.empty((N, c_contrast + lay.contrast.stop - lay.contrast.start, F))
    mfcc = rows[:, :, lay.mfcc].transpose(0, 2, 1)
    scalars = rows[:, :, lay.scalars].transpose(0, 2, 1)
    if cfg.normalize_loudness:  # float32 arithmetic, as the vectors have always been computed
        mfcc = mfcc.copy()
        mfcc[:, 0, :] -= ref[:, None] * np.float32(np.sqrt(cfg.n_mels))
        scalars = scalars.copy()
        scalars[:, lay.scalar["rms_db"] - lay.scalars.start, :] -= ref[:, None]
    Z[:, :n_mfcc] = mfcc
    sp.delta(mfcc, cfg.delta_width, out=Z[:, c_delta:c_scalars])  # float32 in: half the bytes
    Z[:, c_scalars:c_contrast] = scalars
    Z[:, c_contrast:] = rows[:, :, lay.contrast].transpose(0, 2, 1)
    log_mel = rows[:, :, lay.logmel]
    flux = np.maximum(log_mel[:, 1:] - log_mel[:, :-1], 0).mean(axis=2)  # (N, F-1)

    stats_frames = _masked_stats(Z, active, cfg.stats)  # (N, n_stats, D)
    flux_mask = active[:, 1:]
    flux_mask = np.where(flux_mask.any(axis=1, keepdims=True), flux_mask, True)
    stats_flux = _masked_stats(flux[:, None, :], flux_mask, cfg.stats)  # (N, n_stats, 1)
    per_stat = np.concatenate([stats_frames, stats_flux], axis=2).reshape(N, -1)

    core = rms_db >= (ref - cfg.core_db)[:, None]  # (N, F); the loudest frame always is
    first = np.argmax(core, axis=1)
    last = F - 1 - np.argmax(core[:, ::-1], axis=1)
    parts = [per_stat]
    if cfg.n_segments:
        seg = _segment_means(Z[:, :n_mfcc], first, last + 1, cfg.n_segments)  # (N, K, n_mfcc)
        parts.append(seg.reshape(N, -1))
        # the same shape with the window's cepstral mean removed: speaker/channel colour out
        parts.append((seg - seg.mean(axis=1, keepdims=True)).reshape(N, -1))
    # the absolute level stays available as one explicit feature even when the rest is
    # loudness-normalised: without it "silence" and quiet "noise" are the same vector
    parts.append(np.stack([core.sum(axis=1) / F, (last - first + 1) / F, ref], axis=1))
    return np.concatenate(parts, axis=1).astype(np.float32)


# windows per vectorised pass. A pass's float64 temporaries take ~50 KB per window, and above
# ~110 windows they outgrow glibc's kept free heap (audioclf/memory.py) at some sizes, which
# are then page-faulted in again every pass: 128 cost 87-94 us a window, 32-112 cost 46-49
# (some sizes from 116 on as much as 128); 64 sits in the middle of the flat range
VECTOR_BATCH = 64


def _masked_stats(Z: np.ndarray, mask: np.ndarray, stats) -> np.ndarray:
    """Statistics over the frames where ``mask`` holds, summed in float64.

    Z ``(N, D, F)``, mask ``(N, F)`` -> ``(N, len(stats), D)``.
    """
    Z = np.asarray(Z, dtype=np.float64)  # no copy for the frame statistics; flux is float32
    # inactive frames are zeroed for the sums and sorted last as +inf; when every frame is
    # active (steady sound: most windows) the masking is skipped -- the same numbers
    inactive = None if mask.all() else ~mask[:, None, :]
    count = mask.sum(axis=1)[:, None]  # (N, 1), >= 1
    mean = (Z if inactive is None else np.where(inactive, 0, Z)).sum(axis=2) / count
    out = []
    sorted_z = None
    rows_n = np.arange(Z.shape[0])
    for s in stats:
        if s == "mean":
            out.append(mean)
        elif s == "std":
            dev = Z - mean[:, :, None]
            if inactive is not None:
                np.copyto(dev, 0.0, where=inactive)
            out.append(np.sqrt((dev * dev).sum(axis=2) / count))
        else:  # percentile, numpy's default 'linear' rule over the active frames
            if sorted_z is None:  # float32 sorts faster; only the deltas were not float32
                # already, and the vector is rounded to float32 at the end anyway
                sorted_z = Z.astype(np.float32)
                if inactive is not None:
                    np.copyto(sorted_z, np.inf, where=inactive)
                sorted_z.sort(axis=2)
            pos = (float(s[1:]) / 100.0) * (count[:, 0] - 1)  # (N,)
            lo = np.floor(pos).astype(np.intp)
            hi = np.minimum(lo + 1, count[:, 0] - 1)
            frac = (pos - lo)[:, None]
            z_lo, z_hi = sorted_z[rows_n, :, lo], sorted_z[rows_n, :, hi]
            out.append(z_lo + (z_hi - z_lo) * frac)
    return np.stack(out, axis=1)


def _segment_means(x: np.ndarray, start: np.ndarray, stop: np.ndarray, k: int) -> np.ndarray:
    """Means of x ``(N, C, F)`` over k equal parts of frames ``start:stop`` -> ``(N, k, C)``."""
    N, C, F = x.shape
    csum = np.zeros((N, C, F + 1))
    np.cumsum(x, axis=2, out=csum[:, :, 1:])
    length = stop - start
    bounds = start[:, None] + (np.arange(k + 1)[None, :] * length[:, None]) // k  # (N, k+1)
    lo, hi = bounds[:, :-1], np.maximum(bounds[:, 1:], bounds[:, :-1] + 1)
    hi = np.minimum(hi, F)
    lo = np.minimum(lo, hi - 1)
    s_hi = np.take_along_axis(csum, hi[:, None, :], axis=2)  # (N, C, k)
    s_lo = np.take_along_axis(csum, lo[:, None, :], axis=2)
    return ((s_hi - s_lo) / (hi - lo)[:, None, :]).transpose(0, 2, 1)


# ---------------------------------------------------------------------------- whole signals
def window_starts(n_samples: int, cfg: FeatureConfig) -> np.ndarray:
    """Start sample of every window a signal of ``n_samples`` yields (after short-clip padding)."""
    n = max(n_samples, cfg.window_samples)
    return np.arange(0, n - cfg.window_samples + 1, cfg.window_hop_samples)


def pad_to_window(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Zero-pad a clip shorter than one window at its end (what a stream's flush does too)."""
    y = np.asarray(y, dtype=np.float32)
    if y.shape[-1] >= cfg.window_samples:
        return y
    return np.pad(y, (0, cfg.window_samples - y.shape[-1]))


def signal_windows(y: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Feature vectors of every window of a mono signal at ``cfg.sr``.

    Returns ``(starts, X)``: window start samples ``(n_windows,)`` and vectors
    ``(n_windows, n_features)``. Windows start at multiples of the window hop; a clip shorter
    than a window is zero-padded to one window; a tail shorter than a hop is not scored.
    A long signal is analysed ``WINDOW_CHUNK`` windows at a time, so memory stays flat.
    """
    y = pad_to_window(y, cfg)
    starts = window_starts(y.shape[-1], cfg)
    an, F, step = _analyzer(cfg), cfg.frames_per_window, cfg.frames_per_window_hop
    X = np.empty((len(starts), n_features(cfg)), np.float32)
    for w0 in range(0, len(starts), WINDOW_CHUNK):
        w1 = min(w0 + WINDOW_CHUNK, len(starts))
        # the frames of windows w0..w1-1 (neighbouring chunks share F - step frames)
        first, n_frames = w0 * step, (w1 - w0 - 1) * step + F
        span = y[first * cfg.hop_length:(first + n_frames - 1) * cfg.hop_length + cfg.n_fft]
        rows = an.frame_rows(span)
        windows = np.lib.stride_tricks.sliding_window_view(rows, F, axis=0)[::step]
        X[w0:w1] = window_vectors(np.swapaxes(windows, 1, 2), cfg)
    return starts, X


# windows per pass of signal_windows: whole-signal temporaries (float64, ~50 KB per window)
# were page-faulted in afresh for every long signal, doubling its cost; 64 keeps them reused
WINDOW_CHUNK = 64


def block_windows(blocks, cfg: FeatureConfig, max_windows: int = 4 * WINDOW_CHUNK):
    """:func:`signal_windows` of a signal that arrives as consecutive blocks ``(n,)`` at
    ``cfg.sr`` (e.g. :func:`features.audio.read_audio_blocks`): yields ``(starts, X)`` for up
    to ``max_windows`` windows at a time, as soon as their samples are in, holding only those
    samples. Concatenated, the parts equal :func:`signal_windows` on the whole signal
    (``starts`` count from the signal's first sample); no block at all yields nothing.
    """
    W, hop = cfg.window_samples, cfg.window_hop_samples
    span, step = (max_windows - 1) * hop + W, max_windows * hop
    pending, held, base = [], 0, 0  # unused blocks, their samples, the first one's index
    for block in blocks:
        pending.append(np.asarray(block, dtype=np.float32))
        held += pending[-1].shape[0]
        if held < span:
            continue
        y = np.concatenate(pending)
        while y.shape[0] >= span:
            starts, X = signal_windows(y[:span], cfg)
            yield base + starts, X
            y, base = y[step:], base + step
        pending, held = [y], y.shape[0]
    if held and (base == 0 or held >= W):  # a whole signal shorter than one window is padded
        starts, X = signal_windows(np.concatenate(pending), cfg)
        yield base + starts, X


def batch_windows(signals, cfg: FeatureConfig, chunk: int = 32):
    """:func:`signal_windows` for many signals, vectorised across them (the offline fast path).

    Returns ``(owner, starts, X)``: for each window the index of its signal, its start sample
    and its vector, grouped by signal in input order. Short signals are analysed together, up
    to ``chunk`` signals or ``WINDOW_CHUNK`` windows per pass, and a longer signal on its own
    through :func:`signal_windows`, so memory stays flat whatever the recordings' lengths;
    vectors equal :func:`signal_windows` on each signal.
    """
    owners, starts_all, out = [], [], []
    group, n_windows = [], 0  # (slot in out, frames, starts) of short signals awaiting a pass
    for i, y in enumerate(signals):
        y = pad_to_window(y, cfg)
        starts = window_starts(y.shape[-1], cfg)
        owners.append(np.full(len(starts), i))
        starts_all.append(starts)
        if len(starts) > WINDOW_CHUNK:
            out.append(signal_windows(y, cfg)[1])
            continue
        group.append((len(out), sp.frame(y, cfg.n_fft, cfg.hop_length), starts))
        out.append(None)
        n_windows += len(starts)
        if len(group) == chunk or n_windows >= WINDOW_CHUNK:
            _analyze_group(group, cfg, out)
            group, n_windows = [], 0
    _analyze_group(group, cfg, out)
    if not out:
        return np.zeros(0, int), np.zeros(0, int), np.zeros((0, n_features(cfg)), np.float32)
    return np.concatenate(owners), np.concatenate(starts_all), np.concatenate(out)


def _analyze_group(group, cfg: FeatureConfig, out: list) -> None:
    """One vectorised pass over short signals' frames; each signal's vectors go to its slot."""
    if not group:
        return
    F, index, base = cfg.frames_per_window, [], 0
    for _, frames, starts in group:
        index.append(base + (starts // cfg.hop_length)[:, None] + np.arange(F)[None, :])
        base += frames.shape[0]
    rows = _analyzer(cfg).analyze(np.concatenate([frames for _, frames, _ in group]))
    X = window_vectors(rows[np.concatenate(index)], cfg)
    lo = 0
    for slot, _, starts in group:
        out[slot], lo = X[lo:lo + len(starts)], lo + len(starts)


def clip_vector(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """One vector for a whole clip: all its frames aggregated as one window (padded if short)."""
    y = pad_to_window(y, cfg)
    rows = _analyzer(cfg).frame_rows(y)
    return window_vectors(rows[None], cfg)[0]


def gather_frames(taken: list, cfg: FeatureConfig) -> np.ndarray:
    """The frames of many :meth:`IncrementalFeatures.take_samples` results, in order, as one
    float32 array ``(sum of n, n_fft)``: every stream's pieces go into one buffer, each stream
    starting on a multiple of ``hop_length``, so all frames are rows of one strided view and
    one gather copies them (1.0 ms for 256 chunks of 100 ms, against 1.1 for a concatenation
    and a frame view per stream and then a concatenation of them all)."""
    hop, pieces, starts, counts, at = cfg.hop_length, [], [], [], 0
    for parts, n in taken:
        length = 0
        for part in parts:
            if part.shape[0]:
                pieces.append(part)
                length += part.shape[0]
        if n:
            starts.append(at // hop)
            counts.append(n)
        pad = -length % hop
        if pad:
            pieces.append(np.zeros(pad, np.float32))
        at += length + pad
    if not counts:
        return np.empty((0, cfg.n_fft), np.float32)
    frames = sp.frame(np.concatenate(pieces), cfg.n_fft, hop)
    counts = np.asarray(counts)
    rows = np.arange(counts.sum()) + np.repeat(np.asarray(starts) - (np.cumsum(counts) - counts),
                                               counts)
    return frames[rows]


class IncrementalFeatures:
    """Streaming features for one stream: push samples, get the vectors of completed windows.

    Each pushed hop costs only the STFT frames it completes; frame rows live in a ring of one
    window's frames, from which a completed window is copied out in order.
    Windows start at stream sample 0 and every window hop, exactly as :func:`signal_windows`.
    Memory: ``frames_per_window * width`` float32 plus ``n_fft`` samples.
    """

    def __init__(self, cfg: FeatureConfig):
        self.cfg = cfg
        self.analyzer = _analyzer(cfg)
        self._cap = cfg.frames_per_window
        self._step = cfg.frames_per_window_hop  # (a computed property: read once)
        self._rows = np.zeros((self._cap, self.analyzer.layout.width), dtype=np.float32)
        self._tail = np.zeros(0, dtype=np.float32)  # samples not yet consumed by a full frame
        self.samples_seen = 0
        self.frames_done = 0
        self.windows_done = 0

    def push(self, samples: np.ndarray) -> list:
        """Add mono float32 samples; return ``[(window_start_sample, vector), ...]`` completed."""
        frames = gather_frames([self.take_samples(samples)], self.cfg)
        ready = self.add_rows(self.analyzer.analyze(frames))
        if not ready:
            return []
        X = window_vectors(np.stack([w for _, w in ready]), self.cfg)
        return list(zip([s for s, _ in ready], X))

    # The two halves of push (with gather_frames between them), for callers that analyse many
    # streams' frames in one call (the engine): frames are independent, so batching changes
    # no number.
    def take_samples(self, samples: np.ndarray) -> tuple[tuple, int]:
        """Consume samples; return ``(pieces, n)``: the ``n`` frames they complete are the first
        ``n`` frames (hop ``hop_length``) of the pieces laid end to end, which the caller reads
        (:func:`gather_frames`) before ``samples`` changes. No copy of ``samples`` here: a
        consumer gathers hundreds of streams' frames in one pass."""
        cfg = self.cfg
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.samples_seen += samples.shape[0]
        tail, length = self._tail, self._tail.shape[0] + samples.shape[0]
        n = 1 + (length - cfg.n_fft) // cfg.hop_length if length >= cfg.n_fft else 0
        used = n * cfg.hop_length  # samples no later frame starts in
        if used >= tail.shape[0]:
            self._tail = samples[used - tail.shape[0]:].copy()
        else:
            self._tail = np.concatenate([tail[used:], samples])
        return (tail, samples), n

    def add_rows(self, rows: np.ndarray) -> list:
        """Store analysed frame rows; return ``[(window_start_sample, window_rows), ...]``."""
        cfg, F, step = self.cfg, self._cap, self._step
        out, done, n = [], 0, rows.shape[0]
        while done < n:
            # write up to the end of the next window (or all rows), then cut that window out
            # before later rows overwrite its first frames
            next_end = self.windows_done * step + F  # frame count that completes it
            upto = min(n, done + next_end - self.frames_done)  # >= done + 1
            self._write(rows[done:upto])
            done = upto
            if self.frames_done == next_end:
                out.append(((next_end - F) * cfg.hop_length, self._window()))
                self.windows_done += 1
        return out

    def _write(self, rows: np.ndarray) -> None:
        """Ring update: frame i at position i % F."""
        F = self._cap
        keep = rows[-F:]  # older rows would be overwritten within this call anyway
        pos = (self.frames_done + len(rows) - len(keep)) % F
        head = min(len(keep), F - pos)
        self._rows[pos:pos + head] = keep[:head]
        if head < len(keep):  # wrapped: the rest starts at ring position 0
            self._rows[:len(keep) - head] = keep[head:]
        self.frames_done += len(rows)

    def _window(self) -> np.ndarray:
        """A copy of the last F frame rows, oldest first (the ring holds exactly those)."""
        lo = self.frames_done % self._cap  # the oldest frame's position
        if lo == 0:
            return self._rows.copy()
        return np.concatenate((self._rows[lo:], self._rows[:lo]))

    def flush(self) -> list:
        """End of stream: zero-pad so a stream shorter than one window still yields one."""
        if self.windows_done == 0 and self.samples_seen < self.cfg.window_samples:
            return self.push(np.zeros(self.cfg.window_samples - self.samples_seen, np.float32))
        return []

    @property
    def nbytes(self) -> int:
        return self._rows.nbytes + self._tail.nbytes
