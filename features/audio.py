"""Reading audio files: any format libsndfile decodes, downmixed to mono, resampled, float32.

Every failure is an :class:`AudioError` whose message is one line naming the file and the problem,
so a CLI can print it as is and a library caller can catch one type.
"""
from __future__ import annotations

import math
import os
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from .spectral import frame

MIN_SAMPLE_RATE = 1_000  # Hz; below this nothing we classify is audible
MAX_SAMPLE_RATE = 768_000  # Hz; the highest rate real converters ship
DECODE_BLOCK = 1 << 18  # frames decoded and downmixed at a time (5.5 s at 48 kHz)


class AudioError(ValueError):
    """A file (or message) that cannot be turned into audio samples. ``str()`` is one line."""

    def __init__(self, source, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, before decoding: container, encoding, rate (Hz), channels, seconds."""

    path: str
    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
                    ".au", ".w64", ".rf64", ".caf")
# audio libsndfile does not decode: listed with the rest, so that a folder of them is reported
# file by file (how to convert them) rather than quietly left out of a training set
UNDECODABLE_EXTENSIONS = (".m4a", ".mp4", ".aac", ".wma", ".amr", ".3gp", ".webm", ".mka",
                          ".ac3", ".ape", ".wv")


def no_audio_files(folder: str) -> str:
    """The one-line problem of a folder in which :func:`audio_files` finds nothing."""
    return f"{folder}: no audio files ({', '.join(AUDIO_EXTENSIONS)})"


def is_hidden(name: str) -> bool:
    """Names a file listing leaves out: dot-files and folders, and macOS archive debris
    (``__MACOSX/``, ``._x.wav`` resource forks -- not audio, despite the extension)."""
    return name.startswith(".") or name == "__MACOSX"


def audio_files(folder: str):
    """Paths of the audio files (by extension: ``AUDIO_EXTENSIONS``, and the
    ``UNDECODABLE_EXTENSIONS`` reading will report) anywhere under ``folder``, hidden ones
    (:func:`is_hidden`) left out."""
    for dirpath, dirnames, names in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for n in names:
            if n.lower().endswith(AUDIO_EXTENSIONS + UNDECODABLE_EXTENSIONS) and \
                    not is_hidden(n):
                yield os.path.join(dirpath, n)


def check_sample_rate(sr, source="audio") -> int:
    """Return ``sr`` as int if it is a plausible audio rate, else raise :class:`AudioError`."""
    try:
        value = float(sr)
    except (TypeError, ValueError):
        raise AudioError(source, f"sample rate {sr!r} is not a number") from None
    if not math.isfinite(value) or value != int(value) or not (
        MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE
    ):
        raise AudioError(
            source,
            f"absurd sample rate {sr!r} Hz (expected an integer in "
            f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE})",
        )
    return int(value)


def audio_info(path) -> AudioInfo:
    """Header information of an audio file, validated (exists, non-empty, decodable, sane rate)."""
    fh, info = _open(_existing_file(path))
    fh.close()
    return info


def _existing_file(path) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(path, "no such file")
    if os.path.isdir(path):
        raise AudioError(path, "is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioError(path, "empty file (0 bytes)")
    return path


def _checked_info(path: str, fh) -> AudioInfo:
    check_sample_rate(fh.samplerate, path)
    if fh.channels < 1:
        raise AudioError(path, f"invalid channel count {fh.channels}")
    return AudioInfo(path, fh.format, fh.subtype, int(fh.samplerate), int(fh.channels),
                     int(fh.frames))


def read_audio(path, sr: int | None = 16_000) -> tuple[np.ndarray, int]:
    """Decode ``path`` to mono float32 in [-1, 1] at ``sr`` Hz (``None`` keeps the file's rate).

    Returns ``(y, sr)`` with ``y.shape == (n_samples,)``. Channels are averaged; resampling is
    :func:`resample` (scipy's polyphase result). Raises :class:`AudioError` for missing, empty,
    non-audio, truncated, zero-length or non-finite input and absurd rates.
    """
    path = _existing_file(path)
    fh, info = _open(path)  # one open: header checks and decoding share it
    with fh:
        y = _decode_whole(path, fh, info)
    if sr is None:
        return y, info.sample_rate
    target = check_sample_rate(sr, "target")
    return resample(y, info.sample_rate, target), target


def read_audio_blocks(path, sr: int = 16_000, block_frames: int | None = None):
    """:func:`read_audio` a block at a time, for recordings too long to hold: yields
    consecutive mono float32 blocks ``(n,)`` at ``sr`` Hz, each from at most ``block_frames``
    (default ``DECODE_BLOCK``) of the file's frames, so memory does not grow with the
    recording's length.

    Concatenated, the blocks are :func:`read_audio`'s samples: a file of up to
    ``block_frames`` frames is one block, exactly those; a longer one's are the same at the
    file's own rate and, resampled block by block as a live stream is
    (``features.resample.StreamResampler``), the same to float32 rounding. The same files
    raise the same :class:`AudioError`; a problem only decoding finds (NaN, a short file) is
    raised when its block is reached, after the blocks before it.
    """
    from .resample import StreamResampler

    path = _existing_file(path)
    target = check_sample_rate(sr, "target")
    block_frames = block_frames or DECODE_BLOCK
    fh, info = _open(path)
    with fh:
        if 0 < info.frames <= block_frames:  # a clip: whole, as cheap as read_audio
            y = _decode_whole(path, fh, info)
            yield resample(y, info.sample_rate, target)
            return
        resampler = None if info.sample_rate == target else \
            StreamResampler(info.sample_rate, target)
        n = 0
        for y in _decoded_blocks(path, fh, block_frames):
            n += y.shape[0]
            if resampler is not None:
                y = resampler.process(y)
            if y.shape[0]:
                yield y
    _check_length(path, n, info)
    if resampler is not None:
        tail = resampler.flush()
        if tail.shape[0]:
            yield tail


def _decoded_blocks(path: str, fh, block_frames: int):
    """Mono float32 blocks ``(n,)`` of an open file from its position on, at its own rate;
    NaN or infinite samples are an :class:`AudioError`. Decoder notes are hidden per call,
    never while the caller works."""
    while True:
        with _decoder_notes_hidden(path):
            try:
                block = fh.read(block_frames, dtype="float32", always_2d=True)
            except Exception as exc:
                raise AudioError(path, f"corrupt or truncated audio ({_one_line(exc)})"
                                 ) from None
        if block.shape[0] == 0:
            return
        y = to_mono(block)
        if not np.isfinite(y).all():
            raise AudioError(path, "contains NaN or infinite samples")
        yield y


SEEKABLE_FORMATS = {"WAV", "WAVEX", "W64", "RF64", "AIFF", "AU", "CAF", "FLAC"}  # exact seeks


def read_audio_segment(path, sr: int = 16_000, start: float = 0.0,
                       seconds: float | None = None) -> np.ndarray:
    """Seconds ``start`` to ``start + seconds`` (to the end with ``None``) of ``path`` at
    ``sr`` Hz, mono float32 ``(n,)``: the samples :func:`read_audio` gives there (resampled
    ones to float32 rounding), with only that part held. WAV-like and FLAC files are sought
    to the segment (a resampled one to the first input its filter reads); other formats are
    decoded from their start. Raises :class:`AudioError` as reading does, and for a start
    past the end."""
    from .resample import StreamResampler

    first = int(round(start * sr))
    stop = None if seconds is None else first + int(round(seconds * sr))
    path = _existing_file(path)
    target = check_sample_rate(sr, "target")
    fh, info = _open(path)
    with fh:
        resampler = None if info.sample_rate == target else \
            StreamResampler(info.sample_rate, target, start=first)
        begin = first if resampler is None else resampler.start_input
        if info.frames > 0 and begin >= info.frames:
            raise AudioError(path, f"a part from {start:g} s starts at or past its end "
                                   f"({info.duration:.2f} s)")
        if first and info.format in SEEKABLE_FORMATS and begin >= 0:
            try:
                fh.seek(begin)
            except Exception as exc:
                raise AudioError(path, f"cannot seek to {start:g} s ({_one_line(exc)})"
                                 ) from None
            blocks = _resampled(_decoded_blocks(path, fh, DECODE_BLOCK), resampler)
            seen = first
        else:
            fh.close()
            blocks, seen = read_audio_blocks(path, sr=target), 0
        parts = []
        for block in blocks:
            lo = max(first - seen, 0)
            hi = len(block) if stop is None else min(stop - seen, len(block))
            if hi > lo:
                parts.append(block[lo:hi])
            seen += len(block)
            if stop is not None and seen >= stop:
                break
    if not parts:
        end = seen / sr if seen > first or not info.frames else info.duration
        raise AudioError(path, f"a part from {start:g} s starts at or past its end "
                               f"({end:.2f} s)")
    return np.concatenate(parts)


def _resampled(blocks, resampler):
    """``blocks`` through ``resampler`` (None: as they are), then its last outputs."""
    for y in blocks:
        y = resampler.process(y) if resampler is not None else y
        if y.shape[0]:
            yield y
    if resampler is not None:
        tail = resampler.flush()
        if tail.shape[0]:
            yield tail


def _open(path: str):
    """``(SoundFile, AudioInfo)`` of a file libsndfile can open and whose header is sane."""
    import soundfile as sf

    with _decoder_notes_hidden(path):
        try:
            fh = sf.SoundFile(path)
        except Exception as exc:  # libsndfile reports format problems as several exception types
            raise _unreadable(path, exc) from None
    try:
        return fh, _checked_info(path, fh)
    except AudioError:
        fh.close()
        raise


def _decode_whole(path: str, fh, info: AudioInfo) -> np.ndarray:
    """All of an open file's audio, mono float32 at its own rate, checked."""
    with _decoder_notes_hidden(path):
        try:
            y = _decode_mono(fh, info.frames)
        except Exception as exc:
            raise AudioError(path, f"corrupt or truncated audio ({_one_line(exc)})") from None
    _check_length(path, y.shape[0], info)
    if not np.isfinite(y).all():
        raise AudioError(path, "contains NaN or infinite samples")
    return y


def _check_length(path: str, n: int, info: AudioInfo) -> None:
    """Refuse a file that decoded to nothing, or to fewer frames than its header says."""
    if n == 0:
        raise AudioError(path, "no audio samples after decoding (zero length)")
    declared = _declared_riff_frames(path)
    if declared is not None and declared > n:
        raise AudioError(path, f"truncated: header promises {declared} frames, file holds {n}")
    if info.frames > 0 and n < info.frames:
        raise AudioError(path, f"truncated: header promises {info.frames} frames, decoded {n}")


# libmpg123 (MP3 inside libsndfile) prints its own notes on a damaged stream to file descriptor
# 2 ("Note: Trying to resync...", "Warning: Xing stream size off..."), around our one-line
# error or a file that decoded fine; these are the prefixes of its lines
_MPG123_EXTENSIONS = (".mp3", ".mp2", ".mp1", ".mpga", ".mpeg")
_MPG123_LINES = (b"Note: ", b"Warning: ", b"[src/libmpg123", b"Error: ")
_stderr_lock = threading.Lock()


@contextmanager
def _decoder_notes_hidden(path: str):
    """While decoding an MPEG file, send descriptor 2 to a temporary file, then write back
    whatever is not libmpg123's (another thread's output) -- a process-wide redirection, so
    one at a time."""
    if not path.lower().endswith(_MPG123_EXTENSIONS):
        yield
        return
    import tempfile

    with _stderr_lock, tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            others = [line for line in caught.read().splitlines(keepends=True)
                      if not line.startswith(_MPG123_LINES)]
            if others:
                os.write(2, b"".join(others))


def _decode_mono(fh, frames: int) -> np.ndarray:
    """All of an open file's audio as mono float32, decoded ``DECODE_BLOCK`` frames at a time
    into one array, so a long multichannel recording never exists at full width (a 20-minute
    48 kHz stereo WAV peaked at 1.2 GB read whole)."""
    if fh.channels == 1:
        return fh.read(dtype="float32")  # (n,) already: no second copy
    if frames <= 0:  # length unknown to the header
        return to_mono(fh.read(dtype="float32", always_2d=True))
    # the header's count, within reason: some formats report a sentinel for "unknown"
    y = np.empty(min(frames, 1 << 27), np.float32)
    n = 0
    for block in fh.blocks(blocksize=DECODE_BLOCK, dtype="float32", always_2d=True):
        if n + block.shape[0] > y.shape[0]:  # more than the header said: grow
            y = np.concatenate([y[:n], np.empty(max(block.shape[0], n), np.float32)])
        y[n:n + block.shape[0]] = to_mono(block)
        n += block.shape[0]
    return y[:n]


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average channels: ``(n_samples, n_channels)`` or ``(n_samples,)`` -> float32 ``(n_samples,)``."""
    data = np.asarray(data)
    if data.ndim == 1:
        return data.astype(np.float32, copy=False)
    if data.shape[1] == 1:
        return np.ascontiguousarray(data[:, 0], dtype=np.float32)
    return data.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling of a whole signal ``(..., n_samples)``; float32 out, same rate is a no-op.

    The zero-phase result of ``scipy.signal.resample_poly(y, up, down)`` with its default
    Kaiser (beta 5) low-pass, computed in float32 as scipy does for float32 input (identical
    for ratios like 2 or 1/3, within float32 rounding otherwise), without importing
    scipy.signal: that import alone took ~0.6 s in every worker process.
    """
    y = np.asarray(y, dtype=np.float32)
    if orig_sr == target_sr:
        return y
    ratio = Fraction(int(target_sr), int(orig_sr))
    up, down = ratio.numerator, ratio.denominator
    if y.size == 0:
        return np.zeros(y.shape[:-1] + (-(-y.shape[-1] * up // down),), np.float32)
    rows = y.reshape(-1, y.shape[-1])
    out = np.stack([_resample_row(r, up, down) for r in rows])
    return out.reshape(y.shape[:-1] + (out.shape[-1],))


RESAMPLE_CHUNK = 1 << 18  # output samples per pass (16 s at 16 kHz): bounded temporaries


def _resample_row(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """:func:`resample` of one row, ``RESAMPLE_CHUNK`` outputs at a time, each pass from a
    zero-padded copy of just the inputs it reads."""
    n_in = x.shape[0]
    n_out = -(-n_in * up // down)
    out = np.empty(n_out, np.float32)
    for a in range(0, n_out, RESAMPLE_CHUNK):
        b = min(a + RESAMPLE_CHUNK, n_out)
        lo, hi = resample_inputs(a, b, up, down)
        xp = np.zeros(hi - lo, np.float32)  # inputs lo..hi-1, zeros outside the signal
        xp[max(0, -lo):min(hi, n_in) - lo] = x[max(lo, 0):min(hi, n_in)]
        out[a:b] = resample_outputs(xp, lo, a, b, up, down)
    return out


def resample_taps(up: int, down: int) -> tuple[int, int]:
    """``(taps per output, half)`` of :func:`resample`'s filter for the ratio ``up/down``:
    output ``m`` reads inputs ``(m*down + half) // up - taps + 1`` to ``(m*down + half) // up``."""
    weights, half = _phase_weights(up, down)
    return weights.shape[1], half


def resample_inputs(a: int, b: int, up: int, down: int) -> tuple[int, int]:
    """Input indices ``lo..hi-1`` that outputs ``a..b-1`` of :func:`resample` read (``lo`` may be
    negative: the signal is zero before its start and after its end)."""
    taps, half = resample_taps(up, down)
    return (a * down + half) // up - taps + 1, ((b - 1) * down + half) // up + 1


def resample_outputs(xp: np.ndarray, lo: int, a: int, b: int, up: int, down: int) -> np.ndarray:
    """Outputs ``a..b-1`` of :func:`resample` (rate ratio ``up/down``) from ``xp``, the inputs
    ``lo..`` (at least to ``resample_inputs(a, b)[1]``), float32.

    ``y[m] = sum_j x[j] * up * h[half + m*down - j*up]`` (no zero-stuffing, no discarded
    outputs), computed one of three ways: a span under ``BLOCK_PATH_OUTPUTS`` holding two or
    more whole blocks (:func:`resample_block`, downsampling only) as one matrix product; a span
    with few outputs per phase as one gather of every output's taps; otherwise one output
    phase at a time, each phase a matrix-vector product over a strided view (its outputs read
    the input at a fixed stride). Any split into spans gives the same samples to float32
    rounding (BLAS may sum a row differently; within 5e-7), so a stream resampled block by
    block equals the whole signal resampled.
    """
    weights, half = _phase_weights(up, down)
    K = weights.shape[1]  # taps per phase
    xp = np.asarray(xp, dtype=np.float32)
    block = resample_block(up, down)
    if b - a < BLOCK_PATH_OUTPUTS:  # a stream's chunk or a short clip
        c0, c1 = -(-a // block), b // block  # the whole blocks in a..b-1
        if c1 - c0 >= 2 and block > 1:
            return _block_outputs(xp, lo, a, b, c0, c1, up, down, block)
    if b - a < 64 * up:  # few outputs per phase: one gather, not `up` products
        v = np.arange(a, b) * down + half
        taps = xp[(v // up - K + 1 - lo)[:, None] + np.arange(K)]
        return np.einsum("nk,nk->n", taps, weights[v % up])
    out = np.empty(b - a, np.float32)
    inverse = pow(down, -1, up) if up > 1 else 0
    for phase in range(up):
        m0 = ((phase - half) * inverse) % up if up > 1 else 0  # its outputs: m0 + k*up
        first_m = a + (m0 - a) % up  # the phase's first output in a..b-1
        if first_m >= b:
            continue
        first = (first_m * down + half) // up - K + 1 - lo  # xp index of its oldest tap
        count = (b - 1 - first_m) // up + 1
        out[first_m - a::up] = frame(xp[first:], K, down)[:count] @ weights[phase]
    return out


BLOCK_PATH_OUTPUTS = 1 << 16  # spans shorter than this (4 s at 16 kHz) go block by block
BLOCK_MATRIX_MAX = 1 << 20  # elements (4 MB) of the largest block matrix built
MIN_BLOCK = 16  # outputs: a block spans several short cycles (48 -> 16 kHz: one output each)


@lru_cache(maxsize=32)
def resample_block(up: int, down: int) -> int:
    """Outputs per block of :func:`resample_outputs`' matrix-product path (1: none): whole
    cycles of ``up`` outputs, at least ``MIN_BLOCK``. A span of whole blocks (two or more)
    is one matrix product, with nothing gathered.

    Downsampling only: upsampled audio's top band is the filter's stop band, whose quietest
    bins are float32 rounding noise -- and spectral contrast's valleys and the top mel bands
    see them. An upsampling stream keeps the per-phase products the offline path uses; the
    block product's different rounding moved 8 kHz streams' ``contrast5_std`` by 0.65% of its
    scale against ``predict`` (the engine test allows 0.01%)."""
    if up >= down:
        return 1
    block = up * -(-MIN_BLOCK // up)
    span = (block // up) * down + resample_taps(up, down)[0]
    return block if block * span <= BLOCK_MATRIX_MAX else 1


def _block_outputs(xp, lo, a, b, c0, c1, up, down, block) -> np.ndarray:
    """:func:`resample_outputs` for a span holding whole blocks ``c0..c1-1``.

    Every ``up`` outputs the filter reads the same input pattern again, ``down`` inputs on, so
    whole blocks of cycles are one matrix product: a strided view with a block's inputs per
    row times :func:`_block_matrix` (mostly zeros, yet ~3x faster than gathering each output's
    taps at 44.1 kHz, or than one strided product per phase at 48 kHz). Partial blocks at
    either end go the other ways.
    """
    H, first = _block_matrix(up, down, block)
    step = (block // up) * down  # inputs from one block to the next
    out = np.empty(b - a, np.float32)
    if c0 * block > a:
        out[:c0 * block - a] = resample_outputs(xp, lo, a, c0 * block, up, down)
    rows = np.lib.stride_tricks.as_strided(
        xp[c0 * step + first - lo:], shape=(c1 - c0, H.shape[0]),
        strides=(step * xp.strides[0], xp.strides[0]), writeable=False)
    out[c0 * block - a:c1 * block - a] = (rows @ H).reshape(-1)
    if b > c1 * block:
        out[c1 * block - a:] = resample_outputs(xp, lo, c1 * block, b, up, down)
    return out


@lru_cache(maxsize=8)
def _block_matrix(up: int, down: int, block: int) -> tuple[np.ndarray, int]:
    """``(H, first)``: output ``c*block + p`` is ``x[c*step + first : ...] @ H[:, p]`` (step =
    the block's inputs); H is ``(span, block)`` float32, each output's phase weights placed at
    its inputs within the span."""
    weights, half = _phase_weights(up, down)
    K = weights.shape[1]
    p = np.arange(block)
    oldest = (p * down + half) // up - K + 1  # output p's oldest input (block 0)
    first = int(oldest[0])
    H = np.zeros((int(oldest[-1]) + K - first, block), np.float32)
    for q in range(block):
        H[oldest[q] - first:oldest[q] - first + K, q] = weights[(q * down + half) % up]
    H.flags.writeable = False
    return H, first


@lru_cache(maxsize=32)
def _phase_weights(up: int, down: int) -> tuple[np.ndarray, int]:
    """The filter split into ``up`` phases, ``weights[p, k]`` multiplying
    ``x[j_last - K + 1 + k]`` (``j_last = (m*down + half) // up``), and the filter's half length."""
    h = _polyphase_filter(up, down)
    K = -(-len(h) // up)
    padded = np.zeros(K * up, np.float32)
    padded[: len(h)] = h.astype(np.float32) * np.float32(up)
    weights = np.ascontiguousarray(padded.reshape(K, up).T[:, ::-1])
    weights.flags.writeable = False
    return weights, (len(h) - 1) // 2


@lru_cache(maxsize=32)
def _polyphase_filter(up: int, down: int) -> np.ndarray:
    """The low-pass FIR ``resample_poly`` designs by default (``firwin``, Kaiser beta 5, 10
    zero crossings per side): designed once per rate pair, not once per file."""
    max_rate = max(up, down)
    h = lowpass_fir(2 * 10 * max_rate + 1, 1.0 / max_rate, beta=5.0)
    h.flags.writeable = False
    return h


def lowpass_fir(n_taps: int, cutoff: float, beta: float) -> np.ndarray:
    """Windowed-sinc low-pass, ``cutoff`` relative to Nyquist, Kaiser window, unit DC gain:
    ``scipy.signal.firwin(n_taps, cutoff, window=("kaiser", beta))``. float64 ``(n_taps,)``."""
    m = np.arange(n_taps) - (n_taps - 1) / 2
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(n_taps, beta)
    return h / h.sum()


def level_dbfs(y: np.ndarray) -> tuple[float, float]:
    """(peak dBFS, RMS dBFS) of a float signal in [-1, 1]; digital silence reads -inf."""
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return -math.inf, -math.inf
    peak = float(np.max(np.abs(y)))
    rms = float(np.sqrt(np.mean(y * y)))
    to_db = lambda v: 20 * math.log10(v) if v > 0 else -math.inf  # noqa: E731
    return to_db(peak), to_db(rms)


def write_wav(path, y: np.ndarray, sr: int, subtype: str = "PCM_16") -> None:
    """Write mono or ``(n_samples, n_channels)`` float audio as WAV (clipped to [-1, 1])."""
    import soundfile as sf

    sf.write(os.fspath(path), np.clip(np.asarray(y, dtype=np.float32), -1, 1), int(sr),
             subtype=subtype)


def _declared_riff_frames(path: str) -> int | None:
    """Frames a RIFF/WAVE header's data chunk declares, or None for other formats.

    libsndfile quietly shortens a WAV cut off mid-data to what is on disk, so truncation is
    caught by comparing with the header's own claim.
    """
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = fh.read(size)
                    if len(fmt) >= 14:
                        block_align = struct.unpack("<H", fmt[12:14])[0]
                    if size % 2:
                        fh.read(1)
                elif cid == b"data":
                    if not block_align or size == 0xFFFFFFFF:  # unknown / streaming size
                        return None
                    return size // block_align
                else:
                    fh.seek(size + size % 2, 1)
    except OSError:
        return None


def _unreadable(path: str, exc: BaseException) -> AudioError:
    """The error for a file libsndfile cannot open. Its text for data it cannot decode at all
    (random bytes named .mp3) says the file "does not exist or is not a regular file"; the
    file was just checked to exist, so that text would mislead."""
    ext = os.path.splitext(path)[1].lower()
    if ext in UNDECODABLE_EXTENSIONS:
        return AudioError(path, f"{ext} is not a format libsndfile decodes; convert the "
                                f"file first, e.g. ffmpeg -i IN{ext} OUT.flac")
    text = _one_line(exc)
    if "does not exist or is not a regular file" in text:
        text = "unrecognised format or corrupt data"
    return AudioError(path, f"not a readable audio file ({text})")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
