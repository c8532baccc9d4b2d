"""Live path: engine == offline, ring buffer, smoothing/hysteresis, and a real PortAudio device.

The microphone tests use ../shared/tools/virtual-mic.sh (a PulseAudio null sink seen through
ALSA by PortAudio) and play WAVs into it while `audioclf listen --json` records.
"""
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from audioclf.artifact import load_model
from audioclf.postprocess import Hysteresis, Smoother
from features.audio import write_wav
from models import default_model_path
from stream.engine import Engine
from stream.ring import RingBuffer
from tests.conftest import VMIC, played_sounds_wav
from train.synthetic import synth_clip

def run_cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "audioclf", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_ring_wraps_and_counts_overruns():
    rb = RingBuffer(10)
    rb.write(np.arange(7, dtype=np.float32))
    assert rb.read().tolist() == list(range(7))
    rb.write(np.arange(7, 15, dtype=np.float32))  # wraps around the end
    assert rb.read().tolist() == list(range(7, 15)) and rb.overruns == 0
    rb.write(np.arange(15, 40, dtype=np.float32))  # 25 unread into 10: 15 lost
    assert rb.read().tolist() == list(range(30, 40))
    assert rb.overrun_samples == 15 and rb.overruns == 1
    assert rb.last_index == 30  # the read says where in the stream it starts


def test_ring_reads_stop_at_reported_gaps_and_say_where_audio_resumes():
    rb = RingBuffer(100)
    rb.write(np.arange(10, dtype=np.float32))
    rb.mark_gap(5)  # 5 samples lost before the next block (a device overflow)
    rb.write(np.arange(10, 20, dtype=np.float32))
    first = rb.read()
    assert first.tolist() == list(range(10)) and rb.last_index == 0
    second = rb.read()
    assert second.tolist() == list(range(10, 20)) and rb.last_index == 15
    rb.write(np.arange(20, 25, dtype=np.float32))
    assert rb.read().tolist() == list(range(20, 25)) and rb.last_index == 25


def test_smoother_and_hysteresis():
    sm = Smoother(3)
    assert sm.update([1, 0]).tolist() == [1, 0]
    assert sm.update([0, 1]).tolist() == [0.5, 0.5]
    sm.update([0, 1])
    assert np.allclose(sm.update([0, 1]), [0, 1])  # the first window fell out
    h = Hysteresis(["a", "b"], on=0.6, off=0.4, k_on=2, k_off=2)
    assert h.update([0.7, 0.3], 0, 1) == []
    (ev,) = h.update([0.8, 0.2], 0.25, 1.25)
    assert (ev.label, ev.onset, ev.offset) == ("a", 0, None)
    assert h.update([0.3, 0.7], 0.5, 1.5) == []  # one low window is not enough
    changed = h.update([0.2, 0.8], 0.75, 1.75)
    assert changed[0].label == "a" and changed[0].offset == 1.75
    assert changed[1].label == "b" and changed[1].onset == 0.5


def test_listen_file_equals_predict(tmp_path):
    rng = np.random.default_rng(4)
    y = np.concatenate([synth_clip(k, rng, seconds=2.0) for k in ("siren", "tone", "noise")])
    wav = tmp_path / "three.wav"
    write_wav(wav, y, 16000)
    live = run_cli("listen", "--file", wav, "--fast", "--json", "--no-drift")
    assert live.returncode == 0, live.stderr
    lines = [json.loads(l) for l in live.stdout.splitlines()]
    offline = json.loads(run_cli("predict", wav, "--json").stdout)["windows"]
    assert len(lines) == len(offline) == 21
    for a, b in zip(lines, offline):
        assert (a["start"], a["label"]) == (round(b["start"], 4), b["label"])
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-4)


