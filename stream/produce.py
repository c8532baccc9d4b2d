"""`audioclf produce`: publish audio files (or the microphone) in the wire format."""
from __future__ import annotations

import time

import numpy as np

from features import AudioError, audio_info, read_audio_blocks

from .kafka_io import make_producer
from .wire import encode_audio


class ChunkSender:
    """Sends one stream's chunks in the wire format: numbered (``seq``), with the sample index
    of their first sample and the time they are sent (the capture timestamp)."""

    def __init__(self, producer, topic: str, stream_id: str, sr: int, dtype: str,
                 wav: bool = False):
        self.producer, self.topic, self.stream_id = producer, topic, stream_id
        self.sr, self.dtype, self.wav = sr, dtype, wav
        self.seq = 0  # messages sent
        self.samples = 0  # samples sent

    def __call__(self, x: np.ndarray, sample_index: int) -> None:
        key, value, headers = encode_audio(self.stream_id, x, self.sr, self.seq,
                                           dtype=self.dtype, timestamp=time.time(),
                                           sample_index=sample_index, wav=self.wav)
        self.producer.send(self.topic, key=key, value=value, headers=headers)
        self.seq += 1
        self.samples += len(x)


def produce_files(opts: dict, topic: str, stream_id: str, files, chunk_ms=100.0,
                  dtype="int16", realtime=False, wav=False, sr=None) -> dict:
    """Publish ``files`` back to back as one stream, at ``sr`` (default: the first file's rate;
    the others are resampled to it, so the stream has one rate and one sample index). Every
    file's header is checked before anything is sent: a bad file is reported, not half a stream
    published. Files are decoded a block at a time (``features.read_audio_blocks``), so an
    hour-long recording costs the memory of a block, not of its audio; chunks run on across
    blocks and each file's last chunk may be short. A body that turns out corrupt stops the
    stream where its audio stops, and the error says how much was published."""
    infos = [audio_info(path) for path in files]
    sr = sr or (infos[0].sample_rate if infos else None)
    producer = make_producer(opts)
    n = max(1, int(sr * chunk_ms / 1000)) if sr else 1
    sender = ChunkSender(producer, topic, stream_id, sr, dtype, wav)
    file_start, t0 = 0, 0.0  # the current file's first sample index, and when it began

    def send(x: np.ndarray) -> None:
        if realtime:  # paced by the position in the current file
            delay = t0 + (sender.samples - file_start) / sr - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sender(x, sender.samples)  # one stream, back to back: the index is what was sent

    try:
        for done, path in enumerate(files):
            file_start, t0, pending = sender.samples, time.monotonic(), np.zeros(0, np.float32)
            try:
                for block in read_audio_blocks(path, sr=sr):
                    pending = np.concatenate([pending, block]) if len(pending) else block
                    whole = len(pending) - len(pending) % n
                    for i in range(0, whole, n):
                        send(pending[i:i + n])
                    pending = pending[whole:].copy()  # not a view of the decoder's block
            except AudioError as exc:
                if len(pending):  # the audio decoded before the damage is good: send it
                    send(pending)
                if not sender.seq:
                    raise
                producer.flush()
                into = sender.samples - file_start
                where = (f"{into / sr:.1f} s into it" if into else
                         f"before it: {done} file(s) before it were published")
                raise AudioError(exc.source, f"{exc.problem}; stream {stream_id} stops {where} "
                                 f"({sender.seq} messages, {sender.samples / sr:.1f} s)"
                                 ) from None
            if len(pending):
                send(pending)
        producer.flush()
    finally:
        producer.close(timeout=10)
    return {"messages": sender.seq,
            "audio_seconds": round(sender.samples / sr, 3) if sr else 0.0}


def produce_mic(opts: dict, topic: str, stream_id: str, device=None, rate=None,
                chunk_ms=100.0, dtype="int16", seconds=None, mic=None) -> dict:
    """Publish the microphone (``mic``: an already built source, else ``MicSource(device,
    rate)``) until ``seconds`` or Ctrl-C. Lost audio (an overflow, an overrun) shows as a jump
    of the sample index, after a short chunk if one was being filled."""
    from .sources import MicSource

    producer = make_producer(opts)
    mic = mic or MicSource(device, rate)
    mic.start()
    t0 = time.monotonic()
    n = int(mic.rate * chunk_ms / 1000)
    send = ChunkSender(producer, topic, stream_id, mic.rate, dtype)
    pending, index = np.zeros(0, np.float32), 0  # unsent samples, stream index of the first

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
    return {"messages": send.seq, "audio_seconds": round(send.samples / mic.rate, 3),
            "overruns": mic.overruns, "input_overflows": mic.input_overflows,
            "lost_s": round(mic.lost_samples / mic.rate, 3)}
