"""The Kafka wire format for audio chunks and predictions.

Audio message
  key      stream id (UTF-8): one stream stays in one partition, in order
  value    raw little-endian PCM, interleaved channels -- or a WAV file (content-type says)
  headers  content-type  audio/pcm (default) | audio/wav
           sample-rate   Hz, decimal             (required for PCM)
           dtype         int16 | int32 | float32 (required for PCM)
           channels      decimal, default 1
           seq           per-stream sequence number, decimal (gaps are counted)
           timestamp     capture time, seconds since the epoch, decimal
           sample-index  index of the chunk's first sample in the stream (optional; lets a
                         restarted consumer keep the window grid)
Prediction message: JSON, see :func:`prediction_message`.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass

import numpy as np

from features.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

DTYPES = {"int16": ("<i2", 32768.0), "int32": ("<i4", 2147483648.0), "float32": ("<f4", 1.0)}
MAX_CHUNK_BYTES = 8 * 1024 * 1024  # a chunk is a fraction of a second, not a recording
MAX_CHUNK_SECONDS = 30.0


class BadMessage(ValueError):
    """An audio message that cannot be used; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}")


@dataclass
class AudioChunk:
    stream_id: str
    samples: np.ndarray  # mono float32
    sample_rate: int
    seq: int | None
    timestamp: float | None
    sample_index: int | None


def encode_audio(stream_id: str, samples: np.ndarray, sample_rate: int, seq: int,
                 dtype: str = "int16", timestamp: float | None = None,
                 sample_index: int | None = None, wav: bool = False):
    """(key, value, headers) for one chunk of mono or ``(n, channels)`` float audio."""
    x = np.asarray(samples, dtype=np.float32)
    channels = 1 if x.ndim == 1 else x.shape[1]
    headers = [("seq", str(seq).encode()), ("channels", str(channels).encode())]
    if timestamp is not None:
        headers.append(("timestamp", repr(float(timestamp)).encode()))
    if sample_index is not None:
        headers.append(("sample-index", str(int(sample_index)).encode()))
    if wav:
        import soundfile as sf
        buf = io.BytesIO()
        sf.write(buf, x, sample_rate, format="WAV", subtype="PCM_16")
        return stream_id.encode(), buf.getvalue(), [("content-type", b"audio/wav")] + headers
    code, scale = DTYPES[dtype]
    if dtype == "float32":
        value = x.astype(code).tobytes()
    else:
        value = np.clip(np.round(x * scale), -scale, scale - 1).astype(code).tobytes()
    headers += [("content-type", b"audio/pcm"), ("sample-rate", str(sample_rate).encode()),
                ("dtype", dtype.encode())]
    return stream_id.encode(), value, headers