def test_a_listened_file_is_decoded_as_it_is_read(tmp_path, monkeypatch):
    """listen --file reads a file block by block (an hour-long one is not held whole), the
    samples predict reads; a file that cannot be read fails before listening starts."""
    import features.audio
    from features import AudioError, read_audio
    from stream.sources import FileSource

    monkeypatch.setattr(features.audio, "DECODE_BLOCK", 3000)  # several blocks a second
    rng = np.random.default_rng(8)
    wav = tmp_path / "d.wav"
    write_wav(wav, 0.2 * rng.standard_normal(int(44100 * 2.1)), 44100)
    source = FileSource(wav, 16000, block_seconds=0.05, realtime=False)
    assert source._buf.shape[0] < 16000  # only the first blocks are decoded yet
    source.start()
    chunks = []
    while (chunk := source.read(1.0)) is not None:
        chunks.append(chunk)
    got = np.concatenate(chunks)
    np.testing.assert_allclose(got, read_audio(wav)[0], atol=1e-6)
    with pytest.raises(AudioError, match="no such file"):
        FileSource(tmp_path / "missing.wav", 16000)
    out = run_cli("listen", "--file", tmp_path / "missing.wav", "--fast")
    assert out.returncode == 1 and out.stderr.strip().splitlines() == [
        f"audioclf: error: {tmp_path / 'missing.wav'}: no such file"], out.stderr


def test_predict_several_files_without_a_model_uses_the_shipped_one(tmp_path):
    """MODEL is optional, so argparse handed it the first of several files, which was then
    refused as an unchecked model."""
    rng = np.random.default_rng(5)
    paths = []
    for kind in ("siren", "noise"):
        paths.append(tmp_path / f"{kind}.flac")
        write_wav(paths[-1], synth_clip(kind, rng, seconds=1.5), 16000)
    out = run_cli("predict", *paths, "--json")
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["file"] for r in got] == [str(p) for p in paths]
    assert got == [json.loads(run_cli("predict", "default", p, "--json").stdout) for p in paths]
    # a folder stands for the audio files under it
    folder = run_cli("predict", tmp_path, "--json")
    assert [json.loads(line) for line in folder.stdout.splitlines()] == sorted(
        got, key=lambda r: r["file"])


def test_the_shipped_model_calls_digital_silence_silence(tmp_path):
    """A muted microphone, the virtual mic before anything plays and a file's digital silence
    are exact zeros. The synthetic silence class had only noise floors, so the default model
    called zeros 'harmonic' (0.66)."""
    wav = tmp_path / "muted.wav"
    write_wav(wav, np.zeros(32000, np.float32), 16000)
    out = run_cli("predict", wav, "--json")
    assert out.returncode == 0, out.stderr
    windows = json.loads(out.stdout)["windows"]
    assert len(windows) == 5 and {w["label"] for w in windows} == {"silence"}
    assert min(w["probability"] for w in windows) > 0.8


def test_the_shipped_model_calls_a_steady_sine_a_tone(tmp_path):
    """A test tone has no noise floor and does not move. The generator's tones wobbled by up to
    +-47% (phase, not frequency, modulation) and every clip had a noise floor, so a steady sine
    was "harmonic", or "silence" once digital silence was in the training data."""
    t = np.arange(3 * 16000) / 16000
    for freq, amp in ((300, 0.5), (1000, 0.05), (2500, 0.3)):
        wav = tmp_path / f"sine{freq}.wav"
        write_wav(wav, amp * np.sin(2 * np.pi * freq * t), 16000, subtype="FLOAT")
        out = json.loads(run_cli("predict", wav, "--json").stdout)
        assert out["summary"]["label"] == "tone", (freq, out["summary"])


def test_every_synthetic_clip_is_as_long_as_asked():
    """Soundtracks and tests lay clips end to end by their duration; a silence clip cut short
    (for unique dataset files, which generate_dataset now does itself) shifted every later
    sound and dropped messages a Kafka test counted."""
    from train.synthetic import CLASSES, synth_clip
    rng = np.random.default_rng(4)
    for _ in range(12):
        for kind in CLASSES:
            assert len(synth_clip(kind, rng, 8000, seconds=0.75)) == 6000, kind


