"""Audio sources for the live loop: a microphone (sounddevice callback) or a file."""
from __future__ import annotations

import time

import numpy as np

from features import read_audio_blocks

from .devices import DeviceError, import_sounddevice, resolve_input
from .ring import RingBuffer


# an overflow's measured gap counts within these bounds: capture times jitter by ~0.06 ms here
# (and a flag with nothing lost must not restart the windows); a larger jump is a clock step
MIN_GAP_SECONDS, MAX_GAP_SECONDS = 0.002, 60.0


class MicSource:
    """Callback capture into a ring buffer. The callback copies (and downmixes) and returns."""

    def __init__(self, device=None, samplerate: int | None = None, channels: int = 1,
                 blocksize: int = 0, ring_seconds: float = 10.0, retries: int = 3):
        device, rate = resolve_input(device, samplerate, channels)
        self._setup(device, rate, channels, blocksize, ring_seconds, retries)

    def _setup(self, device, rate: int, channels: int, blocksize: int, ring_seconds: float,
               retries: int) -> None:
        """The capture state for a resolved device (tests without hardware call this alone)."""
        self.device, self.rate = device, rate
        self.channels, self.blocksize, self.retries = channels, blocksize, retries
        self.ring = RingBuffer(int(ring_seconds * self.rate))
        self.input_overflows = 0
        self.lost_samples = 0  # measured across overflows (see _callback)
        self.reopens = 0
        self._stream = None
        self._scratch = np.zeros(16384, dtype=np.float32)
        self._next_adc = None  # capture time the next block should start at (PortAudio's clock)
        # a reopened stream's capture clock may start anywhere: the time lost while the device
        # was away is measured on this clock instead, from the last block to the first new one
        self._clock = time.monotonic
        self._wall_end = None  # when the last block arrived
        self._resume_wall = None  # set by _reopen: when the old stream's last block arrived

    def _callback(self, indata, frames, time_info, status):
        adc = getattr(time_info, "inputBufferAdcTime", 0.0) or 0.0
        now = self._clock()
        lost = 0
        if status.input_overflow:
            self.input_overflows += 1
        if self._resume_wall is not None:  # the first block after a reopen
            # arrival times share the delivery latency, so it cancels: this block began about
            # frames/rate before it arrived, the old stream's last one ended when it arrived
            lost = int(round((now - frames / self.rate - self._resume_wall) * self.rate))
            self._resume_wall = None
        elif status.input_overflow and adc > 0 and self._next_adc is not None:
            # PortAudio flags an overflow without saying how much was lost; the capture time
            # of this block against where the last one ended does (where the host API gives
            # capture times: 0 means it does not), so the stream clock can skip the gap
            lost = int(round((adc - self._next_adc) * self.rate))
        if MIN_GAP_SECONDS * self.rate <= lost <= MAX_GAP_SECONDS * self.rate:
            self.lost_samples += lost
            self.ring.mark_gap(lost)
        self._next_adc = adc + frames / self.rate if adc > 0 else None
        self._wall_end = now
        if self.channels == 1:
            self.ring.write(indata[:, 0])
        else:
            out = self._scratch[:frames] if frames <= len(self._scratch) else np.empty(frames, np.float32)
            np.mean(indata, axis=1, out=out)
            self.ring.write(out)

    def start(self):
        sd = import_sounddevice()
        self._next_adc = None  # a new stream's clock may start anywhere
        try:
            self._stream = sd.InputStream(device=self.device, samplerate=self.rate,
                                          channels=self.channels, dtype="float32",
                                          blocksize=self.blocksize, callback=self._callback)
            self._stream.start()
        except Exception as exc:  # noqa: BLE001
            raise DeviceError(f"cannot open input device {self.device!r}: {exc}") from None

    def read(self, timeout: float) -> np.ndarray | None:
        """New samples (possibly empty); None when the stream has ended for good."""
        deadline = time.monotonic() + timeout
        while self.ring.available == 0 and time.monotonic() < deadline:
            if self._stream is not None and not self._stream.active:
                self._reopen()
            time.sleep(0.005)
        return self.ring.read()

    @property
    def last_index(self) -> int:
        """Stream sample index of the first sample the last ``read`` returned."""
        return self.ring.last_index

    def _reopen(self):
        """The device stopped under us (unplugged, server restart): retry a few times."""
        for attempt in range(1, self.retries + 1):
            self.reopens += 1
            try:
                self._stream.close()
            except Exception:  # noqa: BLE001
                pass
            self._resume_wall = self._wall_end  # no callback of the old stream after close
            time.sleep(0.5 * attempt)
            try:
                self.start()
                return
            except DeviceError:
                continue
        raise DeviceError(f"input device {self.device!r} was lost and did not come back "
                          f"after {self.retries} retries")

    def stop(self):
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception:  # noqa: BLE001
                pass
            self._stream = None

    @property
    def overruns(self) -> int:
        return self.ring.overruns


class FileSource:
    """A file decoded at the model's rate (the same decode as ``predict``), in blocks.

    ``realtime=True`` paces blocks at the audio's own speed, like a microphone would. The file
    is decoded as it is read, so a long recording is never held whole; opening it (and its
    first block) happens here, so a file that cannot be read fails before listening starts.
    """

    def __init__(self, path, sr: int, block_seconds: float = 0.05, realtime: bool = True,
                 samples: np.ndarray | None = None):
        if samples is not None:
            self._decoded = iter([np.asarray(samples, dtype=np.float32)])
        else:
            self._decoded = read_audio_blocks(path, sr=sr)
        self.rate, self.realtime = sr, realtime
        self.block = max(1, int(block_seconds * sr))
        self._buf = np.zeros(0, np.float32)  # decoded samples not yet read
        self._more = True
        self._fill()
        self.pos = 0
        self.last_index = 0
        self.input_overflows = 0
        self.lost_samples = 0
        self.overruns = 0
        self._t0 = None

    def _fill(self) -> None:
        """Decode until a whole read is buffered or the file ends."""
        while self._more and self._buf.shape[0] < self.block:
            try:
                self._buf = np.concatenate([self._buf, next(self._decoded)])
            except StopIteration:
                self._more = False

    def start(self):
        self._t0 = time.monotonic()

    def read(self, timeout: float) -> np.ndarray | None:
        self._fill()
        if not self._buf.shape[0]:
            return None
        if self.realtime:
            due = self._t0 + (self.pos + self.block) / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, timeout))
                if time.monotonic() < due:
                    return self._buf[:0]
        chunk, self._buf = self._buf[:self.block], self._buf[self.block:]
        self.last_index = self.pos
        self.pos += self.block
        return chunk

    def stop(self):
        pass
