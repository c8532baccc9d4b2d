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
                chunk_ms=100.0, dtype="int16", seconds=None, mic=None) -> dict:
    """Publish the microphone (``mic``: an already built source, else ``MicSource(device,
    rate)``) until ``seconds`` or Ctrl-C. Lost audio (an overflow, an overrun) shows as a jump
    of the sample index, after a short chunk if one was being filled."""
    from .sources import MicSource

    producer = make_producer(opts)
    mic = mic or MicSource(device, rate)
    mic.start()
    seq, sent, t0 = 0, 0, time.monotonic()
    n = int(mic.rate * chunk_ms / 1000)
    pending, index = np.zeros(0, np.float32), 0  # unsent samples, stream index of the first

    def send(x: np.ndarray, at: int) -> None:
        nonlocal seq, sent
        key, value, headers = encode_audio(stream_id, x, mic.rate, seq, dtype=dtype,
                                           timestamp=time.time(), sample_index=at)
        producer.send(topic, key=key, value=value, headers=headers)
        seq, sent = seq + 1, sent + len(x)

    try:
        while seconds is None or time.monotonic() - t0 < seconds:
            block = mic.read(timeout=0.1)
            if block.size and mic.last_index != index + len(pending):
                # audio was lost (an overflow, an overrun): the chunk before the gap goes
                # short, and the sample index tells consumers where the audio resumes
                if len(pending):
                    send(pending, index)
                pending, index = pending[:0], mic.last_index
            pending = np.concatenate([pending, block])
            while len(pending) >= n:
                send(pending[:n], index)
                pending, index = pending[n:], index + n
    except KeyboardInterrupt:
        pass
    finally:
        mic.stop()
        producer.flush()
        producer.close(timeout=10)
    return {"messages": seq, "audio_seconds": round(sent / mic.rate, 3),
            "overruns": mic.overruns, "input_overflows": mic.input_overflows,
            "lost_s": round(mic.lost_samples / mic.rate, 3)}