def test_the_synthetic_tones_vibrato_is_within_one_percent():
    from train.synthetic import synth_clip
    rng = np.random.default_rng(3)
    for _ in range(10):
        y = synth_clip("tone", rng, seconds=1.5).astype(np.float64)
        # instantaneous frequency from zero crossings of the steady middle (noise floor aside)
        mid = y[4000:20000]
        i = np.flatnonzero((mid[:-1] < 0) & (mid[1:] >= 0))
        crossings = i + mid[i] / (mid[i] - mid[i + 1])  # to a fraction of a sample
        periods = np.diff(crossings)
        # over 10-period spans, so that the noise floor's jitter of each crossing averages out
        spans = (crossings[10:] - crossings[:-10]) / 10
        spread = np.percentile(spans, [2, 98]) / np.median(periods)
        assert spread[0] > 0.97 and spread[1] < 1.03, (16000 / np.median(periods), spread)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_allocator_tuning_is_applied_once_and_can_be_turned_off():
    """The engine keeps freed heap in the process (glibc): half the frame-analysis cost was
    page faults. Here: applied by an engine, idempotent, and AUDIOCLF_MALLOC_TUNING=0 keeps
    the C library's defaults."""
    code = ("import sys; from audioclf.artifact import load_model; import audioclf.memory as m; "
            "from models import default_model_path; from stream.engine import Engine; "
            "Engine(load_model(default_model_path())); print(m._done, m.keep_freed_memory())")
    for env, want in (({}, "True True"), ({"AUDIOCLF_MALLOC_TUNING": "0"}, "False False")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, **env}, timeout=60)
        assert out.stdout.split() == want.split(), out.stderr


@pytest.mark.parametrize("rates", [(44100, 16000), (16000, 44100), (8000, 16000),
                                   (96000, 16000), (22050, 16000)])
def test_stream_resampler_equals_whole_signal_resample(rates):
    """Any split of the input (one sample at a time included) plus flush gives the samples the
    offline resampler gives the whole signal, to float32 rounding, and no more or fewer --
    through the gathered, per-phase and whole-block matrix-product paths."""
    from features.audio import resample, resample_taps
    from features.resample import StreamResampler

    rng = np.random.default_rng(sum(rates))
    for n in (1, 500, 20011):
        x = (0.3 * rng.standard_normal(n)).astype(np.float32)
        want = resample(x, *rates)
        for block in (1, 13, 4096):
            r = StreamResampler(*rates)
            parts = [r.process(x[i:i + block]) for i in range(0, n, block)]
            # bounded state: the filter's inputs, plus those of outputs held for a whole block
            held = -(-(r._block - 1) * r.down // r.up)
            assert r._hist.size <= resample_taps(r.up, r.down)[0] - 1 + held
            got = np.concatenate(parts + [r.flush()])
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, atol=5e-7)


@pytest.mark.parametrize("rates", [(44100, 16000), (8000, 16000), (22050, 16000),
                                   (48000, 16000)])
def test_stream_resampler_joined_mid_way_equals_whole_signal_resample(rates):
    """A resampler that joins a stream at output ``start`` and is fed from ``first_input(start)``
    on gives exactly the whole-signal outputs from ``start`` -- the filter reads no input it was
    not given (no zeros in the middle of a stream)."""
    from features.audio import resample
    from stream.engine import grid_origin
    from features.resample import StreamResampler

    cfg = load_model(default_model_path()).feature_config
    rng = np.random.default_rng(sum(rates))
    x = (0.3 * rng.standard_normal(3 * rates[0])).astype(np.float32)
    want = resample(x, *rates)
    for seen_from in (1, 1600, 4410, 9999):  # the first input sample a consumer sees
        origin, skip = grid_origin(seen_from, rates[0], cfg)
        assert origin % cfg.window_hop_samples == 0 and skip >= 0
        r = StreamResampler(*rates, start=origin)
        first = seen_from + skip
        assert r.first_input(origin) == first >= seen_from
        assert r.first_input(origin - cfg.window_hop_samples) < seen_from  # the earliest such
        got = np.concatenate([r.process(x[i:i + 1000]) for i in range(first, len(x), 1000)]
                             + [r.flush()])
        assert got.shape == want[origin:].shape
        np.testing.assert_allclose(got, want[origin:], atol=5e-7)


