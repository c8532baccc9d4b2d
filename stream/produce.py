"""`audioclf produce`: publish audio files (or the microphone) in the wire format."""
from __future__ import annotations

import time

import numpy as np

from features import AudioError, audio_info, read_audio

from .kafka_io import make_producer
from .wire import encode_audio


def produce_samples(producer, topic: str, stream_id: str, y: np.ndarray, sr: int,
                    chunk_ms: float = 100.0, dtype: str = "int16", realtime: bool = False,
                    wav: bool = False, start_seq: int = 0, start_index: int = 0) -> int:
    """Send ``y`` as consecutive chunks; returns the next sequence number."""
    n = max(1, int(sr * chunk_ms / 1000))
    t0 = time.monotonic()
    seq = start_seq
    for i in range(0, len(y), n):
        if realtime:
            delay = t0 + i / sr - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        key, value, headers = encode_audio(stream_id, y[i:i + n], sr, seq, dtype=dtype,
                                           timestamp=time.time(), sample_index=start_index + i,
                                           wav=wav)
        producer.send(topic, key=key, value=value, headers=headers)
        seq += 1
    return seq


def produce_files(opts: dict, topic: str, stream_id: str, files, chunk_ms=100.0,
                  dtype="int16", realtime=False, wav=False, sr=None) -> dict:
    """Publish ``files`` back to back as one stream, at ``sr`` (default: the first file's rate;
    the others are resampled to it, so the stream has one rate and one sample index). Every
    file's header is checked before anything is sent: a bad file is reported, not half a stream
    published. A file is decoded whole before its first chunk is sent, so one whose body turns
    out corrupt stops the stream at the end of the file before it, and the error says so."""
    infos = [audio_info(path) for path in files]
    sr = sr or (infos[0].sample_rate if infos else None)
    producer = make_producer(opts)
    seq, index, seconds = 0, 0, 0.0
    try:
        for done, path in enumerate(files):
            try:
                y, rate = read_audio(path, sr=sr)
            except AudioError as exc:
                if not done:
                    raise
                producer.flush()
                raise AudioError(exc.source, f"{exc.problem}; stream {stream_id} stops before "
                                 f"it: {done} file(s) before it were published ({seq} "
                                 f"messages, {seconds:.1f} s)") from None
            seq = produce_samples(producer, topic, stream_id, y, rate, chunk_ms, dtype,
                                  realtime, wav, seq, index)
            index += len(y)
            seconds += len(y) / rate
        producer.flush()
    finally:
        producer.close(timeout=10)
    return {"messages": seq, "audio_seconds": round(seconds, 3)}


def produce_mic(opts: dict, topic: str, stream_id: str, device=None, rate=None,
                chunk_ms=100.0, dtype="int16", seconds=None) -> dict:
    from .sources import MicSource

    producer = make_producer(opts)
    mic = MicSource(device, rate)
    mic.start()
    seq, index, t0 = 0, 0, time.monotonic()
    n = int(mic.rate * chunk_ms / 1000)
    pending = np.zeros(0, np.float32)
    try:
        while seconds is None or time.monotonic() - t0 < seconds:
            pending = np.concatenate([pending, mic.read(timeout=0.1)])
            while len(pending) >= n:
                key, value, headers = encode_audio(stream_id, pending[:n], mic.rate, seq,
                                                   dtype=dtype, timestamp=time.time(),
                                                   sample_index=index)
                producer.send(topic, key=key, value=value, headers=headers)
                pending, seq, index = pending[n:], seq + 1, index + n
    except KeyboardInterrupt:
        pass
    finally:
        mic.stop()
        producer.flush()
        producer.close(timeout=10)
    return {"messages": seq, "audio_seconds": round(index / mic.rate, 3),
            "overruns": mic.overruns, "input_overflows": mic.input_overflows}
