"""Kafka end to end against a real broker (../shared/tools/kafka-broker.sh, Tansu).

Every test uses its own topics and group. "Lost" means a window the offline path computes for a
stream that never reached the predictions topic; "duplicates" are windows that arrived twice.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from audioclf.artifact import load_model
from features import signal_windows
from features.audio import resample
from models import default_model_path
from stream.wire import BadMessage, decode_audio, encode_audio
from stream.engine import Engine
from tests.conftest import PLAYED_KINDS, SHARED, VMIC, played_sounds_wav, start_shared_tool
from train.synthetic import CLASSES, synth_clip

BROKER = SHARED / "tools" / "kafka-broker.sh"
SR = 16000


@pytest.fixture(scope="module")
def bootstrap():
    return start_shared_tool(BROKER, "kafka broker", 300).strip().splitlines()[-1]


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap, name, partitions):
    from kafka.admin import KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


def stream_audio(seed, seconds):
    rng = np.random.default_rng(seed)
    kinds = [CLASSES[(seed + i) % len(CLASSES)] for i in range(int(np.ceil(seconds / 2)))]
    y = np.concatenate([synth_clip(k, rng, seconds=2.0) for k in kinds])[: int(seconds * SR)]
    # int16 on the wire: the offline reference sees the same quantised samples
    return (np.round(y * 32768).clip(-32768, 32767) / 32768).astype(np.float32)


def produce(bootstrap, topic, streams: dict, chunk=1600, extra=(), start=0, stop=None,
            rates=None):
    """Send samples ``start:stop`` of every stream (``start`` a multiple of ``chunk``), in
    ``chunk``-sample messages at SR; a stream with another rate in ``rates`` sends messages of
    the same duration."""
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    rates = {sid: (rates or {}).get(sid, SR) for sid in streams}
    seqs = {sid: start // chunk for sid in streams}
    longest = max(len(y) * SR // rates[sid] for sid, y in streams.items()) if stop is None \
        else stop
    for i in range(start, longest, chunk):  # interleave streams like live devices would
        for sid, y in streams.items():
            a, b = i * rates[sid] // SR, (i + chunk) * rates[sid] // SR
            if a < len(y):
                key, value, headers = encode_audio(sid, y[a:b], rates[sid], seqs[sid],
                                                   sample_index=a)
                p.send(topic, key=key, value=value, headers=headers)
                seqs[sid] += 1
    for key, value, headers in extra:
        p.send(topic, key=key, value=value, headers=headers)
    p.flush()
    p.close()


def start_consumer(bootstrap, topic, group, out, dlq=None, seconds=None, extra_env=None,
                   alerts=None, launch=("-m", "audioclf")):
    """`audioclf consume` in a subprocess (``launch``: the Python arguments that run the CLI)."""
    cmd = [sys.executable, *launch, "consume", "--bootstrap", bootstrap, "--topic",
           topic, "--group", group, "--out-topic", out, "--status-every", "1"]
    cmd += ["--alerts-topic", alerts] if alerts else ["--no-drift"]
    if dlq:
        cmd += ["--dlq-topic", dlq]
    if seconds:
        cmd += ["--seconds", str(seconds)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(extra_env or {})})


def read_topic(bootstrap, topic, until, timeout=90.0):
    """All messages of ``topic`` (JSON values) until ``until(msgs)`` or timeout."""
    from kafka import KafkaConsumer
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=uid("reader"),
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=6000, heartbeat_interval_ms=1000,
                      receive_message_max_bytes=100_000_000)
    msgs = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(msgs):
            for recs in c.poll(timeout_ms=500).values():
                msgs += recs
    finally:
        c.close()
    return msgs


def expected_probs(streams, rates=None):
    """``{stream: {window start (s): class probabilities}}`` as `audioclf predict` gives each
    stream's audio (resampled to the model's rate as the offline reader does)."""
    art = load_model(default_model_path())
    out = {}
    for sid, y in streams.items():
        starts, X = signal_windows(resample(y, (rates or {}).get(sid, SR), SR),
                                   art.feature_config)
        out[sid] = {round(s / SR, 4): p for s, p in zip(starts, art.score(X))}
    return out


def expected_windows(streams, rates=None):
    """``{stream: {window start (s): label}}`` as `audioclf predict` gives them."""
    labels = load_model(default_model_path()).labels
    return {sid: {start: labels[int(np.argmax(p))] for start, p in probs.items()}
            for sid, probs in expected_probs(streams, rates).items()}


def windows_seen(msgs):
    seen = {}
    for m in msgs:
        d = json.loads(m.value)
        seen.setdefault(d["stream_id"], []).append((d["start"], d["label"]))
    return seen


def consumed_probs(bootstrap, topic, n_windows, extra_env=None):
    """Run `consume` on ``topic`` until ``n_windows`` predictions arrive; returns ``({stream:
    [(start, class probabilities in label order), ...]}`` in arrival order, its stderr)."""
    out = uid("pred")
    proc = start_consumer(bootstrap, topic, uid("g"), out, extra_env=extra_env)
    msgs = read_topic(bootstrap, out, lambda m: len(m) >= n_windows, timeout=60)
    code, err = stop(proc)
    assert code == 0, err
    labels = load_model(default_model_path()).labels
    got = {}
    for m in msgs:
        d = json.loads(m.value)
        got.setdefault(d["stream_id"], []).append((d["start"], [d["probs"][k] for k in labels]))
    return got, err


def assert_windows(got, want):
    """Each stream's windows at the wanted times, in order, with the wanted probabilities (to
    the JSON's 4 decimals, and float32 rounding of resampled audio)."""
    for sid, expected in want.items():
        assert [t for t, _ in got.get(sid, [])] == [t for t, _ in expected], sid
        for (t, q), (_, p) in zip(got[sid], expected):
            assert np.abs(np.array(q) - p).max() < 0.004, (sid, t)


def covered(expected):
    total = sum(len(v) for v in expected.values())

    def until(msgs):
        got = {(s, st) for s, ws in windows_seen(msgs).items() for st, _ in ws}
        return len(got) >= total
    return until