@pytest.mark.parametrize("rate", [48000, 44100, 22050, 8000])
def test_engine_at_other_rates_equals_offline_predict(rate):
    """A device or message rate other than the model's: the stream is resampled block by block
    to the samples the offline path (``read_audio`` -> ``resample``) gives the whole file, so
    every window's vector equals ``audioclf predict``'s for the same audio -- no skew between
    training and serving at any rate."""
    from features import signal_windows
    from features.audio import resample

    art = load_model(default_model_path())
    cfg = art.feature_config
    rng = np.random.default_rng(8)
    y16 = np.concatenate([synth_clip("siren", rng, seconds=3.0),
                          synth_clip("noise", rng, seconds=3.1)])
    y = resample(y16, 16000, rate)  # "the file", recorded at `rate`
    starts, X = signal_windows(resample(y, rate, cfg.sr), cfg)  # what predict computes
    preds = []
    eng = Engine(art)
    for i in range(0, len(y), 1021):  # odd block size, as a device would deliver
        preds += eng.push("mic", y[i:i + 1021], rate)
    preds += eng.flush("mic")
    assert [round(p.start * cfg.sr) for p in preds] == list(starts)
    # the samples agree to float32 rounding (~1e-7), which a dB feature can lift to ~1e-5
    scale = np.maximum(np.abs(X).max(axis=0), 0.1)
    assert (np.abs(np.stack([p.vector for p in preds]) - X) / scale).max() < 1e-4
    labels = [p.label for p in preds]
    assert labels == [art.labels[k] for k in art.score(X).argmax(axis=1)]
    if rate >= cfg.sr:  # band-limited to 4 kHz, noise is not what the default model knows
        assert labels[2] == "siren" and labels[-2] == "noise"


@pytest.mark.parametrize("rate", [16000, 8000])
def test_a_window_ends_where_the_audio_does(tmp_path, rate):
    """A clip shorter than one window is scored zero-padded: offline prediction and a stream's
    end (flush) both report the window as ending with the audio, not the padding; a longer
    clip's windows keep their full length."""
    from train.predict import predict_file

    art = load_model(default_model_path())
    cfg = art.feature_config
    rng = np.random.default_rng(12)
    for seconds in (0.3, 2.0):
        y = synth_clip("tone", rng, seconds=seconds)[:: 16000 // rate]
        write_wav(tmp_path / "clip.wav", y, rate)
        offline = predict_file(art, tmp_path / "clip.wav")["windows"]
        eng = Engine(art)
        streamed = eng.push("s", y, rate) + eng.flush("s")
        assert [w.start for w in offline] == [p.start for p in streamed]
        ends = [w.end for w in offline]
        assert ends == pytest.approx([p.end for p in streamed], abs=1e-9)
        if seconds < cfg.window_seconds:
            assert ends == [pytest.approx(len(y) / rate, abs=1e-3)]
        else:
            assert ends == pytest.approx([w.start + cfg.window_seconds for w in offline])


# ---------------------------------------------------------------------------- real device
def listen_while_playing(env, wav, rate, seconds, model=None, settle=1.0):
    cmd = [sys.executable, "-m", "audioclf", "listen", "--json", "--no-drift", "--device",
           "vmic", "--rate", str(rate), "--seconds", str(seconds)]
    if model:
        cmd += ["--model", str(model)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})
    time.sleep(settle)  # the stream is open and hearing silence
    subprocess.run([str(VMIC), "play", str(wav)], check=True, env={**os.environ, **env},
                   stdin=subprocess.DEVNULL, timeout=120)
    out, err = proc.communicate(timeout=seconds + 60)
    assert proc.returncode == 0, err
    return [json.loads(l) for l in out.splitlines()]


@pytest.mark.parametrize("rate", [16000, 48000])
def test_virtual_mic_default_model(vmic_env, tmp_path, rate):
    wav = played_sounds_wav(tmp_path / "played.wav")
    preds = listen_while_playing(vmic_env, wav, rate, seconds=12)
    labels = [p["label"] for p in preds]
    assert len(preds) >= 30
    for kind in ("siren", "noise", "chord"):
        assert labels.count(kind) >= 4, labels