def decode_audio(key: bytes | None, value: bytes | None, headers) -> AudioChunk:
    """Validate and decode one audio message; raises :class:`BadMessage`."""
    try:  # the common case in one pass (this runs for every message)
        h = {k: v.decode() for k, v in headers or ()}
    except (UnicodeDecodeError, AttributeError):  # say which header; None values as text
        h = _header_texts(headers)
    if not key:
        raise BadMessage("missing-key", "no stream id in the message key")
    try:
        stream_id = key.decode()
    except UnicodeDecodeError:
        raise BadMessage("bad-key", "stream id (key) is not UTF-8") from None
    if value is None or len(value) == 0:
        raise BadMessage("empty", "no audio bytes")
    if len(value) > MAX_CHUNK_BYTES:
        raise BadMessage("oversized", f"{len(value)} bytes > {MAX_CHUNK_BYTES}")
    seq = _int(h, "seq", required=False)
    ts = _float(h, "timestamp")
    sample_index = _int(h, "sample-index", required=False)
    if sample_index is not None and sample_index < 0:  # it places the chunk in its stream
        raise BadMessage("bad-header", f"sample-index={sample_index} is negative")
    ctype = h.get("content-type", "audio/pcm")
    if ctype == "audio/wav":
        x, rate = _decode_wav(value)
    elif ctype == "audio/pcm":
        rate = _int(h, "sample-rate", required=True)
        dtype = h.get("dtype")
        if dtype is None:
            raise BadMessage("missing-header", "dtype header is required for audio/pcm")
        if dtype not in DTYPES:
            raise BadMessage("unknown-dtype", f"dtype {dtype!r} (expected int16, int32, float32)")
        channels = _int(h, "channels", required=False) or 1
        if not 1 <= channels <= 32:
            raise BadMessage("bad-channels", f"channels={channels}")
        code, scale = DTYPES[dtype]
        frame_bytes = np.dtype(code).itemsize * channels
        if len(value) % frame_bytes:
            raise BadMessage("bad-length", f"{len(value)} bytes is not a multiple of "
                             f"{frame_bytes} ({dtype} x {channels} channels)")
        raw = np.frombuffer(value, dtype=code)
        if channels > 1:
            x = raw.reshape(-1, channels).mean(axis=1, dtype=np.float32)
            if scale != 1.0:
                x *= np.float32(1.0 / scale)  # a power of two: exact, as dividing
        elif scale != 1.0:  # converted and scaled in one pass (the same numbers)
            x = np.multiply(raw, np.float32(1.0 / scale), dtype=np.float32)
        else:
            x = raw.copy()  # its own memory, not the message's read-only bytes
    else:
        raise BadMessage("unknown-content-type", f"content-type {ctype!r}")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise BadMessage("bad-sample-rate", f"sample rate {rate} Hz")
    if len(x) / rate > MAX_CHUNK_SECONDS:
        raise BadMessage("oversized", f"{len(x) / rate:.1f} s in one chunk")
    if ctype == "audio/wav" or dtype == "float32":  # integers are always finite
        if not np.isfinite(x).all():
            raise BadMessage("non-finite", "NaN or infinite samples")
    if ctype == "audio/wav":  # a channel column or a mean: contiguous float32 for the engine
        x = np.ascontiguousarray(x, dtype=np.float32)
    return AudioChunk(stream_id, x, rate, seq, ts, sample_index)


def _header_texts(headers) -> dict:
    h = {}
    for k, v in headers or ():
        try:
            h[k] = v.decode() if isinstance(v, (bytes, bytearray)) else str(v)
        except UnicodeDecodeError:
            raise BadMessage("bad-header", f"header {k!r} is not UTF-8") from None
    return h


def _decode_wav(value: bytes):
    import soundfile as sf
    try:
        data, rate = sf.read(io.BytesIO(value), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 -- libsndfile raises several types
        raise BadMessage("undecodable-wav", " ".join(str(exc).split())[:200]) from None
    if data.shape[0] == 0:
        raise BadMessage("empty", "WAV holds no samples")
    return (data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]), int(rate)


def _int(h, name, required):
    if name not in h:
        if required:
            raise BadMessage("missing-header", f"{name} header is required")
        return None
    try:
        return int(h[name])
    except ValueError:
        raise BadMessage("bad-header", f"{name}={h[name]!r} is not an integer") from None


def _float(h, name):
    if name not in h:
        return None
    try:
        v = float(h[name])
    except ValueError:
        raise BadMessage("bad-header", f"{name}={h[name]!r} is not a number") from None
    if not math.isfinite(v):
        raise BadMessage("bad-header", f"{name} is not finite")
    return v


def prediction_message(pred, model_name: str, model_digest: str, offsets: list,
                       drift_state: str | None = None) -> bytes:
    """JSON for the predictions topic. ``offsets``: [[topic, partition, first, last], ...]."""
    d = pred.to_json()
    d.update(model=model_name, model_digest=model_digest, offsets=offsets)
    if drift_state is not None:
        d["drift"] = drift_state
    return json.dumps(d).encode()
