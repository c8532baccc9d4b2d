"""`audioclf consume`: audio topics in, predictions (and dead letters, alerts) out.

Delivery is at-least-once. The consumer and producer calls live on the main thread; one worker
thread holds the stream state and scores, so fetching, decoding and sending overlap scoring
(a broker answers a fetch in about the time a batch takes to score). Each loop iteration:

  1. poll batch N+1 and decode it (pure: bytes -> samples, or a reason it is bad) while the
     worker scores batch N;
  2. wait for the worker, then hand it batch N+1: it pushes the good chunks into the engine,
     which scores every window they complete in one call, and returns the predictions with a
     snapshot of the offsets batch N+1 allows to commit;
  3. send batch N's predictions and dead letters (bad messages, with reason headers);
  4. commit (async; at most every ``commit_interval`` seconds) the newest snapshot whose
     sends -- and all before them -- are acknowledged; before a rebalance or exit: wait for
     the worker, ``flush()``, then a synchronous commit. A snapshot holds, per partition,
     the oldest offset some stream still needs: the message holding the first input sample
     of that stream's next window (for a resampled stream, the first its filter reads). A
     restarted consumer re-reads from there and (with ``sample-index`` headers) continues on
     the same window grid, so no window is lost; windows may be emitted twice (at-least-once,
     counted by consumers of the topic).

On rebalance what is acknowledged is committed (where the client allows a blocking call in its
rebalance listener), revoked partitions' streams are dropped and partitions kept are sought back
to where those streams resume; on
SIGTERM/SIGINT the current batch is finished, flushed and committed before exit 0. If producing
or committing fails (broker away), the consumer rewinds to its committed offsets, drops its
stream state and the batch polled meanwhile, and carries on once the broker answers.
"""
from __future__ import annotations

import json
import signal
import sys
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field

from audioclf.artifact import ModelArtifact

from .engine import Engine
from .kafka_io import make_consumer, make_producer
from .wire import BadMessage, decode_audio, prediction_message


UNTIMED_RECALL = 64  # chunks (6.4 s at 100 ms) a resend without a timestamp is recognised in


def _sample_digest(sample_index: int, samples) -> int:
    return (sample_index << 32) | zlib.crc32(samples)


@dataclass
class StreamTrack:
    """Kafka bookkeeping of one stream (the audio state itself lives in the engine)."""

    tp: object  # TopicPartition
    rate: int  # Hz of the stream's samples (a change starts the stream afresh)
    # (offset, start, end) of recent messages in the stream state's input samples (counted
    # from the first one it was fed), kept while a future window may still read them
    history: deque = field(default_factory=deque)
    fed: int = 0  # input samples fed to the stream state
    needed_input: int = 0  # the first input sample the next window reads
    last_seq: int | None = None
    next_index: int | None = None  # the sample index the next chunk should carry
    last_timestamp: float | None = None  # newest capture timestamp seen
    # sample index and CRC-32 of recent chunks sent without a capture timestamp (one int each,
    # ~3 KB): the only way to tell a resend of one of them from a device restarted there
    untimed: deque = field(default_factory=lambda: deque(maxlen=UNTIMED_RECALL))
    last_seen: float = field(default_factory=time.monotonic)

    def needed_offset(self) -> int | None:
        """Offset of the message holding the next window's first input: re-read from here."""
        for offset, _, end in self.history:
            if end > self.needed_input:
                return offset
        return None

    @property
    def nbytes(self) -> int:
        """Approximate memory of this bookkeeping: the deques and what they hold (a history
        entry is a tuple of three ints, an untimed digest one 64-bit int)."""
        return (sys.getsizeof(self) + sys.getsizeof(self.__dict__) + sys.getsizeof(self.history)
                + 148 * len(self.history)
                + sys.getsizeof(self.untimed) + 36 * len(self.untimed))

    def contributing(self, start: int, end: int) -> tuple[int, int] | None:
        offs = [o for o, s, e in self.history if e > start and s < end]
        return (offs[0], offs[-1]) if offs else None


@dataclass
class ConsumeStats:
    messages: int = 0
    windows: int = 0
    dlq: int = 0
    seq_gaps: int = 0
    seq_repeats: int = 0
    rewinds: int = 0
    evicted: int = 0
    rate_changes: int = 0
    resyncs: int = 0  # restarts at a jump of the sample index (audio lost, device restarted)
    partition_moves: int = 0  # restarts of a stream id seen on another partition or topic
    started: float = field(default_factory=time.monotonic)