def test_virtual_mic_fsdd_digits(vmic_env, tmp_path):
    from tests.conftest import fsdd_manifest
    rows = fsdd_manifest()
    import csv
    train = [r for r in rows if r["split"] == "train"]
    manifest = tmp_path / "fsdd.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "group"])
        for r in train:
            w.writerow([r["path"], r["digit"], r["speaker"]])
    model = tmp_path / "fsdd.joblib"
    out = run_cli("train", manifest, "--out", model, "--n-iter", 1, "--families", "et",
                  "--cv", 2, "--json", timeout=600)
    assert out.returncode == 0, out.stderr
    from features import read_audio
    tests = [r for r in rows if r["split"] == "test" and r["speaker"] == "george"][:6]
    gap = np.zeros(16000, np.float32)
    y = [gap]
    for r in tests:
        clip, _ = read_audio(r["path"], sr=16000)
        y += [clip, gap]
    wav = tmp_path / "digits.wav"
    write_wav(wav, np.concatenate(y), 16000)
    preds = listen_while_playing(vmic_env, wav, 16000, seconds=len(np.concatenate(y)) / 16000 + 3,
                                 model=model)
    # the loudest window around each played digit must name it
    heard = [p for p in preds if p["level_db"] > -45]
    said = [r["digit"] for r in tests]
    hits = sum(any(p["label"] == d for p in heard) for d in said)
    assert hits >= len(said) - 1, ([p["label"] for p in heard], said)


