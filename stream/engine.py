"""The streaming engine: sources push samples, the engine emits predictions.

Source-agnostic (microphone, file, Kafka). Per stream it keeps an optional stateful resampler,
the incremental feature state (only new STFT frames are computed each hop), a smoother and a
hysteresis state machine. Windows that become ready in one ``push_many`` call are scored with
one model call.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from audioclf.artifact import ModelArtifact
from audioclf.memory import keep_freed_memory
from audioclf.postprocess import Hysteresis, Smoother
from features import IncrementalFeatures
from features.audio import resample_inputs
from features.extract import _analyzer, gather_frames, level_index, window_vectors

from features.resample import StreamResampler


@dataclass
class Prediction:
    stream_id: str
    window_index: int
    start: float  # stream seconds (model-rate samples / sr)
    end: float
    label: str | None  # top class of the smoothed probabilities (classification)
    probability: float | None
    probs: dict | None  # raw (unsmoothed) class probabilities
    value: float | None  # regression (smoothed)
    level_db: float  # loudest frame of the window, dBFS (the vector's level_dbfs element)
    latency_ms: float  # from the push that completed the window to this prediction
    vector: np.ndarray = field(default=None, repr=False)  # the feature vector (for drift)
    audio: np.ndarray = field(default=None, repr=False)  # window samples, if the engine keeps them
    events: list = field(default_factory=list)  # label onsets/offsets this window caused

    def to_json(self) -> dict:
        d = {"stream_id": self.stream_id, "window": self.window_index,
             "start": round(self.start, 4), "end": round(self.end, 4),
             "level_db": round(float(self.level_db), 2),
             "latency_ms": round(self.latency_ms, 3)}
        if self.label is not None:
            d.update(label=self.label, probability=round(self.probability, 4),
                     probs={k: round(v, 4) for k, v in self.probs.items()})
        else:
            d["value"] = self.value
        if self.events:
            d["events"] = [{"label": e.label, "onset": round(e.onset, 3),
                            "offset": None if e.offset is None else round(e.offset, 3)}
                           for e in self.events]
        return d


def grid_origin(sample_index: int, input_sr: int, cfg) -> tuple[int, int]:
    """Where a stream first seen at its input sample ``sample_index`` joins the window grid
    offline prediction uses for the whole recording: ``(origin, skip)`` -- the first window
    start (model-rate samples, a multiple of the window hop) and the input samples to drop
    before it. A resampled stream's origin is also late enough that every input its outputs
    read is at or after ``sample_index`` (see ``StreamResampler(start=origin)``)."""
    hop = cfg.window_hop_samples
    if sample_index <= 0:
        return 0, 0
    if input_sr == cfg.sr:
        origin = -(-sample_index // hop) * hop
        return origin, origin - sample_index
    resampler = StreamResampler(input_sr, cfg.sr)
    origin = -(-(sample_index * resampler.up) // (resampler.down * hop)) * hop
    while resampler.first_input(origin) < sample_index:
        origin += hop
    return origin, resampler.first_input(origin) - sample_index


class StreamState:
    """Everything one stream needs between pushes (bounded: see ``nbytes``)."""

    def __init__(self, engine: "Engine", stream_id: str, input_sr: int, origin: int = 0,
                 skip: int = 0):
        cfg = engine.cfg
        self.stream_id = stream_id
        self.origin = int(origin)  # stream sample index (model rate) of this state's sample 0
        self.input_sr = int(input_sr)
        # input fed before the first window's (see grid_origin): dropped as it arrives, and
        # still counted by inputs_read, whose indices start at the first sample fed
        self.skip = self.skipped = int(skip)
        # a resampled stream joined mid-way (origin > 0) starts at the input grid_origin gave
        self.resampler = None if input_sr == cfg.sr else \
            StreamResampler(input_sr, cfg.sr, start=self.origin)
        self.features = IncrementalFeatures(cfg)
        self.smoother = Smoother(engine.smooth, engine.ema)
        self.hysteresis = Hysteresis(engine.art.labels, **engine.hysteresis) \
            if engine.art.is_classifier else None
        self.last_seen = time.monotonic()
        self.windows = 0
        # recent model-rate audio, only when windows must be saved (drift capture)
        self.audio = np.zeros(0, np.float32) if engine.keep_audio else None
        self.audio_end = 0  # state-relative sample index just after self.audio

    def inputs_read(self, start: int, stop: int) -> tuple[int, int]:
        """The input samples ``lo..hi-1`` (counted from the first one fed to this state) that
        its model-rate samples ``start..stop-1`` are computed from: the same for a stream at the
        model's rate; a resampler's filter reaches a little either side (``lo`` may be
        negative: the zeros before a stream's start)."""
        r = self.resampler
        if r is None:
            return start + self.skipped, stop + self.skipped
        lo, hi = resample_inputs(self.origin + start, self.origin + stop, r.up, r.down)
        return lo - r.start_input + self.skipped, hi - r.start_input + self.skipped

    def remember(self, parts: list, keep: int) -> None:
        """Append model-rate sample blocks, keeping the last ``keep`` samples."""
        self.audio = np.concatenate([self.audio, *parts])[-keep:]
        self.audio_end += sum(len(x) for x in parts)

    def window_audio(self, start: int, length: int) -> np.ndarray | None:
        offset = len(self.audio) - (self.audio_end - start)
        if offset < 0 or offset + length > len(self.audio):
            return None
        return self.audio[offset:offset + length].copy()

    @property
    def nbytes(self) -> int:
        extra = self.resampler._hist.nbytes if self.resampler is not None else 0
        extra += self.audio.nbytes if self.audio is not None else 0
        return self.features.nbytes + extra + 4096


class Engine:
    def __init__(self, art: ModelArtifact, smooth: int = 1, ema: float | None = None,
                 hysteresis: dict | None = None, keep_audio: bool = False):
        keep_freed_memory()  # a process that streams features: see audioclf/memory.py
        self.art = art
        self.cfg = art.feature_config
        self.analyzer = _analyzer(self.cfg)
        self.level_index = level_index(self.cfg)
        self.smooth, self.ema = smooth, ema
        self.hysteresis = hysteresis or {}
        self.keep_audio = keep_audio  # attach each window's samples to its Prediction
        self.streams: dict[str, StreamState] = {}
        self.windows_scored = 0

    def state(self, stream_id: str, input_sr: int) -> StreamState:
        """The stream's state; a new one (or a rate change) starts at stream sample 0."""
        st = self.streams.get(stream_id)
        if st is None or st.input_sr != input_sr:
            st = self.streams[stream_id] = StreamState(self, stream_id, input_sr)
        return st

    def restart(self, stream_id: str, input_sr: int, sample_index: int = 0) -> StreamState:
        """Start the stream afresh with the input sample ``sample_index`` next (audio before
        it was lost, or never seen), on the window grid of the whole recording
        (:func:`grid_origin`: input before its next window start is dropped as it arrives)."""
        origin, skip = grid_origin(sample_index, input_sr, self.cfg)
        st = self.streams[stream_id] = StreamState(self, stream_id, input_sr, origin, skip)
        return st

    def push(self, stream_id: str, samples: np.ndarray, input_sr: int | None = None
             ) -> list[Prediction]:
        return self.push_many([(stream_id, samples, input_sr or self.cfg.sr)])

    FEATURE_GROUP = 256  # chunks analysed per numpy pass: amortises overhead, caps temporaries

    def push_many(self, chunks) -> list[Prediction]:
        """``chunks``: iterable of ``(stream_id, mono float32 samples, input_sr)``.

        Frames are analysed ``FEATURE_GROUP`` chunks at a time (vectorised across streams);
        every window the chunks complete is then scored in one model call.
        """
        t0 = time.perf_counter()
        chunks = list(chunks)
        ready, audio = [], {}
        for g in range(0, len(chunks), self.FEATURE_GROUP):
            ready += self._features(chunks[g:g + self.FEATURE_GROUP], audio)
        for st, parts in audio.values():
            # enough for every window these chunks complete: a poll batch may hold seconds of
            # one stream (a consumer catching up), and its windows are scored after all of it
            st.remember(parts, sum(len(x) for x in parts) + self.cfg.window_samples)
        return self._score(ready, t0)

    def _features(self, chunks, audio: dict) -> list:
        owners, taken = [], []
        for stream_id, samples, sr in chunks:
            st = self.state(stream_id, sr)
            st.last_seen = time.monotonic()
            if st.skip:
                dropped = min(st.skip, len(samples))
                samples, st.skip = samples[dropped:], st.skip - dropped
            x = st.resampler.process(samples) if st.resampler is not None else samples
            owners.append(st)
            taken.append(st.features.take_samples(x))
            if st.audio is not None:  # kept for drift capture: see push_many
                audio.setdefault(id(st), (st, []))[1].append(x)
        if not owners:
            return []
        rows = self.analyzer.analyze(gather_frames(taken, self.cfg))
        bounds = np.cumsum([0] + [n for _, n in taken])
        pending = []
        for st, lo, hi in zip(owners, bounds[:-1], bounds[1:]):
            for start, window_rows in st.features.add_rows(rows[lo:hi]):
                pending.append((st, start, window_rows))
        if not pending:
            return []
        X = window_vectors(np.stack([w for _, _, w in pending]), self.cfg)
        return [(st, start, x) for (st, start, _), x in zip(pending, X)]

    def flush(self, stream_id: str) -> list[Prediction]:
        """End of a stream: the resampler's last samples, and a stream shorter than one window
        still gets one (zero-padded; it ends where the audio does, as in offline prediction)."""
        st = self.streams.get(stream_id)
        if st is None:
            return []
        t0 = time.perf_counter()
        ready = []
        if st.resampler is not None:
            tail = st.resampler.flush()
            if st.audio is not None:
                st.remember([tail], len(tail) + self.cfg.window_samples)
            ready += [(st, s, v) for s, v in st.features.push(tail)]
        audio_end = (st.origin + st.features.samples_seen) / self.cfg.sr
        preds = self._score(ready + [(st, s, v) for s, v in st.features.flush()], t0)
        for p in preds:
            p.end = min(p.end, audio_end)
        return preds

    def drop(self, stream_id: str) -> None:
        self.streams.pop(stream_id, None)

    @property
    def state_bytes(self) -> int:
        """Memory held for all streams (see ``StreamState.nbytes``)."""
        return sum(st.nbytes for st in self.streams.values())

    def _score(self, ready, t0) -> list[Prediction]:
        if not ready:
            return []
        X = np.stack([v for _, _, v in ready])
        scores = self.art.score(X)
        latency = (time.perf_counter() - t0) * 1000
        cfg, labels = self.cfg, self.art.labels
        out = []
        for (st, start, vec), s in zip(ready, scores):
            level = vec[self.level_index]
            t_start = (st.origin + start) / cfg.sr
            t_end = t_start + cfg.window_samples / cfg.sr
            smoothed = st.smoother.update(s)
            if labels is not None:
                k = int(np.argmax(smoothed))
                events = st.hysteresis.update(smoothed, t_start, t_end)
                pred = Prediction(st.stream_id, st.windows, t_start, t_end, labels[k],
                                  float(smoothed[k]), dict(zip(labels, map(float, s))), None,
                                  float(level), latency, vec,
                                  # as they stand at this window: the stream's later windows
                                  # close an event, and this prediction may be sent after them
                                  events=[dataclasses.replace(e) for e in events])
            else:
                pred = Prediction(st.stream_id, st.windows, t_start, t_end, None, None, None,
                                  float(smoothed), float(level), latency, vec)
            if st.audio is not None:
                pred.audio = st.window_audio(start, cfg.window_samples)
            st.windows += 1
            out.append(pred)
        self.windows_scored += len(out)
        return out