def stop(proc, timeout=30):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def test_produce_from_the_microphone(bootstrap, vmic_env, tmp_path):
    """`audioclf produce --mic`: what is played into a real PortAudio input arrives as
    consecutive chunks in the wire format, and the model hears in it what was played."""
    topic = uid("mic")
    create_topic(bootstrap, topic, 1)
    wav = played_sounds_wav(tmp_path / "played.wav")
    env = {**os.environ, **vmic_env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "audioclf", "produce", "--mic", "--device", "vmic", "--rate",
         str(SR), "--seconds", "12", "--bootstrap", bootstrap, "--topic", topic,
         "--stream-id", "mic-1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env)
    time.sleep(1.0)  # the stream is open and hearing silence
    subprocess.run([str(VMIC), "play", str(wav)], check=True, env=env,
                   stdin=subprocess.DEVNULL, timeout=120)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["audio_seconds"] == pytest.approx(12, abs=1.5) and summary["overruns"] == 0
    msgs = read_topic(bootstrap, topic, lambda m: len(m) >= summary["messages"])
    chunks = [decode_audio(m.key, m.value, m.headers) for m in msgs]
    assert len(chunks) == summary["messages"]
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert [c.sample_index for c in chunks] == [i * SR // 10 for i in range(len(chunks))]
    assert {(c.stream_id, c.sample_rate, len(c.samples)) for c in chunks} == \
        {("mic-1", SR, SR // 10)}
    audio = np.concatenate([c.samples for c in chunks])
    labels = [p.label for p in Engine(load_model(default_model_path())).push("mic-1", audio)]
    for kind in PLAYED_KINDS:
        assert labels.count(kind) >= 4, labels


def test_produce_from_the_microphone_marks_lost_audio_with_the_sample_index(bootstrap):
    """Mocked overflow (tests/test_live.py::_offline_mic): 150 ms lost after 1.05 s. The chunk
    being filled goes out short, and the next carries the index where the audio resumes -- so
    a consumer rejoins its window grid there, instead of splicing audio 150 ms apart."""
    from stream.produce import produce_mic
    from tests.test_live import _Status, _Time, _offline_mic

    topic = uid("mic")
    create_topic(bootstrap, topic, 1)
    y = stream_audio(31, 3.0)
    block = SR // 20
    mic = _offline_mic(SR)
    for k in range(len(y) // block):
        if not 21 <= k < 24:  # blocks 21-23 (1.05-1.2 s) never arrive
            mic._callback(y[k * block:(k + 1) * block, None], block, _Time(50.0 + k / 20),
                          _Status(k == 24))
    res = produce_mic({"bootstrap_servers": [bootstrap]}, topic, "mic-2", seconds=1.0, mic=mic)
    assert res["lost_s"] == 0.15 and res["input_overflows"] == 1
    msgs = read_topic(bootstrap, topic, lambda m: len(m) >= res["messages"])
    chunks = [decode_audio(m.key, m.value, m.headers) for m in msgs]
    starts = [c.sample_index for c in chunks]
    assert starts == [*range(0, 16001, 1600), *range(19200, len(y) - 1599, 1600)]
    assert len(chunks[10].samples) == 800  # the short chunk before the gap
    for c in chunks:
        np.testing.assert_array_equal(c.samples, y[c.sample_index:c.sample_index + len(c.samples)])


def test_produce_checks_every_file_before_connecting_or_sending(tmp_path):
    """A bad file among several is reported before anything is published (here the broker is
    unreachable: the file error comes first), not after half the stream was sent."""
    import soundfile as sf
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    sf.write(good, stream_audio(3, 1.0), SR)
    bad.write_text("not audio")
    out = subprocess.run([sys.executable, "-m", "audioclf", "produce", str(good), str(bad),
                          "--stream-id", "s", "--bootstrap", "127.0.0.1:1", "--topic", "t"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"{bad}: not a readable audio file" in out.stderr and "connect" not in out.stderr


def test_produce_says_what_was_published_before_a_file_with_a_corrupt_body(bootstrap,
                                                                          tmp_path):
    """A header that reads but a body that does not decode is found only when the file is read,
    after the files before it were sent: the error says so, and the topic holds exactly them."""
    import soundfile as sf
    topic = uid("corrupt")
    create_topic(bootstrap, topic, 1)
    good, bad = tmp_path / "good.wav", tmp_path / "bad.flac"
    sf.write(good, stream_audio(6, 1.0), SR)
    sf.write(bad, stream_audio(7, 4.0), SR)
    data = bad.read_bytes()
    noise = np.random.default_rng(0).integers(0, 256, len(data) // 2, dtype=np.uint8)
    bad.write_bytes(data[:len(data) // 2] + noise.tobytes())
    out = subprocess.run([sys.executable, "-m", "audioclf", "produce", str(good), str(bad),
                          "--stream-id", "s", "--bootstrap", bootstrap, "--topic", topic],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert f"{bad}: corrupt or truncated audio" in line, line
    assert "1 file(s) before it were published (10 messages, 1.0 s)" in line, line
    from kafka import KafkaConsumer, TopicPartition
    tp = TopicPartition(topic, 0)
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=uid("reader"),
                      auto_offset_reset="earliest", enable_auto_commit=False)
    c.assign([tp])
    msgs, deadline = [], time.monotonic() + 90
    try:
        while time.monotonic() < deadline and (len(msgs) < 10 or c.highwater(tp) is None):
            for recs in c.poll(timeout_ms=500).values():
                msgs += recs
        # this broker's end_offsets() is wrong; the high watermark of a fetch is right
        assert c.highwater(tp) == 10
    finally:
        c.close()
    chunks = [decode_audio(m.key, m.value, m.headers) for m in msgs]
    assert [c.seq for c in chunks] == list(range(10))


def test_produce_sends_files_of_several_rates_as_one_stream(bootstrap, tmp_path):
    """Files published back to back are one stream at the first file's rate (later files are
    resampled to it), so its sample index runs on without a change of rate."""
    import soundfile as sf
    topic = uid("files")
    create_topic(bootstrap, topic, 1)
    first, second = tmp_path / "a16k.wav", tmp_path / "b8k.wav"
    sf.write(first, stream_audio(4, 1.0), SR)
    sf.write(second, resample(stream_audio(5, 1.0), SR, 8000), 8000)
    out = subprocess.run([sys.executable, "-m", "audioclf", "produce", str(first),
                          str(second), "--stream-id", "s", "--bootstrap", bootstrap,
                          "--topic", topic], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary == {"messages": 20, "audio_seconds": 2.0}
    chunks = [decode_audio(m.key, m.value, m.headers)
              for m in read_topic(bootstrap, topic, lambda m: len(m) >= 20)]
    assert {c.sample_rate for c in chunks} == {SR}
    assert [c.sample_index for c in chunks] == [i * SR // 10 for i in range(20)]
    assert [c.seq for c in chunks] == list(range(20))


def test_produce_sends_long_recordings_block_by_block(bootstrap, tmp_path):
    """Files longer than a decoding block (``DECODE_BLOCK`` frames) are read and sent a block at
    a time: chunks run on across block boundaries (none short but a file's last), and the
    samples are the whole file's -- a second file at another rate resampled as a stream is."""
    import soundfile as sf
    from features import read_audio
    from features.audio import DECODE_BLOCK
    topic = uid("long")
    create_topic(bootstrap, topic, 1)
    first, second = tmp_path / "a22k.wav", tmp_path / "b16k.flac"
    rate = 22050  # a chunk of 2205 frames divides no block
    sf.write(first, resample(stream_audio(8, 24.0), SR, rate), rate, subtype="FLOAT")
    sf.write(second, stream_audio(9, 20.3), SR)
    assert sf.info(first).frames > 2 * DECODE_BLOCK and sf.info(second).frames > DECODE_BLOCK
    out = subprocess.run([sys.executable, "-m", "audioclf", "produce", str(first), str(second),
                          "--stream-id", "s", "--bootstrap", bootstrap, "--topic", topic,
                          "--dtype", "float32"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    y1, _ = read_audio(first, sr=None)
    y2, _ = read_audio(second, sr=rate)
    sizes = [2205] * 240 + [2205] * (len(y2) // 2205) + ([len(y2) % 2205] if len(y2) % 2205
                                                          else [])
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary == {"messages": len(sizes), "audio_seconds": round((len(y1) + len(y2)) / rate, 3)}
    chunks = [decode_audio(m.key, m.value, m.headers)
              for m in read_topic(bootstrap, topic, lambda m: len(m) >= len(sizes))]
    assert [len(c.samples) for c in chunks] == sizes
    assert [c.sample_index for c in chunks] == np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
    assert [c.seq for c in chunks] == list(range(len(sizes)))
    sent = np.concatenate([c.samples for c in chunks])
    np.testing.assert_array_equal(sent[:len(y1)], y1)  # float32 on the wire: exactly
    np.testing.assert_allclose(sent[len(y1):], y2, atol=1e-6)  # resampled by blocks


def test_produce_of_a_long_recording_with_a_corrupt_body_sends_what_decodes(bootstrap,
                                                                             tmp_path):
    """A long file whose body turns corrupt after its first blocks: the blocks before the damage
    are published, the error says how far into the file the stream stops, and the topic holds
    exactly what it says."""
    import soundfile as sf
    from features.audio import DECODE_BLOCK
    topic = uid("longbad")
    create_topic(bootstrap, topic, 1)
    bad = tmp_path / "long.flac"
    sf.write(bad, stream_audio(10, 60.0), SR)
    data = bad.read_bytes()
    cut = int(len(data) * 0.7)  # past the first blocks (a block is 16.4 s here)
    noise = np.random.default_rng(1).integers(0, 256, len(data) - cut, dtype=np.uint8)
    bad.write_bytes(data[:cut] + noise.tobytes())
    out = subprocess.run([sys.executable, "-m", "audioclf", "produce", str(bad),
                          "--stream-id", "s", "--bootstrap", bootstrap, "--topic", topic],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert f"{bad}: corrupt or truncated audio" in line, line
    m = re.search(r"stream s stops ([\d.]+) s into it \((\d+) messages, ([\d.]+) s\)", line)
    assert m, line
    messages, seconds = int(m.group(2)), float(m.group(3))
    assert DECODE_BLOCK / SR <= seconds < 60 and m.group(1) == m.group(3)
    chunks = [decode_audio(k.key, k.value, k.headers)
              for k in read_topic(bootstrap, topic, lambda got: len(got) >= messages)]
    assert len(chunks) == messages and [c.seq for c in chunks] == list(range(messages))
    assert abs(sum(len(c.samples) for c in chunks) / SR - seconds) <= 0.05
    good = stream_audio(10, 60.0)
    sent = np.concatenate([c.samples for c in chunks])
    np.testing.assert_allclose(sent, good[:len(sent)], atol=1 / 32768)


def test_produce_realtime_paces_chunks_at_the_audio_rate(bootstrap, tmp_path):
    """``--realtime`` sends each chunk when its audio would have been captured: the capture
    timestamps of 2 s of audio span ~1.9 s (sent at once they span milliseconds)."""
    import soundfile as sf
    topic = uid("paced")
    create_topic(bootstrap, topic, 1)
    wav = tmp_path / "two.wav"
    sf.write(wav, stream_audio(11, 2.0), SR)
    out = subprocess.run([sys.executable, "-m", "audioclf", "produce", str(wav), "--stream-id",
                          "s", "--bootstrap", bootstrap, "--topic", topic, "--realtime"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    chunks = [decode_audio(m.key, m.value, m.headers)
              for m in read_topic(bootstrap, topic, lambda m: len(m) >= 20)]
    stamps = np.array([c.timestamp for c in chunks])
    assert len(chunks) == 20 and np.all(np.diff(stamps) > 0.05), np.diff(stamps)
    assert 1.8 <= stamps[-1] - stamps[0] < 3.0, stamps[-1] - stamps[0]


def test_wire_roundtrip_and_rejections():
    y = stream_audio(1, 0.3)
    for dtype in ("int16", "int32", "float32"):
        key, value, headers = encode_audio("s", y, SR, 3, dtype=dtype, sample_index=99)
        chunk = decode_audio(key, value, headers)
        assert chunk.stream_id == "s" and chunk.seq == 3 and chunk.sample_index == 99
        np.testing.assert_allclose(chunk.samples, y, atol=1 / 32768)
        code, scale = {"int16": ("<i2", 32768), "int32": ("<i4", 2 ** 31), "float32": ("<f4", 1)}[dtype]
        np.testing.assert_array_equal(chunk.samples, np.frombuffer(value, code) / scale)
        assert chunk.samples.dtype == np.float32 and chunk.samples.flags.c_contiguous
        assert chunk.samples.flags.writeable  # its own memory, not the message's bytes
    # a header that is not text is named; a header without a value (Kafka allows it) is ignored
    with pytest.raises(BadMessage, match="header 'note' is not UTF-8"):
        decode_audio(key, value, headers + [("note", b"\xff\xfe")])
    assert decode_audio(key, value, headers + [("note", None)]).seq == 3
    stereo = np.stack([y, -0.5 * y], axis=1)
    for dtype in ("int16", "int32", "float32"):  # channels are averaged
        chunk = decode_audio(*encode_audio("s", stereo, SR, 4, dtype=dtype))
        np.testing.assert_allclose(chunk.samples, 0.25 * y, atol=1 / 32768)
    bad = np.array([0.1, np.nan, 0.2], np.float32)
    with pytest.raises(BadMessage, match="non-finite"):
        decode_audio(*encode_audio("s", bad, SR, 5, dtype="float32"))
    key, value, headers = encode_audio("s", y, SR, 0, wav=True)
    assert decode_audio(key, value, headers).sample_rate == SR
    with pytest.raises(BadMessage, match="bad-length"):
        decode_audio(key, b"\x00" * 3, [("sample-rate", b"16000"), ("dtype", b"int16")])
    key, value, headers = encode_audio("s", y, SR, 0, sample_index=-1600)
    with pytest.raises(BadMessage, match="sample-index=-1600 is negative"):
        decode_audio(key, value, headers)


def test_a_streams_kafka_bookkeeping_counts_in_its_state_bytes():
    """`state_bytes` (the status line, the bench's per-stream figure) includes each stream's
    Kafka bookkeeping -- its message history and untimed-chunk digests -- close to what the
    allocator really holds for them."""
    import tracemalloc

    from stream.consume import StreamTrack, _sample_digest

    chunk = np.ones(1600, np.float32)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    tracks = []
    for k in range(100):
        t = StreamTrack(tp=None, rate=SR)
        for i in range(20):
            t.history.append((10 ** 9 + i, 1600 * i + 10 ** 6, 1600 * (i + 1) + 10 ** 6))
        for i in range(64):
            t.untimed.append(_sample_digest(10 ** 7 + 1600 * i, chunk))
        tracks.append(t)
    held = sum(d.size_diff for d in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert tracks[0].nbytes == pytest.approx(held / 100, rel=0.2)
    assert tracks[0].nbytes > StreamTrack(tp=None, rate=SR).nbytes + 5000


def test_streams_scored_exactly_as_offline(bootstrap):
    topic, out = uid("audio"), uid("pred")
    create_topic(bootstrap, topic, 3)
    streams = {f"dev{i}": stream_audio(i, 6.0 + i) for i in range(4)}
    # a device sending 44.1 kHz: resampled in the consumer, block by block, to what the offline
    # reader makes of the whole recording (its last ~1 ms waits for more audio: 6.1 s long so
    # that the last window ends before it)
    y44 = resample(stream_audio(7, 6.1), SR, 44100)
    streams["dev44k"] = (np.round(y44 * 32768).clip(-32768, 32767) / 32768).astype(np.float32)
    rates = {"dev44k": 44100}
    produce(bootstrap, topic, streams, rates=rates)
    expected = expected_windows(streams, rates)
    proc = start_consumer(bootstrap, topic, uid("g"), out)
    msgs = read_topic(bootstrap, out, covered(expected))
    code, err = stop(proc)
    assert code == 0, err
    seen = windows_seen(msgs)
    for sid, windows in expected.items():
        got = dict(seen.get(sid, []))
        assert got == windows, sid  # every window, same labels as offline
    # and the same probabilities (to the JSON's 4 decimals; the 44.1 kHz stream's samples
    # agree to float32 rounding, which may move a tree or so: 1/300)
    want = expected_probs(streams, rates)
    art = load_model(default_model_path())
    for m in msgs:
        d = json.loads(m.value)
        p = want[d["stream_id"]][d["start"]]
        assert max(abs(d["probs"][k] - v) for k, v in zip(art.labels, p)) < 0.004, d
    d = json.loads(msgs[0].value)
    assert {"stream_id", "start", "end", "label", "probs", "model", "model_digest",
            "offsets"} <= set(d)
    assert d["offsets"][0][0] == topic and d["offsets"][0][2] <= d["offsets"][0][3]


def test_consume_settles_the_garbage_collector(bootstrap):
    """`consume` freezes what is loaded and collects young objects less often: full collections
    over every loaded module took ~10% of its CPU with the GIL held (bench/kafka.py prints the
    share). Here: applied in the running service, which still scores every window, and
    AUDIOCLF_GC_TUNING=0 keeps CPython's settings."""
    topic = uid("audio")
    create_topic(bootstrap, topic, 2)
    streams = {f"dev{i}": stream_audio(i, 3.0) for i in range(6)}
    produce(bootstrap, topic, streams)
    expected = expected_windows(streams)
    code = ("import gc, sys; from audioclf.cli import main; from audioclf.memory import "
            "YOUNG_GC_THRESHOLD as T; default = gc.get_threshold()[0]; rc = main(sys.argv[1:]); "
            "print('RESULT', rc, gc.get_freeze_count() > 1000, gc.get_threshold()[0] == T, "
            "gc.get_threshold()[0] == default)")
    for env, want in (({}, "0 True True False"), ({"AUDIOCLF_GC_TUNING": "0"},
                                                   "0 False False True")):
        out = uid("pred")
        proc = start_consumer(bootstrap, topic, uid("g"), out, seconds=10, extra_env=env,
                              launch=("-c", code))
        stdout, stderr = proc.communicate(timeout=120)
        result = [ln for ln in stdout.splitlines() if ln.startswith("RESULT")]
        assert result and result[0].split()[1:] == want.split(), stderr[-2000:]
        seen = windows_seen(read_topic(bootstrap, out, covered(expected), timeout=30))
        assert {sid: dict(w) for sid, w in seen.items()} == expected, env


def test_ended_streams_score_their_last_windows(bootstrap):
    """A stream that goes quiet past the idle timeout has ended, as a file ends: a 44.1 kHz
    stream's last window (waiting for the resampler's look-ahead) and a stream shorter than one
    window (zero-padded) are scored as `audioclf predict` scores the same audio."""
    topic, out = uid("audio"), uid("pred")
    create_topic(bootstrap, topic, 2)
    y44 = resample(stream_audio(3, 6.0), SR, 44100)  # its last window ends at its last sample
    streams = {"dev44k": (np.round(y44 * 32768).clip(-32768, 32767) / 32768).astype(np.float32),
               "short": stream_audio(5, 0.6)}
    rates = {"dev44k": 44100}
    produce(bootstrap, topic, streams, rates=rates)
    expected = expected_windows(streams, rates)
    proc = start_consumer(bootstrap, topic, uid("g"), out,
                          extra_env={"AUDIOCLF_IDLE_TIMEOUT": "2"})
    msgs = read_topic(bootstrap, out, covered(expected))
    code, err = stop(proc)
    assert code == 0, err
    seen = windows_seen(msgs)
    assert {sid: dict(ws) for sid, ws in seen.items()} == expected
    assert '"evicted": 2' in err, err[-500:]


def test_streams_first_seen_mid_way_join_the_offline_window_grid(bootstrap):
    """A consumer that first sees a stream at sample 1600 (100 ms in: a group started while the
    devices were already sending, or a stream back after its idle eviction) scores the windows
    offline prediction finds in the whole recording from 0.25 s on, at the same times and with
    the same probabilities -- for a 44.1 kHz device too, whose resampler starts mid-stream with
    every input its outputs read. Before, a skip to the grid longer than the first message was
    cut short (16 kHz windows 50 ms off the grid), and resampled streams restarted at 0 s."""
    topic = uid("audio")
    create_topic(bootstrap, topic, 2)
    y44 = resample(stream_audio(9, 4.0), SR, 44100)
    streams = {"dev16k": stream_audio(8, 4.0),
               "dev44k": (np.round(y44 * 32768).clip(-32768, 32767) / 32768).astype(np.float32)}
    rates = {"dev44k": 44100}
    produce(bootstrap, topic, streams, start=1600, rates=rates)
    want = {sid: [(t, p) for t, p in probs.items() if t >= 0.25]
            for sid, probs in expected_probs(streams, rates).items()}
    got, _ = consumed_probs(bootstrap, topic, sum(map(len, want.values())),
                            extra_env={"AUDIOCLF_IDLE_TIMEOUT": "2"})
    assert_windows(got, want)


def test_a_stream_that_changes_rate_starts_afresh(bootstrap):
    """A device restarted at another rate (same stream id, 16 kHz then 8 kHz): the second part
    is a new stream -- its windows scored as offline prediction scores that audio alone, and
    each prediction names the messages it came from (before, the bookkeeping kept counting in
    the old rate's samples: the 8 kHz windows named no message or the old ones)."""
    from kafka import KafkaProducer
    topic, out = uid("audio"), uid("pred")
    create_topic(bootstrap, topic, 1)
    first = stream_audio(11, 3.0)
    y8k = resample(stream_audio(12, 3.0), SR, 8000)
    second = (np.round(y8k * 32768).clip(-32768, 32767) / 32768).astype(np.float32)
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    seq = 0
    for y, rate in ((first, SR), (second, 8000)):
        n = rate // 10
        for a in range(0, len(y), n):
            key, value, headers = encode_audio("dev", y[a:a + n], rate, seq, sample_index=a)
            p.send(topic, key=key, value=value, headers=headers)
            seq += 1
    p.flush()
    p.close()
    want = [expected_probs({"dev": first}), expected_probs({"dev": second}, {"dev": 8000})]
    n_windows = sum(len(w["dev"]) for w in want)
    proc = start_consumer(bootstrap, topic, uid("g"), out,
                          extra_env={"AUDIOCLF_IDLE_TIMEOUT": "2"})
    msgs = read_topic(bootstrap, out, lambda m: len(m) >= n_windows)
    code, err = stop(proc)
    assert code == 0, err
    preds = [json.loads(m.value) for m in msgs]
    assert len(preds) == n_windows, [(d["start"], d["offsets"]) for d in preds]
    labels = load_model(default_model_path()).labels
    parts = [preds[:len(want[0]["dev"])], preds[len(want[0]["dev"]):]]
    for part, expected, (lo, hi) in zip(parts, want, ((0, 29), (30, 59))):
        assert [d["start"] for d in part] == list(expected["dev"])
        for d in part:
            p = expected["dev"][d["start"]]
            assert max(abs(d["probs"][k] - v) for k, v in zip(labels, p)) < 0.004, d
            [(_, _, first_offset, last_offset)] = d["offsets"]
            assert lo <= first_offset <= last_offset <= hi, (d["start"], d["offsets"])
    assert '"rate_changes": 1' in err, err[-500:]


def test_malformed_messages_go_to_dlq(bootstrap):
    topic, out, dlq = uid("audio"), uid("pred"), uid("dlq")
    good = {"ok": stream_audio(3, 3.0)}
    bad = [
        (b"b1", b"\x00\x01\x02", [("sample-rate", b"16000"), ("dtype", b"int16")]),
        (b"b2", b"\x00\x00" * 100, [("sample-rate", b"16000"), ("dtype", b"int12")]),
        (b"b3", b"\x00\x00" * 100, [("sample-rate", b"7"), ("dtype", b"int16")]),
        (b"b4", np.full(100, np.nan, np.float32).tobytes(),
         [("sample-rate", b"16000"), ("dtype", b"float32")]),
        (b"b5", b"\x00\x00" * 100, [("dtype", b"int16")]),
        (b"b6", b"RIFFnotreallyawav", [("content-type", b"audio/wav")]),
    ]
    produce(bootstrap, topic, good, extra=bad)
    produce(bootstrap, topic, {"ok2": stream_audio(4, 2.0)})  # good messages after the bad
    proc = start_consumer(bootstrap, topic, uid("g"), out, dlq=dlq)
    dead = read_topic(bootstrap, dlq, lambda m: len(m) >= len(bad))
    expected = expected_windows({**good, "ok2": stream_audio(4, 2.0)})
    msgs = read_topic(bootstrap, out, covered(expected))
    code, err = stop(proc)
    assert code == 0, err
    reasons = {m.key: dict(m.headers)["dlq.reason"].decode() for m in dead}
    assert reasons == {b"b1": "bad-length", b"b2": "unknown-dtype", b"b3": "bad-sample-rate",
                       b"b4": "non-finite", b"b5": "missing-header", b"b6": "undecodable-wav"}
    assert {"dlq.detail", "dlq.offset", "dlq.topic"} <= {k for k, _ in dead[0].headers}
    assert set(windows_seen(msgs)) == {"ok", "ok2"}


def test_two_consumers_split_and_take_over(bootstrap):
    topic, out, group = uid("audio"), uid("pred"), uid("g")
    create_topic(bootstrap, topic, 4)
    a = start_consumer(bootstrap, topic, group, out)
    b = start_consumer(bootstrap, topic, group, out)
    time.sleep(8)  # both joined: the group has split the 4 partitions
    first = {f"s{i}": stream_audio(10 + i, 4.0) for i in range(8)}
    produce(bootstrap, topic, first)
    read_topic(bootstrap, out, covered(expected_windows(first)))
    code, err = stop(a)  # one leaves cleanly
    assert code == 0, err
    second = {f"t{i}": stream_audio(20 + i, 4.0) for i in range(8)}
    produce(bootstrap, topic, second)
    expected = expected_windows({**first, **second})
    msgs = read_topic(bootstrap, out, covered(expected))
    stop(b)
    seen = windows_seen(msgs)
    lost = sum(len(set(w) - {st for st, _ in seen.get(sid, [])}) for sid, w in expected.items())
    assert lost == 0
    status_a = [json.loads(l) for l in err.splitlines() if l.startswith('{"event": "status"')]
    assert 0 < max(s["messages"] for s in status_a)  # a did work ...
    produced = sum(len(range(0, len(y), 1600)) for y in first.values())
    assert max(s["messages"] for s in status_a) < produced  # ... but not all of it


def test_rebalance_mid_window_loses_nothing(bootstrap):
    # A consumer that keeps some partitions through a rebalance drops their half-built windows;
    # it must re-read from where they began (kafka-python 3 would go on from its fetch position).
    topic, out, group = uid("audio"), uid("pred"), uid("g")
    create_topic(bootstrap, topic, 4)
    streams = {f"m{i}": stream_audio(50 + i, 6.0) for i in range(8)}
    half = 25 * 1600  # 2.5 s: windows starting at 1.75-2.25 s are half built when b joins
    a = start_consumer(bootstrap, topic, group, out)
    time.sleep(8)  # a owns all four partitions
    produce(bootstrap, topic, streams, stop=half)
    read_topic(bootstrap, out, covered(expected_windows({k: y[:half] for k, y in streams.items()})))
    b = start_consumer(bootstrap, topic, group, out)
    time.sleep(10)  # b joined: a gave up two partitions and kept two, state dropped
    produce(bootstrap, topic, streams, start=half)
    expected = expected_windows(streams)
    msgs = read_topic(bootstrap, out, covered(expected))
    code_a, err_a = stop(a)
    code_b, err_b = stop(b)
    assert code_a == 0 and code_b == 0, err_a + err_b
    seen = windows_seen(msgs)
    missing = {sid: sorted(set(w) - {st for st, _ in seen.get(sid, [])})
               for sid, w in expected.items()}
    assert not any(missing.values()), missing
    summary_b = json.loads(err_b.strip().splitlines()[-1])["summary"]
    assert summary_b["messages"] > 0  # b really took partitions over


def test_consumer_sigkill_resumes_without_loss(bootstrap):
    topic, out, group = uid("audio"), uid("pred"), uid("g")
    create_topic(bootstrap, topic, 2)
    streams = {f"k{i}": stream_audio(30 + i, 12.0) for i in range(4)}
    produce(bootstrap, topic, streams, chunk=800)
    expected = expected_windows(streams)
    total = sum(len(v) for v in expected.values())
    proc = start_consumer(bootstrap, topic, group, out)
    read_topic(bootstrap, out, lambda m: len(m) >= total // 3)
    proc.kill()  # SIGKILL: no chance to commit anything more
    proc.wait()
    proc = start_consumer(bootstrap, topic, group, out)
    msgs = read_topic(bootstrap, out, covered(expected))
    stop(proc)
    seen = windows_seen(msgs)
    lost = sum(len(set(w) - {st for st, _ in seen.get(sid, [])}) for sid, w in expected.items())
    duplicates = sum(len(v) for v in seen.values()) - sum(len(set(v)) for v in seen.values())
    print(f"windows {total}, lost {lost}, duplicates {duplicates}")
    assert lost == 0
    for sid, ws in seen.items():  # duplicates are the same window, scored the same
        labels = {}
        for st, lab in ws:
            assert labels.setdefault(st, lab) == lab
            assert expected[sid][st] == lab


def test_resampled_stream_resumes_after_sigkill_without_loss(bootstrap):
    """A 44.1 kHz device in 50 ms messages: every window's first input falls on a message
    boundary, and the resampler's filter reads ~27 inputs before it -- in the message before.
    The committed offset must be that earlier message, or the resumed consumer cannot compute
    the window exactly and starts a hop later (one window lost)."""
    topic, out, group = uid("audio"), uid("pred"), uid("g")
    create_topic(bootstrap, topic, 1)
    y44 = resample(stream_audio(40, 10.0), SR, 44100)
    streams = {"r44": (np.round(y44 * 32768).clip(-32768, 32767) / 32768).astype(np.float32)}
    rates = {"r44": 44100}
    expected = expected_windows(streams, rates)
    half = 5 * SR  # the first 5 s, then the consumer dies mid-stream, then the rest
    produce(bootstrap, topic, streams, chunk=800, stop=half, rates=rates)
    proc = start_consumer(bootstrap, topic, group, out)
    # windows 0..3.75 s: the one at 4 s waits for the resampler's look-ahead past 5 s
    read_topic(bootstrap, out, lambda m: len(m) >= 16)
    time.sleep(2.5)  # a commit (every 1 s) of where the next window's inputs begin
    proc.kill()  # SIGKILL: that commit stands
    proc.wait()
    produce(bootstrap, topic, streams, chunk=800, start=half, rates=rates)
    proc = start_consumer(bootstrap, topic, group, out, extra_env={"AUDIOCLF_IDLE_TIMEOUT": "2"})
    msgs = read_topic(bootstrap, out, covered(expected))
    stop(proc)
    seen = windows_seen(msgs)["r44"]
    assert set(expected["r44"]) - {st for st, _ in seen} == set()  # lost: none
    assert {st for st, _ in seen} == set(expected["r44"])  # and on the offline grid
    for st, lab in seen:
        assert expected["r44"][st] == lab


def test_broker_restart_mid_stream(bootstrap):
    topic, out, group = uid("audio"), uid("pred"), uid("g")
    create_topic(bootstrap, topic, 2)
    part1 = {f"r{i}": stream_audio(40 + i, 5.0) for i in range(3)}
    produce(bootstrap, topic, part1)
    proc = start_consumer(bootstrap, topic, group, out)
    read_topic(bootstrap, out, covered(expected_windows(part1)))
    subprocess.run([str(BROKER), "kill"], check=True, stdin=subprocess.DEVNULL)
    time.sleep(3)
    subprocess.run([str(BROKER), "start"], check=True, stdin=subprocess.DEVNULL,
                   capture_output=True)
    part2 = {f"q{i}": stream_audio(50 + i, 5.0) for i in range(3)}
    produce(bootstrap, topic, part2)
    expected = expected_windows({**part1, **part2})
    msgs = read_topic(bootstrap, out, covered(expected), timeout=120)
    code, err = stop(proc)
    assert code == 0, err
    seen = windows_seen(msgs)
    lost = sum(len(set(w) - {st for st, _ in seen.get(sid, [])}) for sid, w in expected.items())
    assert lost == 0


def test_drift_alerts_reach_the_alerts_topic(bootstrap):
    from tests.test_drift import SHIFTS, clean_audio
    topic, out, alerts = uid("audio"), uid("pred"), uid("alerts")
    rng = np.random.default_rng(2)
    y = np.concatenate([clean_audio(900, 125.0),
                        SHIFTS["noise_0dB"](clean_audio(901, 100.0), rng)]).astype(np.float32)
    y = np.clip(y, -1, 1)
    produce(bootstrap, topic, {"mic-7": y}, chunk=4000)
    proc = start_consumer(bootstrap, topic, uid("g"), out, alerts=alerts)
    got = read_topic(bootstrap, alerts,
                     lambda m: any(json.loads(x.value)["state"] == "DRIFT" for x in m), timeout=120)
    code, err = stop(proc)
    assert code == 0, err
    drift = [json.loads(m.value) for m in got if json.loads(m.value)["state"] == "DRIFT"]
    assert drift, [json.loads(m.value) for m in got]
    a = drift[0]
    assert a["stream_id"] == "mic-7" and a["model_digest"] and a["top_features"]
    assert a["window_span"][0] < a["window_span"][1] and a["score"] >= 0.3
    assert any('"event": "drift"' in line for line in err.splitlines())  # and a JSON log line
    # the exit summary tells the state the streams were in, not the empty one after leaving
    # the group (which drops every stream)
    summary = json.loads(err.strip().splitlines()[-1])["summary"]
    assert summary["drift"] == "DRIFT" and summary["streams"] == 1, summary
    # how many evaluations stand behind that state (0: "OK" would mean unchecked)
    assert summary["drift_evaluations"] >= 5, summary
    statuses = [json.loads(line) for line in err.splitlines() if '"event": "status"' in line]
    assert all(s["drift"] == "OK" for s in statuses if s["drift_evaluations"] == 0)


def test_metrics_endpoint_of_a_running_consumer(bootstrap):
    """What a Kafka team alerts on: the consumer's lag and memory, next to its counters."""
    import socket
    import urllib.request

    topic, out = uid("audio"), uid("pred")
    produce(bootstrap, topic, {"m1": stream_audio(8, 4.0)})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = start_consumer(bootstrap, topic, uid("g"), out, extra_env={
        "AUDIOCLF_METRICS_PORT": str(port)})
    body, deadline = "", time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                              timeout=2).read().decode()
            except OSError:
                body = ""
            if "audioclf_consumer_lag 0" in body and "audioclf_windows_scored_total 13" in body:
                break
            time.sleep(0.5)
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "audioclf_consumer_lag 0" in body and "audioclf_windows_scored_total 13" in body, body
    assert "audioclf_messages_total 40" in body and "audioclf_state_bytes " in body, body


def test_a_regression_model_serves_values(bootstrap, tmp_path):
    """A regression artifact through Kafka: every window carries the value offline
    prediction gives (and no label or probabilities), the drift monitor running."""
    from audioclf.artifact import save_model
    from features import FeatureConfig
    from features.audio import write_wav
    from train.dataset import load_dataset
    from train.fit import TrainOptions, train_model

    rng = np.random.default_rng(12)
    rows = []
    for i in range(12):  # the target: how loud a noise floor sits under a tone, in dB
        floor_db = float(rng.uniform(-40, -5))
        y = synth_clip("tone", rng, seconds=1.0)
        y = y + rng.standard_normal(len(y)).astype(np.float32) * 10 ** (floor_db / 20) * 0.3
        write_wav(tmp_path / f"c{i}.wav", np.clip(y, -1, 1), SR, subtype="FLOAT")
        rows.append(f"c{i}.wav,{floor_db:.2f}")
    (tmp_path / "m.csv").write_text("path,target\n" + "\n".join(rows) + "\n")
    art = train_model(load_dataset(tmp_path / "m.csv"), FeatureConfig(), TrainOptions(
        n_iter=2, cv=3, n_jobs=1, cache_dir=None, progress=False)).artifact
    save_model(art, tmp_path / "floor.joblib")
    topic, out, alerts = uid("audio"), uid("pred"), uid("alerts")
    audio = {"r1": stream_audio(13, 3.0)}
    produce(bootstrap, topic, audio)
    proc = start_consumer(bootstrap, topic, uid("g"), out, alerts=alerts,
                          extra_env={"AUDIOCLF_MODEL": str(tmp_path / "floor.joblib")})
    msgs = read_topic(bootstrap, out, lambda m: len(m) >= 9)
    code, err = stop(proc)
    assert code == 0, err
    got = {d["start"]: d for d in map(json.loads, (m.value for m in msgs))}
    starts, X = signal_windows(audio["r1"], art.feature_config)
    want = {round(st / SR, 4): v for st, v in zip(starts, art.score(X))}
    assert sorted(got) == sorted(want)
    for start, value in want.items():
        d = got[start]
        assert d["value"] == pytest.approx(float(value), abs=1e-9)
        assert "label" not in d and "probs" not in d and d["model"] == art.name


def test_sequence_gaps_are_counted(bootstrap):
    from kafka import KafkaProducer
    topic, out = uid("audio"), uid("pred")
    y = stream_audio(5, 2.0)
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    seqs = [0, 1, 2, 5, 6, 6, 7]  # 3 and 4 lost upstream, 6 sent twice
    for k, seq in enumerate(seqs):
        key, value, headers = encode_audio("gappy", y[k * 1600:(k + 1) * 1600], SR, seq)
        p.send(topic, key=key, value=value, headers=headers)
    p.flush()
    p.close()
    proc = start_consumer(bootstrap, topic, uid("g"), out, seconds=12)
    _, err = proc.communicate(timeout=60)
    summary = json.loads(err.strip().splitlines()[-1])["summary"]
    assert summary["messages"] == len(seqs)
    assert summary["seq_gaps"] == 2 and summary["seq_repeats"] == 1


def test_sample_index_jumps_keep_every_stream_on_its_clock(bootstrap):
    """The sample index decides what a chunk continues. Lost chunks (index jumps ahead): the
    stream rejoins the offline grid after the gap, so later windows keep their times and
    offline probabilities, and no window spans the gap. A resent chunk (index already seen, no
    newer capture time): dropped, nothing lost or spliced. A restarted device (index back to 0,
    newer audio): a new stream from 0 s. Before, all three were spliced onto the old audio.
    Without timestamps the samples decide: a chunk sent twice (a producer's retry) is dropped,
    other audio at an index already seen is a restarted device."""
    from kafka import KafkaProducer
    topic = uid("audio")
    create_topic(bootstrap, topic, 1)
    lossy, resent = stream_audio(21, 6.0), stream_audio(22, 4.0)
    before, after = stream_audio(23, 3.0), stream_audio(24, 3.0)
    sent = []  # (stream, samples, seq, sample index, capture time)
    sent += [("lossy", lossy[i:i + 1600], k, i, 100.0 + k / 10)
             for k, i in enumerate(range(0, len(lossy), 1600)) if not 20 <= k < 25]
    for k, i in enumerate(range(0, len(resent), 1600)):
        sent += [("resent", resent[i:i + 1600], k, i, 100.0 + k / 10)] * (2 if k == 10 else 1)
    sent += [("restarted", before[i:i + 1600], k, i, 100.0 + k / 10)
             for k, i in enumerate(range(0, len(before), 1600))]
    sent += [("restarted", after[i:i + 1600], k, i, 200.0 + k / 10)
             for k, i in enumerate(range(0, len(after), 1600))]
    for k, i in enumerate(range(0, len(resent), 1600)):  # the same, with no capture times
        sent += [("untimed-resent", resent[i:i + 1600], k, i, None)] * (2 if k == 10 else 1)
    sent += [("untimed-restarted", y[i:i + 1600], k, i, None)
             for y in (before, after) for k, i in enumerate(range(0, len(y), 1600))]
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for sid, y, seq, index, ts in sent:
        key, value, headers = encode_audio(sid, y, SR, seq, timestamp=ts, sample_index=index)
        p.send(topic, key=key, value=value, headers=headers)
    p.flush()
    p.close()
    full = expected_probs({"lossy": lossy, "resent": resent})
    want = {"lossy": [(t, q) for t, q in full["lossy"].items() if t + 1 <= 2.0 or t >= 2.5],
            "resent": list(full["resent"].items()),
            "restarted": [*expected_probs({"r": before})["r"].items(),
                          *expected_probs({"r": after})["r"].items()]}
    want["untimed-resent"], want["untimed-restarted"] = want["resent"], want["restarted"]
    got, err = consumed_probs(bootstrap, topic, sum(map(len, want.values())))
    assert_windows(got, want)
    status = json.loads(err.strip().splitlines()[-1])["summary"]
    assert status["resyncs"] == 3 and status["seq_gaps"] == 5 and status["seq_repeats"] == 4


def test_one_stream_id_in_two_topics_is_counted(bootstrap):
    """Two topics whose devices share an id: the consumer cannot keep one state for both, so the
    stream restarts at each switch -- counted as partition_moves, so it shows in the status."""
    a, b = uid("audio"), uid("audio")
    produce(bootstrap, a, {"dev": stream_audio(31, 2.0)})
    produce(bootstrap, b, {"dev": stream_audio(32, 2.0)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "audioclf", "consume", "--bootstrap", bootstrap, "--topic", a,
         "--topic", b, "--group", uid("g"), "--out-topic", uid("pred"), "--no-drift",
         "--seconds", "12"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(err.strip().splitlines()[-1])["summary"]
    assert summary["messages"] == 40 and summary["partition_moves"] >= 1, summary


def test_transient_poll_error_does_not_stop_the_service(bootstrap, monkeypatch):
    """A retriable error out of ``poll`` (a broker away at the wrong moment) is logged and the
    loop polls again. Injected: the real broker cannot be made to fail inside one particular
    poll on demand (a broker restart mid-stream is tested above)."""
    import io
    import threading

    import stream.consume as consume
    from kafka.errors import KafkaConnectionError

    topic, out = uid("audio"), uid("pred")
    create_topic(bootstrap, topic, 1)
    streams = {"dev": stream_audio(2, 3.0)}
    produce(bootstrap, topic, streams)
    real_make_consumer = consume.make_consumer

    def flaky_consumer(*args, **kwargs):
        c = real_make_consumer(*args, **kwargs)
        real_poll, calls = c.poll, []

        def poll(*a, **k):
            calls.append(1)
            if len(calls) in (2, 3):
                raise KafkaConnectionError("111 ECONNREFUSED (injected)")
            return real_poll(*a, **k)
        c.poll = poll
        return c
    monkeypatch.setattr(consume, "make_consumer", flaky_consumer)
    log = io.StringIO()
    svc = consume.ConsumeService(load_model(default_model_path()),
                                 {"bootstrap_servers": [bootstrap]}, [topic], uid("g"), out,
                                 status_every=1e9, status_out=log)
    expected = expected_windows(streams)
    th = threading.Thread(target=svc.run, kwargs={"max_seconds": 60}, daemon=True)
    th.start()
    msgs = read_topic(bootstrap, out, covered(expected), timeout=60)
    svc.stop_event.set()
    th.join(timeout=30)
    assert not th.is_alive()
    assert {sid: dict(ws) for sid, ws in windows_seen(msgs).items()} == expected
    assert log.getvalue().count('"poll-retry"') == 2


def test_a_poll_batch_leaves_the_next_fetch_in_flight(bootstrap):
    """While a batch is scored the broker is already answering the next fetch: a poll made
    later finds its records buffered and needs no wait. (kafka-python 3 alone sends the next
    fetch only at the start of the next poll, so a poll with no time to wait gets nothing.)
    Small fetches, so the topic takes several."""
    from kafka import TopicPartition

    from stream import consume
    from stream.kafka_io import make_consumer
    topic = uid("audio")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, {"dev": stream_audio(3, 2.0)})  # 20 messages of 3.2 kB
    opts = {"bootstrap_servers": [bootstrap], "fetch_max_bytes": 20_000,
            "max_partition_fetch_bytes": 10_000}
    svc = consume.ConsumeService(load_model(default_model_path()), opts, [topic], uid("g"),
                                 uid("pred"))
    svc.consumer = make_consumer(opts, uid("g"))
    try:
        svc.consumer.assign([TopicPartition(topic, 0)])
        deadline, first = time.monotonic() + 30, {}
        while not first and time.monotonic() < deadline:
            first = svc._poll_prefetching()
        n_first = sum(map(len, first.values()))
        assert 0 < n_first < 20, n_first  # one fetch did not take the whole topic
        time.sleep(0.5)  # "scoring": the broker answers the fetch in flight meanwhile
        later = svc.consumer.poll(timeout_ms=0)
        offsets = [m.offset for ms in later.values() for m in ms]
        assert offsets and offsets[0] == n_first, (n_first, offsets)
    finally:
        svc.consumer.close()


@pytest.mark.parametrize("interval", [0.0, 600.0])
def test_commit_interval_spaces_commits_and_exit_commits_all(bootstrap, interval):
    """Acknowledged offsets are committed after every batch with ``commit_interval=0``, at
    most every ``commit_interval`` seconds otherwise (here: not during the run at all), and
    stopping commits everything handled either way."""
    import threading

    from kafka import KafkaConsumer, TopicPartition

    from stream import consume
    topic, out, group = uid("audio"), uid("pred"), uid("g")
    create_topic(bootstrap, topic, 1)
    streams = {"dev": stream_audio(5, 3.0)}
    produce(bootstrap, topic, streams)
    svc = consume.ConsumeService(load_model(default_model_path()),
                                 {"bootstrap_servers": [bootstrap]}, [topic], group, out,
                                 status_every=1e9, status_out=open(os.devnull, "w"),
                                 idle_timeout=600, commit_interval=interval)
    th = threading.Thread(target=svc.run, kwargs={"max_seconds": 60}, daemon=True)
    th.start()
    expected = expected_windows(streams)
    read_topic(bootstrap, out, covered(expected), timeout=60)
    time.sleep(1.5)  # a few more loop iterations: acknowledged by now

    def committed():
        c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                          enable_auto_commit=False)
        try:
            return c.committed(TopicPartition(topic, 0))
        finally:
            c.close()

    during = committed()
    assert not svc.scoring  # every message was scored (the predictions are all out)
    svc.stop_event.set()
    th.join(timeout=30)
    assert not th.is_alive()
    after = committed()
    if interval == 0:
        assert during is not None and during > 0
    else:
        assert during is None  # the first commit would be due after 600 s
    # its last window is 2.0-3.0 s: the next one would need the message holding 2.25 s
    assert after == int(2.25 * SR) // 1600