# ---------------------------------------------------------------------------- error paths
def test_portaudio_missing_is_one_line(tmp_path):
    # Simulated: the library is present here, so the test hides it from ctypes' lookup the way a
    # machine without libportaudio2 would (the only mock in this file).
    (tmp_path / "sitecustomize.py").write_text(
        "import ctypes.util\n_orig = ctypes.util.find_library\n"
        "ctypes.util.find_library = lambda n: None if 'portaudio' in n else _orig(n)\n")
    out = subprocess.run([sys.executable, "-m", "audioclf", "devices"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode == 1
    assert "libportaudio2" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


class _Time:
    def __init__(self, adc):
        self.inputBufferAdcTime = adc


class _Status:
    def __init__(self, overflow):
        self.input_overflow = overflow


def _offline_mic(rate, ring_seconds=20.0):
    """A MicSource fed by calling its callback (no device), for what hardware cannot be made to
    do here: PulseAudio buffers instead of overflowing."""
    from stream.sources import MicSource

    src = MicSource.__new__(MicSource)
    src._setup(None, rate, 1, 0, ring_seconds, 3)  # MicSource's own state, with no device
    src.start = src.stop = lambda: None
    return src


def test_audio_lost_while_the_device_is_reopened_keeps_its_place_on_the_clock():
    """Mocked device loss: the stream stops after 2.0 s and the device comes back 0.7 s later,
    its capture clock starting afresh (so capture times cannot say what was lost). The gap is
    measured from the blocks' arrival times instead, and `listen` rejoins the window grid
    there: later windows keep their stream times and equal offline prediction."""
    from features import signal_windows
    from stream.listen import run
    from train.synthetic import random_soundtrack

    art = load_model(default_model_path())
    sr = art.feature_config.sr
    y = random_soundtrack(12, 6.0, sr)
    block = sr // 10
    src = _offline_mic(sr)
    arrival = []
    src._clock = lambda: arrival[-1]
    for k in range(20):  # 0-2.0 s, each block arriving 3 ms after its end
        arrival.append(50.0 + (k + 1) / 10 + 0.003)
        src._callback(y[k * block:(k + 1) * block, None], block, _Time(700.0 + k / 10),
                      _Status(False))

    class _Stopped:
        active = False

        def close(self):
            pass

    src._stream = _Stopped()
    src._reopen()  # the device came back (start() is a no-op here)
    assert src.reopens == 1
    for k in range(27, len(y) // block):  # 2.0-2.7 s never arrive; a new capture clock
        arrival.append(50.0 + (k + 1) / 10 + 0.003)
        src._callback(y[k * block:(k + 1) * block, None], block, _Time(3.0 + k / 10),
                      _Status(False))
    assert src.input_overflows == 0 and src.lost_samples == 7 * block
    # the estimate is as good as the arrival times: 1 ms more delivery latency, 1 ms more lost
    late = _offline_mic(sr)
    late._clock = lambda: arrival[-1]
    arrival.append(10.1 + 0.003)
    late._callback(y[:block, None], block, _Time(1.0), _Status(False))
    late._stream = _Stopped()
    late._reopen()
    arrival.append(10.9 + 0.004)
    late._callback(y[:block, None], block, _Time(0.5), _Status(False))
    assert late.lost_samples == 7 * block + sr // 1000
    out = __import__("io").StringIO()
    summary = run(Engine(art), src, emit_json=True, max_seconds=1.5, out=out)
    assert summary["resyncs"] == 1 and summary["lost_s"] == 0.7
    got = [json.loads(line) for line in out.getvalue().splitlines()]
    starts, X = signal_windows(y, art.feature_config)
    want = [(s / sr, p) for s, p in zip(starts, art.score(X))
            if (s + art.feature_config.window_samples) / sr <= 2.0 or s / sr >= 2.75]
    assert [g["start"] for g in got] == [round(t, 4) for t, _ in want]
    for g, (_, p) in zip(got, want):
        assert max(abs(g["probs"][c] - v) for c, v in zip(art.labels, p)) < 1e-3, g["start"]


def test_an_overflow_gap_is_measured_from_capture_times_and_the_clock_skips_it():
    """Mocked overflow: blocks captured at 100 ms steps, then one 300 ms late with PortAudio's
    overflow flag -- 200 ms were lost. `listen` rejoins the window grid after the gap: later
    windows keep their stream times and equal offline prediction of the same recording, and no
    window splices the two sides. Before, the clock fell 200 ms behind and the windows around
    the gap mixed audio 200 ms apart."""
    from features import signal_windows
    from stream.listen import run
    from train.synthetic import random_soundtrack

    art = load_model(default_model_path())
    sr = art.feature_config.sr
    y = random_soundtrack(11, 6.0, sr)
    block, lost = sr // 10, (20, 22)  # blocks 20-21 (2.0-2.2 s) never arrive
    src = _offline_mic(sr)
    for k in range(len(y) // block):
        if lost[0] <= k < lost[1]:
            continue
        src._callback(y[k * block:(k + 1) * block, None], block, _Time(1000.0 + k / 10),
                      _Status(k == lost[1]))
    assert src.input_overflows == 1 and src.lost_samples == 2 * block
    jitter = _offline_mic(sr)  # a flag with capture times 0.5 ms late: nothing measurable lost
    for k, late in enumerate((0.0, 0.0, 0.0005)):
        jitter._callback(y[:block, None], block, _Time(5.0 + k / 10 + late), _Status(k == 2))
    assert jitter.input_overflows == 1 and jitter.lost_samples == 0
    out = __import__("io").StringIO()
    summary = run(Engine(art), src, emit_json=True, max_seconds=1.5, out=out)
    assert summary["resyncs"] == 1 and summary["lost_s"] == 0.2
    got = [json.loads(line) for line in out.getvalue().splitlines()]
    starts, X = signal_windows(y, art.feature_config)
    scores = art.score(X)
    want = [(s / sr, p) for s, p in zip(starts, scores)
            if (s + art.feature_config.window_samples) / sr <= 2.0 or s / sr >= 2.25]
    assert [g["start"] for g in got] == [round(t, 4) for t, _ in want]
    for g, (_, p) in zip(got, want):
        assert max(abs(g["probs"][c] - v) for c, v in zip(art.labels, p)) < 1e-3, g["start"]


def test_audio_after_a_gap_shorter_than_the_way_to_the_grid_is_dropped_quietly():
    """After the gap the stream waits for its next window hop: a read that ends before it
    leaves nothing to score (a first version crashed taking the level of the empty rest)."""
    from stream.listen import run

    art = load_model(default_model_path())
    sr = art.feature_config.sr
    y = np.random.default_rng(3).standard_normal(3 * sr).astype(np.float32) * 0.1
    block = sr // 10
    src = _offline_mic(sr)
    for k in range(20):
        src._callback(y[k * block:(k + 1) * block, None], block, _Time(9.0 + k / 10),
                      _Status(False))
    # 2.0-2.2 s lost; then 25 ms, short of the next window hop at 2.25 s
    src._callback(y[2 * sr + 2 * block:2 * sr + 2 * block + 400, None], 400, _Time(11.2),
                  _Status(True))
    out = __import__("io").StringIO()
    summary = run(Engine(art), src, emit_json=True, max_seconds=1.0, out=out)
    assert summary["resyncs"] == 1 and summary["predictions"] == 5  # windows ending by 2.0 s
    assert summary["audio_s"] == pytest.approx(2.025, abs=0.006)  # read, then dropped


def test_input_overflow_flags_are_counted():
    # Mocked: a hardware overflow cannot be provoked through PulseAudio (it buffers instead), so
    # the callback is handed the status flag PortAudio would set.
    class Status:
        input_overflow = True

    src = _offline_mic(16000)
    src._callback(np.ones((10, 1), np.float32), 10, None, Status())
    assert src.input_overflows == 1 and src.ring.available == 10


def test_bad_device_and_rate_are_one_line(vmic_env):
    for extra, expect in ((["--device", "99"], "input device"),
                          (["--device", "vmic", "--rate", "12345678"], "cannot record")):
        out = subprocess.run([sys.executable, "-m", "audioclf", "listen", "--json", "--seconds",
                              "1", *extra], capture_output=True, text=True, timeout=60,
                             env={**os.environ, **vmic_env})
        assert out.returncode == 1, out.stderr
        assert expect in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_device_lost_mid_stream_exits_with_message(vmic_env):
    """Really pull the device: stop the virtual mic's sound server while listening."""
    proc = subprocess.Popen([sys.executable, "-m", "audioclf", "listen", "--json", "--no-drift",
                             "--device", "vmic", "--rate", "16000", "--seconds", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **vmic_env})
    try:
        time.sleep(3)
        subprocess.run([str(VMIC), "stop"], check=True, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run([str(VMIC), "start"], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=180)  # leave the device as the other tests expect it
    assert proc.returncode == 1, (out[-500:], err)
    assert "lost" in err and "Traceback" not in err


def test_ctrl_c_stops_cleanly_with_summary():
    proc = subprocess.Popen([sys.executable, "-m", "audioclf", "listen", "--demo", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)  # real-time pace: a few windows out
    proc.send_signal(subprocess.signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    summary = json.loads(err.strip().splitlines()[-1])["summary"]
    assert summary["predictions"] == len(out.splitlines()) > 0
    assert summary["audio_s"] < 10 and "Traceback" not in err


def test_the_dashboard_written_to_a_file_ends_its_last_line():
    """Without a terminal the dashboard is drawn once, at the end: its last line must end, or
    whatever comes next in the log (the summary on stderr, with 2>&1) is glued to it."""
    out = subprocess.run([sys.executable, "-m", "audioclf", "listen", "--demo", "--seconds",
                          "1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "counters" in out.stdout and out.stdout.endswith("\n")


def test_the_dashboard_shows_a_regression_models_value_in_its_unit(tmp_path):
    """A regression model has no winning class: the dashboard shows the smoothed value with
    the target's name and unit (it said 'smoothed winner' over an empty line)."""
    import csv

    from audioclf.artifact import save_model
    from features import FeatureConfig
    from train.dataset import load_dataset
    from train.fit import TrainOptions, train_model

    rng = np.random.default_rng(13)
    rows = []
    for i in range(12):
        f = 300.0 + 150 * i
        tone = 0.3 * np.sin(2 * np.pi * f * np.arange(16000) / 16000)
        write_wav(tmp_path / f"t{i}.wav", tone + 0.01 * rng.standard_normal(16000), 16000)
        rows.append({"path": f"t{i}.wav", "target": f, "group": f"g{i % 3}"})
    with open(tmp_path / "m.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = train_model(load_dataset(tmp_path / "m.csv"), FeatureConfig(),
                      TrainOptions(n_iter=2, cv=3, n_jobs=1, cache_dir=None, progress=False,
                                   families=("et",), target_unit="Hz"))
    save_model(res.artifact, tmp_path / "r.joblib")
    out = subprocess.run([sys.executable, "-m", "audioclf", "listen", "--file",
                          str(tmp_path / "t3.wav"), "--model", str(tmp_path / "r.joblib"),
                          "--fast"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "prediction (smoothed value)" in out.stdout and "winner" not in out.stdout
    assert re.search(r"target \d+(\.\d+)? Hz", out.stdout), out.stdout


def test_a_predictions_label_events_are_as_they_stood_at_its_window():
    """A label's onset is reported by the window that starts it, with no offset yet; a later
    window ends it. `consume` sends a batch's predictions after scoring the next batch, so the
    onset's message must not pick up the offset a later window set."""
    art = load_model(default_model_path())
    rng = np.random.default_rng(14)
    y = np.concatenate([synth_clip("tone", rng, seconds=3.0), synth_clip("noise", rng, seconds=3.0)])
    preds = Engine(art).push("s", y)
    onsets = [(p, e) for p in preds for e in p.events if e.label == "tone" and e.offset is None]
    assert onsets, [(p.label, p.events) for p in preds]
    ended = [e for p in preds for e in p.events if e.label == "tone" and e.offset is not None]
    assert ended  # the noise ended it, in a later window's events
    for p, _ in onsets:
        assert [e["offset"] for e in p.to_json()["events"] if e["label"] == "tone"] == [None]


def test_every_window_of_a_long_push_keeps_its_audio_for_capture():
    """A Kafka poll batch can hold seconds of one stream (a consumer catching up): every window
    it completes carries its samples for drift capture, not only the last few (the engine used
    to keep one chunk plus one window, so `consume --capture-dir` saved 3 of ~180 windows)."""
    from audioclf.artifact import load_model
    from models import default_model_path
    from stream.engine import Engine
    from train.synthetic import random_soundtrack

    art = load_model(default_model_path())
    cfg = art.feature_config
    y = random_soundtrack(4, 6.0, cfg.sr)
    chunk = cfg.sr // 10
    engine = Engine(art, keep_audio=True)
    preds = engine.push_many([("a", y[i:i + chunk], cfg.sr) for i in range(0, 4 * cfg.sr, chunk)])
    preds += engine.push_many([("a", y[i:i + chunk], cfg.sr)
                               for i in range(4 * cfg.sr, len(y), chunk)])
    assert [p.start for p in preds] == [k * 0.25 for k in range(21)]
    for p in preds:
        start = int(round(p.start * cfg.sr))
        np.testing.assert_array_equal(p.audio, y[start:start + cfg.window_samples])
    assert len(engine.streams["a"].audio) <= 2 * cfg.sr + cfg.window_samples  # still bounded


def test_streams_interleaved_in_odd_chunks_equal_each_stream_pushed_alone():
    """push_many gathers every chunk's new frames from one buffer (each stream's samples
    placed on the hop grid): chunks shorter than a frame, empty, longer than a window, and a
    stream several times in one call must give each stream the windows it gives alone."""
    from train.synthetic import random_soundtrack

    art = load_model(default_model_path())
    cfg = art.feature_config
    rng = np.random.default_rng(11)
    signals = {f"s{k}": random_soundtrack(30 + k, seconds, cfg.sr)
               for k, seconds in enumerate([1.0, 2.3, 3.1, 1.3])}
    sizes = [0, 1, 137, 159, 160, 511, 512, 513, 1600, 7919, 20000]
    pieces = {sid: [] for sid in signals}
    for sid, y in signals.items():
        at = 0
        while at < len(y):
            n = int(rng.choice(sizes))
            pieces[sid].append(y[at:at + n])
            at += n
    order = [sid for sid, ps in pieces.items() for _ in ps]
    rng.shuffle(order)  # streams interleaved, the same stream often twice in a row
    taken = {sid: iter(ps) for sid, ps in pieces.items()}
    chunks = [(sid, next(taken[sid]), cfg.sr) for sid in order]
    engine, got = Engine(art), []
    for i in range(0, len(chunks), 7):  # calls of several chunks (one poll batch each)
        got += engine.push_many(chunks[i:i + 7])
    for sid, y in signals.items():
        alone = Engine(art).push(sid, y)
        mine = [p for p in got if p.stream_id == sid]
        assert [p.start for p in mine] == [p.start for p in alone] and alone
        np.testing.assert_allclose(np.stack([p.vector for p in mine]),
                                   np.stack([p.vector for p in alone]), rtol=1e-6, atol=1e-6)