class ConsumeService:
    def __init__(self, art: ModelArtifact, client_opts: dict, topics: list[str], group: str,
                 out_topic: str, dlq_topic: str | None = None, alerts_topic: str | None = None,
                 idle_timeout: float = 60.0, status_every: float = 5.0, smooth: int = 1,
                 monitor=None, status_out=None, keep_audio: bool = False,
                 commit_interval: float = 1.0):
        self.art, self.engine = art, Engine(art, smooth=smooth, keep_audio=keep_audio)
        self.client_opts, self.topics, self.group = client_opts, topics, group
        self.out_topic, self.dlq_topic, self.alerts_topic = out_topic, dlq_topic, alerts_topic
        self.idle_timeout, self.status_every = idle_timeout, status_every
        self.monitor = monitor
        self.status_out = status_out or sys.stderr
        self.tracks: dict[str, StreamTrack] = {}
        self.done_offset: dict = {}  # tp -> next offset after the last message handled
        self.stats = ConsumeStats()
        # the latest status (every status_every s), for /metrics: its HTTP thread must not
        # call into the KafkaConsumer, which is not thread-safe
        self.last_status: dict = {}
        self.stop_event = threading.Event()
        self.consumer = self.producer = None
        self._in_flight: deque = deque()  # (futures, offsets snapshot) awaiting acks
        # acknowledged snapshots are committed at most every commit_interval seconds: each
        # commit is a write at the broker, and waiting longer only means re-reading more after
        # a crash (the newest acknowledged one is what a rebalance or exit commits anyway)
        self.commit_interval = commit_interval
        self._acknowledged = None  # newest snapshot acknowledged and not yet committed
        self._last_commit = 0.0
        self._worker = None  # the scoring thread (started by run)
        self._pending = None  # Future of the batch it is scoring
        self._resume: dict = {}  # revoked partition -> offset its streams resume from
        self._must_rewind = False  # a rebalance could not settle what was sent

    # ------------------------------------------------------------------ lifecycle
    def install_signal_handlers(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())

    def run(self, max_seconds: float | None = None) -> dict:
        from concurrent.futures import ThreadPoolExecutor

        from kafka import ConsumerRebalanceListener

        service = self

        class Listener(ConsumerRebalanceListener):
            # kafka-python 3 runs these on its IO thread (the main thread waits in poll) and
            # refuses blocking consumer calls there: the commit is tried (kafka-python 2 allows
            # it) but correctness rests on non-blocking seeks and the main loop.
            def on_partitions_revoked(self, revoked):
                try:
                    service._send(service._wait_worker())
                    resume = service.commit_offsets()
                except Exception:  # noqa: BLE001 -- its batch is re-read after the rebalance
                    service._forget()
                    resume = None
                if not service._settle(quiet=True):
                    resume = None
                # where the dropped streams' next windows begin, for partitions we may keep;
                # unknown (sends unacknowledged): the main loop rewinds to committed offsets
                service._resume = {tp: resume[tp].offset for tp in revoked if tp in resume} \
                    if resume is not None else {}
                service._must_rewind = resume is None
                service._drop_partitions(set(revoked))

            def on_partitions_assigned(self, assigned):
                service._reposition(assigned)

        from kafka.errors import RetriableError

        self.producer = make_producer(self.client_opts)
        self.consumer = make_consumer(self.client_opts, self.group)
        self.consumer.subscribe(self.topics, listener=Listener())
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="audioclf-score")
        last_status = time.monotonic()
        try:
            while not self.stop_event.is_set():
                if max_seconds is not None and time.monotonic() - self.stats.started > max_seconds:
                    break
                # while the worker scores batch N: fetch and decode N+1 ...
                try:
                    batch = self._poll_prefetching()
                except RetriableError as exc:  # the broker is away: kafka-python reconnects
                    self._log({"event": "poll-retry", "error": f"{type(exc).__name__}: {exc}"})
                    time.sleep(0.2)
                    continue
                decoded = self._decode(batch)
                if self._must_rewind:  # a rebalance could not settle what was sent
                    self._quiet_wait_worker()
                    self._rewind()
                    continue
                try:
                    scored = self._wait_worker()
                    self._evict_idle()
                    if time.monotonic() - last_status >= self.status_every:
                        self.last_status = self.status()
                        self._log(self.last_status)
                        last_status = time.monotonic()
                    if decoded:
                        self._pending = self._worker.submit(self._score_batch, decoded)
                    # ... and while it scores N+1: send N's results, commit what is acknowledged
                    self._send(scored)
                    self._commit_acknowledged()
                except Exception as exc:  # noqa: BLE001 -- broker trouble: rewind, go on
                    self._log({"event": "rewind", "error": f"{type(exc).__name__}: {exc}"})
                    self._quiet_wait_worker()
                    self._rewind()  # every batch not committed is read again
        finally:
            try:
                try:
                    self._send(self._wait_worker())
                except Exception:  # noqa: BLE001 -- commit only what was acknowledged before
                    self._forget()
                self._settle(quiet=True)
            finally:
                self._worker.shutdown()
                # the summary is taken before closing: leaving the group revokes every
                # partition, which drops the streams and their drift state
                summary = self.status()
                self.consumer.close()
                self.producer.close(timeout=5)
                if getattr(self, "_live", None) is not None:
                    self._live.stop()
        return summary

    # ------------------------------------------------------------------ one batch
    def _poll_prefetching(self) -> dict:
        """One poll batch, with the next fetch already on its way to the broker.

        kafka-python 3 sends a fetch only when a poll finds its buffer empty, so a poll that
        had to wait for a fetch returns without sending the next one: the broker would sit
        idle while the batch is scored, and the next poll wait for a whole fetch (measured:
        polls waited ~0.18 s of every ~0.36 s). Sending it here is the fetcher's own call
        (kafka-python 2 and 3; it skips partitions that have a fetch in flight or data
        buffered). Not a poll: a poll may rebalance, and this batch predates it.
        """
        batch = self.consumer.poll(timeout_ms=300)
        send_fetches = getattr(getattr(self.consumer, "_fetcher", None), "send_fetches", None)
        if batch and send_fetches is not None:  # private: only a speed-up if it moves
            send_fetches()
        return batch

    @staticmethod
    def _decode(batch: dict) -> list:
        """``[(tp, message, AudioChunk or BadMessage)]`` in poll order (pure: no state)."""
        out = []
        for tp, messages in (batch or {}).items():
            for msg in messages:
                try:
                    out.append((tp, msg, decode_audio(msg.key, msg.value, msg.headers)))
                except BadMessage as bad:
                    out.append((tp, msg, bad))
        return out

    def _wait_worker(self):
        """The worker's result for the batch it was scoring, or None (raises its error)."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    def _quiet_wait_worker(self):
        try:
            self._wait_worker()
        except Exception:  # noqa: BLE001 -- the caller is discarding this batch anyway
            pass

    def _score_batch(self, decoded: list) -> tuple[list, list, dict]:
        """(worker thread) Push a decoded batch through the engine.

        Returns the predictions to send as ``(prediction, offsets, drift state)``, the bad
        messages as ``(message, BadMessage)``, and the offsets that may be committed once all
        of these sends are acknowledged.
        """
        chunks, origins, dead, out = [], [], [], []
        for tp, msg, chunk in decoded:
            self.stats.messages += 1
            self.done_offset[tp] = msg.offset + 1
            if isinstance(chunk, BadMessage):
                dead.append((msg, chunk))
                continue
            change = self._discontinuity(tp, chunk)
            if change not in (None, "repeat") and any(o[0] == chunk.stream_id for o in origins):
                # the stream's earlier chunks in this batch belong to its old state: push them
                # through it before that state is dropped
                out += self._push(chunks, origins)
                chunks, origins = [], []
            prepared = self._prepare(tp, chunk, change)
            if prepared is not None:
                chunks.append(prepared)
                origins.append((chunk.stream_id, tp, msg.offset))
        out += self._push(chunks, origins)
        for track in self.tracks.values():  # forget messages no future window can use
            while track.history and track.history[0][2] <= track.needed_input:
                track.history.popleft()
        return out, dead, self.commit_offsets()

    def _push(self, chunks: list, origins: list) -> list:
        """Score ``chunks`` (one model call for every window they complete) and place each
        message in its stream's sample history; returns :meth:`_annotate`'s predictions."""
        for (stream_id, _, offset), (_, samples, _) in zip(origins, chunks):
            track = self.tracks[stream_id]
            track.history.append((offset, track.fed, track.fed + len(samples)))
            track.fed += len(samples)
        return self._annotate(self.engine.push_many(chunks))

    def _annotate(self, preds) -> list:
        """``(prediction, offsets it came from, drift state)`` per prediction; hands the
        predictions to the drift monitor."""
        cfg = self.art.feature_config
        if self.monitor is not None:
            self.monitor.submit_many(preds)
        out = []
        for p in preds:
            track = self.tracks[p.stream_id]
            st = self.engine.streams[p.stream_id]
            w_start = int(round(p.start * cfg.sr)) - st.origin
            nxt = w_start + cfg.window_hop_samples
            track.needed_input = st.inputs_read(nxt, nxt + 1)[0]
            span = track.contributing(*st.inputs_read(w_start, w_start + cfg.window_samples))
            offsets = [[track.tp.topic, track.tp.partition, *span]] if span else []
            state = self.monitor.state(p.stream_id) if self.monitor is not None else None
            out.append((p, offsets, state))
        self.stats.windows += len(preds)
        return out

    def _send(self, scored) -> None:
        """Send a scored batch's predictions and dead letters; queue them for commit."""
        if scored is None:
            return
        preds, dead, snapshot = scored
        futures = [self._dead_letter(msg, bad) for msg, bad in dead]
        for p, offsets, state in preds:
            futures.append(self.producer.send(
                self.out_topic, key=p.stream_id.encode(),
                value=prediction_message(p, self.art.name, self.art.digest, offsets, state)))
        self._in_flight.append(([f for f in futures if f is not None], snapshot))

    def _commit_acknowledged(self):
        """Commit the newest snapshot whose batch (and all before it) the broker has acked,
        if ``commit_interval`` has passed since the last commit."""
        while self._in_flight and all(f.is_done for f in self._in_flight[0][0]):
            futures, snapshot = self._in_flight.popleft()
            for f in futures:
                if f.failed():
                    raise f.exception
            # None: sends with no offsets of their own (evictions)
            self._acknowledged = snapshot or self._acknowledged
        if self._acknowledged and time.monotonic() - self._last_commit >= self.commit_interval:
            self.consumer.commit_async(self._acknowledged)
            self._acknowledged, self._last_commit = None, time.monotonic()

    def _flush_acknowledged(self) -> bool:
        """Flush everything sent; True when every send in flight was acknowledged."""
        try:
            self.producer.flush(timeout=30)
            for futures, _ in self._in_flight:
                for f in futures:
                    if f.failed():
                        raise f.exception
            self._in_flight.clear()
            return True
        except Exception:  # noqa: BLE001
            return False

    def _settle(self, quiet: bool = False) -> bool:
        """Flush everything sent, then -- only if all of it was acknowledged -- commit
        synchronously (rebalance, shutdown). Returns whether everything was acknowledged."""
        if not self._flush_acknowledged():
            if not quiet:
                raise RuntimeError("predictions were not acknowledged")
            return False
        self._commit(quiet=quiet)
        # even if a quiet commit was refused (kafka-python 3's rebalance listener): a snapshot
        # taken before a rebalance must not be committed after it
        self._acknowledged, self._last_commit = None, time.monotonic()
        return True

    def _reposition(self, assigned):
        """Partitions kept through a rebalance go on from their fetch position (kafka-python 3
        keeps it), but their stream state was dropped: seek them to where their streams' next
        windows begin."""
        for tp in set(assigned) & set(self._resume):
            self.consumer.seek(tp, self._resume[tp])  # only sets the position: no blocking call
        self._resume = {}

    def _discontinuity(self, tp, chunk) -> str | None:
        """Why a known stream's chunk cannot simply continue its state, or None:

        - ``partition``: the stream moved partition (a producer partitioning anew -- or one id
          used in two topics, whose state then restarts at every switch: counted, so it shows);
        - ``rate``: its device restarted at another rate (the old rate's unfinished window is
          lost: neither the samples nor the positions kept here can go on);
        - ``gap``: its sample index jumped ahead (audio lost upstream): the stream rejoins the
          window grid there, so its clock stays right;
        - ``repeat``: audio it already has, sent again (a resend: no newer capture timestamp,
          or -- for chunks sent without timestamps -- the same samples at the same index as
          one of its last ``UNTIMED_RECALL`` chunks);
        - ``rewind``: its sample index went back with newer (or other) audio: a restarted
          device.
        """
        track = self.tracks.get(chunk.stream_id)
        if track is None:
            return None
        if track.tp != tp:
            return "partition"
        if track.rate != chunk.sample_rate:
            return "rate"
        index, expected = chunk.sample_index, track.next_index
        if index is None or expected is None or index == expected:
            return None
        if index > expected:
            return "gap"
        if index + len(chunk.samples) <= expected:
            if chunk.timestamp is None:
                if _sample_digest(index, chunk.samples) in track.untimed:
                    return "repeat"
            elif track.last_timestamp is not None and chunk.timestamp <= track.last_timestamp:
                return "repeat"
        return "rewind"

    def _prepare(self, tp, chunk, change: str | None):
        """Per-stream bookkeeping for a good chunk (``change``: its :meth:`_discontinuity`);
        returns the engine input, or None for a repeat of audio the stream already has."""
        track = self.tracks.get(chunk.stream_id)
        last_seq = None
        if track is not None:
            self._count_sequence(track, chunk)
            last_seq = track.last_seq
        if change == "repeat":
            track.last_seen = time.monotonic()
            return None
        if change is not None:
            self.stats.rate_changes += change == "rate"
            self.stats.resyncs += change in ("gap", "rewind")
            self.stats.partition_moves += change == "partition"
            # the audio state restarts; the drift history goes on (the same device, the same
            # place: forgetting it would restart the monitor's warm-up at every lost chunk)
            self.tracks.pop(chunk.stream_id)
            track = None
        samples = chunk.samples
        if track is None:
            track = self.tracks[chunk.stream_id] = StreamTrack(tp=tp, rate=chunk.sample_rate,
                                                               last_seq=last_seq)
            # keep the offline window grid: the engine starts at a window hop, dropping the
            # input before it (which may run into later messages)
            self.engine.restart(chunk.stream_id, chunk.sample_rate, chunk.sample_index or 0)
        if chunk.seq is not None:
            track.last_seq = chunk.seq
        if chunk.sample_index is not None:
            track.next_index = chunk.sample_index + len(chunk.samples)
            if chunk.timestamp is None:
                track.untimed.append(_sample_digest(chunk.sample_index, chunk.samples))
        if chunk.timestamp is not None and (track.last_timestamp is None
                                            or chunk.timestamp > track.last_timestamp):
            track.last_timestamp = chunk.timestamp
        track.last_seen = time.monotonic()
        return (chunk.stream_id, samples, chunk.sample_rate)

    def _count_sequence(self, track, chunk) -> None:
        if chunk.seq is not None and track.last_seq is not None:
            if chunk.seq > track.last_seq + 1:
                self.stats.seq_gaps += chunk.seq - track.last_seq - 1
            elif chunk.seq <= track.last_seq:
                self.stats.seq_repeats += 1

    def _dead_letter(self, msg, bad: BadMessage):
        """Send a bad message to the dead-letter topic (if any); returns the send future."""
        self.stats.dlq += 1
        if self.dlq_topic:
            headers = list(msg.headers or []) + [
                ("dlq.reason", bad.reason.encode()), ("dlq.detail", bad.detail.encode()[:500]),
                ("dlq.topic", msg.topic.encode()), ("dlq.partition", str(msg.partition).encode()),
                ("dlq.offset", str(msg.offset).encode())]
            return self.producer.send(self.dlq_topic, key=msg.key, value=msg.value,
                                      headers=headers)
        return None

    # ------------------------------------------------------------------ offsets
    def commit_offsets(self) -> dict:
        """Per partition: the oldest offset a stream still needs, else everything handled."""
        from kafka.structs import OffsetAndMetadata

        needed = dict(self.done_offset)
        for track in self.tracks.values():
            off = track.needed_offset()
            if off is not None:
                needed[track.tp] = min(needed.get(track.tp, off), off)
        return {tp: OffsetAndMetadata(off, "", -1) for tp, off in needed.items()}

    def _commit(self, quiet: bool = False):
        offsets = self.commit_offsets()
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
        except Exception:
            if not quiet:
                raise

    def _forget(self):
        """Drop all stream state and uncommitted progress (it is consumed again)."""
        self._in_flight.clear()
        self._acknowledged = None
        for sid in list(self.tracks):
            self._drop_stream(sid)
        self.done_offset.clear()

    def _rewind(self):
        """Forget in-memory progress and continue from the committed offsets."""
        self.stats.rewinds += 1
        self._must_rewind = False
        self._forget()
        time.sleep(1.0)
        for tp in list(self.consumer.assignment()):
            try:
                committed = self.consumer.committed(tp)
            except Exception:  # noqa: BLE001
                committed = None
            if committed is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)

    def _drop_partitions(self, revoked: set):
        for sid, track in list(self.tracks.items()):
            if track.tp in revoked:
                self._drop_stream(sid)
        for tp in revoked:
            self.done_offset.pop(tp, None)

    def _drop_stream(self, sid: str):
        self.tracks.pop(sid, None)
        self.engine.drop(sid)
        if self.monitor is not None:
            self.monitor.forget(sid)

    def _evict_idle(self):
        """Streams silent for ``idle_timeout`` have ended, as a file ends: the windows their end
        completes are scored and sent (a resampled stream's last ~1 ms of look-ahead, a stream
        shorter than one window zero-padded -- as offline prediction does), then they are
        dropped, and their unscored tail (less than a window hop, which offline prediction does
        not score either) no longer holds commits. (The worker is idle here.)"""
        now = time.monotonic()
        ended = []
        for sid, track in list(self.tracks.items()):
            if now - track.last_seen > self.idle_timeout:
                ended += self._annotate(self.engine.flush(sid))
                self._drop_stream(sid)
                self.stats.evicted += 1
        if ended:
            # committed only with (after) the next batch's offsets, which no longer wait for
            # these streams: in order, once these sends are acknowledged too
            self._send((ended, [], None))
        if self.monitor is not None:  # histories rebuilt by predictions queued before a drop
            for sid in list(self.monitor.streams):
                if sid not in self.tracks:
                    self.monitor.forget(sid)

    def publish_alert(self, result: dict):
        """Drift state change (called from the monitor thread; KafkaProducer is thread-safe)."""
        alert = {"event": "drift", "stream_id": result["stream_id"], "state": result["state"],
                 "score": result["score"], "drift_share": result["drift_share"],
                 "top_features": result["top_features"], "window_span": result["window_span"],
                 "model": self.art.name, "model_digest": self.art.digest}
        self._log(alert)
        if self.alerts_topic and self.producer is not None:
            self.producer.send(self.alerts_topic, key=result["stream_id"].encode(),
                               value=json.dumps(alert).encode())

    # ------------------------------------------------------------------ status
    @property
    def scoring(self) -> bool:
        """A batch is with the scoring thread (its messages are already in ``stats.messages``)."""
        pending = self._pending
        return pending is not None and not pending.done()

    def status(self) -> dict:
        elapsed = max(time.monotonic() - self.stats.started, 1e-9)
        lag = None
        try:
            lag = sum(max(0, (self.consumer.highwater(tp) or 0) - self.consumer.position(tp))
                      for tp in self.consumer.assignment())
        except Exception:  # noqa: BLE001
            pass
        s = self.stats
        return {"event": "status", "streams": len(self.tracks), "messages": s.messages,
                "windows": s.windows, "windows_per_s": round(s.windows / elapsed, 1),
                "dlq": s.dlq, "seq_gaps": s.seq_gaps, "seq_repeats": s.seq_repeats,
                "rewinds": s.rewinds, "evicted": s.evicted, "rate_changes": s.rate_changes,
                "resyncs": s.resyncs, "partition_moves": s.partition_moves,
                "lag": lag,
                "state_bytes": self.engine.state_bytes
                + sum(track.nbytes for track in self.tracks.values())
                + (self.monitor.nbytes if self.monitor is not None else 0),
                "drift": self.monitor.state() if self.monitor is not None else None,
                # 0: no stream has reached its first evaluation yet, and "OK" means unchecked
                "drift_evaluations": self.monitor.evaluations if self.monitor is not None
                else None}

    def _log(self, record: dict):
        """JSON lines for logs and pipes; on a terminal the status is a rich panel instead."""
        if record.get("event") == "status" and getattr(self.status_out, "isatty", bool)():
            self._panel(record)
            return
        self.status_out.write(json.dumps(record) + "\n")
        self.status_out.flush()

    def _panel(self, record: dict):
        from rich.console import Console
        from rich.live import Live
        from rich.panel import Panel
        from rich.table import Table

        t = Table.grid(padding=(0, 2))
        for key in ("streams", "windows", "windows_per_s", "lag", "dlq", "seq_gaps", "rewinds",
                    "state_bytes", "drift"):
            value = str(record.get(key))
            if key == "drift" and record.get("drift_evaluations") == 0:
                value = (f"not evaluated yet (after a stream's first "
                         f"{self.monitor.min_windows} windows)")
            t.add_row(key.replace("_", " "), value)
        panel = Panel(t, title=f"audioclf consume {','.join(self.topics)} -> {self.out_topic}")
        if getattr(self, "_live", None) is None:
            self._live = Live(panel, console=Console(file=self.status_out), auto_refresh=False)
            self._live.start()
        self._live.update(panel, refresh=True)
