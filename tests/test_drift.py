"""Drift: state machine, long in-distribution run, five kinds of shift, capture, report, alerts."""
import csv
import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import scipy.signal

from audioclf.artifact import load_model
from features.audio import resample, write_wav
from models import default_model_path
from stream.capture import CaptureWriter
from stream.drift import DRIFT, OK, WARN, DriftDetector, DriftMonitor
from stream.engine import Engine
from train.synthetic import random_soundtrack

SR = 16000


def test_baseline_quantiles_are_numpys():
    """build_baseline sorts once and interpolates itself; it must give np.quantile's numbers
    (ties, constant columns, one window, and the ends included)."""
    from features.baseline import N_QUANTILES, bin_shares, build_baseline, sorted_quantiles

    rng = np.random.default_rng(3)
    X = rng.standard_normal((517, 6))
    X[:, 1] = np.round(X[:, 1])  # ties
    X[:, 2] = 4.0  # constant
    q = np.linspace(0, 1, N_QUANTILES)
    for data in (X, X[:1], X[:2]):
        got = sorted_quantiles(np.sort(data, axis=0), q)
        np.testing.assert_allclose(got, np.quantile(data, q, axis=0), rtol=1e-15, atol=1e-15)
    base = build_baseline(X, [f"f{j}" for j in range(6)])
    want_edges = np.quantile(X, np.linspace(0, 1, 11)[1:-1], axis=0).T.astype(np.float32)
    np.testing.assert_array_equal(base["edges"], want_edges)
    np.testing.assert_array_equal(base["quantiles"], np.quantile(X, q, axis=0).T.astype(np.float32))
    # bin shares from the sorted columns: every value binned, values on an edge included
    edges = np.quantile(X, np.linspace(0, 1, 11)[1:-1], axis=0).T
    want_shares = np.stack([bin_shares(X[:, j], edges[j]) for j in range(6)])
    np.testing.assert_array_equal(base["shares"], want_shares.astype(np.float32))
    assert (np.isin(X[:, 1], edges[1])).any()  # the tied column has values on its edges


def test_hysteresis_state_machine():
    d = DriftDetector(k_enter=3, k_leave=2)
    assert [d.update(x) for x in [WARN, WARN, OK, WARN, WARN, WARN]] == \
        [OK, OK, OK, OK, OK, WARN]
    assert [d.update(x) for x in [DRIFT, DRIFT, DRIFT]] == [WARN, WARN, DRIFT]
    assert d.drift_detected
    assert [d.update(x) for x in [OK, DRIFT, OK, OK]] == [DRIFT, DRIFT, DRIFT, OK]


def test_confidence_drop_confirms_a_feature_share_warning():
    from features.baseline import build_baseline
    from stream.drift import DriftThresholds, evaluate_window

    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(20)]
    base = build_baseline(rng.standard_normal((2000, 20)), names, confidence=0.9)
    recent = rng.standard_normal((480, 20))
    recent[:, :4] += 5  # 20% of the features moved: a warning share, short of drift (30%)
    th = DriftThresholds()
    level = lambda X, conf: evaluate_window(X, None, base, th, np.full(len(X), conf))["level"]
    assert level(recent, 0.88) == WARN  # the model is as sure as in validation
    assert level(recent, 0.5) == DRIFT  # inputs moved and the model is unsure of them
    assert level(rng.standard_normal((480, 20)), 0.5) == WARN  # unsure alone: a warning


@pytest.fixture(scope="module")
def art():
    return load_model(default_model_path())


def clean_audio(seed, seconds):
    """Held-out in-distribution audio: the default model's generator with a new seed."""
    return random_soundtrack(seed, seconds, SR)


def stream(art, monitor, engine, y, sid="s"):
    states = []
    for i in range(0, len(y), 4000):
        for p in engine.push(sid, np.asarray(y[i:i + 4000], np.float32)):
            monitor.process(p)
            states.append(monitor.state(sid))
    return states


def test_monitor_history_is_compact_and_follows_its_window(art):
    """The monitor's per-stream summary equals a weighted recount of the windows themselves:
    plain averages while the first ``size`` arrive, then each window weighted
    alpha * (1 - alpha)**age (the first ``size`` sharing the decayed remainder); the class mix
    and confidence are those of the last ``size`` windows."""
    from features.baseline import bin_index

    names, edges = art.baseline["names"], art.baseline["edges"]
    preds = Engine(art).push("s", clean_audio(42, 40.0))
    size = 100
    monitor = DriftMonitor(art, window=size, every=10, min_windows=size)

    def recount(held):
        X = np.stack([p.vector[: len(names)] for p in held]).astype(np.float64)
        alpha, later = 2 / (size + 1), len(held) - size
        w = np.r_[np.full(size, (1 - alpha) ** later / size),
                  alpha * (1 - alpha) ** np.arange(later - 1, -1, -1)]
        onehot = np.zeros((len(held), len(names), edges.shape[1] + 1))
        np.put_along_axis(onehot, bin_index(X, edges)[..., None], 1.0, axis=2)
        return np.einsum("w,wtb->tb", w, onehot) * size, w @ X

    for p in preds[:size]:
        monitor.process(p)
    hist = monitor.streams["s"]["history"]
    counts, mean = recount(preds[:size])
    np.testing.assert_allclose(hist.counts, counts, atol=1e-4)  # plain counts while filling
    np.testing.assert_allclose(hist.mean, mean, rtol=1e-9, atol=1e-9)
    for p in preds[size:]:
        monitor.process(p)
    assert len(preds) > 1.5 * size  # the history went on past its size
    counts, mean = recount(preds)
    np.testing.assert_allclose(hist.counts, counts, atol=1e-3)
    np.testing.assert_allclose(hist.mean, mean, rtol=1e-9, atol=1e-9)
    held = preds[-size:]
    labels = art.baseline["labels"]
    np.testing.assert_array_equal(hist.class_counts,
                                  [sum(p.label == lab for p in held) for lab in labels])
    assert hist.mean_confidence() == pytest.approx(np.mean([p.probability for p in held]))
    X = np.stack([p.vector[: len(names)] for p in preds])
    assert hist.nbytes < 0.1 * X.nbytes * 480 / len(preds)  # far below 480 vectors
    monitor.forget("s")
    assert monitor.nbytes == 0 and monitor.state("s") == OK


def test_monitor_batches_equal_one_by_one(art):
    """What the monitor thread does with a dequeued batch (two streams interleaved, binned at
    once, each stream's run folded in one step) equals processing the windows one by one:
    same evaluations, same histories."""
    preds_a = Engine(art).push("a", clean_audio(43, 30.0))
    preds_b = Engine(art).push("b", clean_audio(44, 30.0))
    mixed = [p for pair in zip(preds_a, preds_b) for p in pair]
    one, many = (DriftMonitor(art, window=50, every=7, min_windows=40) for _ in range(2))
    single = [r for r in map(one.process, mixed) if r is not None]
    batched = []
    for k in range(0, len(mixed), 23):  # batches that straddle evaluations and the fill
        batched += many.process_many(mixed[k:k + 23])
    assert len(single) == len(batched) == one.evaluations > 10
    key = lambda r: (r["stream_id"], r["window_span"][1])  # noqa: E731
    for r1, r2 in zip(sorted(single, key=key), sorted(batched, key=key)):
        assert key(r1) == key(r2) and r1["level"] == r2["level"]
        assert r1["drift_share"] == pytest.approx(r2["drift_share"], abs=0.01)
    for sid in ("a", "b"):
        h1, h2 = one.streams[sid]["history"], many.streams[sid]["history"]
        np.testing.assert_allclose(h1.counts, h2.counts, atol=1e-4)
        np.testing.assert_allclose(h1.mean, h2.mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(h1.class_counts, h2.class_counts)


def test_long_in_distribution_run_never_drifts(art):
    monitor = DriftMonitor(art)
    states = stream(art, monitor, Engine(art), clean_audio(500, 400.0))
    assert len(states) > 1500
    assert DRIFT not in states
    # the predicted-class mix of clean streamed audio is what the baseline expects: compared
    # with training labels' frequencies it reached 0.52, past the 0.5 that warns
    assert monitor.streams["s"]["last"]["prediction_psi"] < 0.25
    false_warn = sum(s == WARN for s in states) / len(states)
    print(f"false WARN rate {false_warn:.3f} over {len(states)} windows")
    assert false_warn < 0.15


def test_before_its_first_evaluation_the_monitor_says_so(art):
    """For the first 480 windows (2 minutes) nothing is evaluated; the dashboard said "state OK
    drift share 0.00", as if the audio had been checked. It now says how long until it is."""
    monitor, engine = DriftMonitor(art, min_windows=40, every=10), Engine(art)
    stream(art, monitor, engine, clean_audio(41, 5.0))  # 17 windows
    d = monitor.status_dict()
    assert monitor.evaluations == 0 and d["windows_to_first_evaluation"] == 40 - 17
    text = monitor.status_text()
    assert text.startswith("not evaluated yet") and "40 windows" in text and "23 to go" in text
    assert "state OK" not in text
    stream(art, monitor, engine, clean_audio(42, 8.0))
    assert monitor.evaluations >= 1
    assert "windows_to_first_evaluation" not in monitor.status_dict()
    assert monitor.status_text().startswith("state ")


def buzz(seconds):
    t = np.arange(int(seconds * SR)) / SR
    return (0.2 * np.sign(np.sin(2 * np.pi * 55 * t)) * (0.6 + 0.4 * np.sin(12 * np.pi * t))
            ).astype(np.float32)


SHIFTS = {
    "noise_0dB": lambda y, rng: y + rng.standard_normal(len(y)).astype(np.float32) * np.std(y),
    "lowpass_500": lambda y, rng: scipy.signal.sosfilt(
        scipy.signal.butter(8, 500, fs=SR, output="sos"), y),
    "gain_-30dB": lambda y, rng: y * 10 ** (-30 / 20),
    "rate_mismatch": lambda y, rng: resample(y, SR, 22050)[: len(y)],
    "unseen_class": lambda y, rng: buzz(len(y) / SR),
}


@pytest.mark.parametrize("name", list(SHIFTS))
def test_shift_is_detected_within_k_windows(art, name):
    engine, monitor = Engine(art), DriftMonitor(art)
    stream(art, monitor, engine, clean_audio(600, 125.0))
    assert monitor.state("s") == OK
    rng = np.random.default_rng(3)
    shifted = np.asarray(SHIFTS[name](clean_audio(700, 100.0), rng), np.float32)
    states = stream(art, monitor, engine, shifted)
    delay = next((i for i, s in enumerate(states) if s == DRIFT), None)
    print(f"{name}: DRIFT after {delay} windows")
    assert delay is not None and delay <= 400
    top = monitor.streams["s"]["last"]["top_features"]
    assert top and top[0]["psi"] > 0.25


def test_capture_folder_is_bounded_and_trainable(art, tmp_path):
    engine = Engine(art, keep_audio=True)
    preds = engine.push("dev/1", clean_audio(1, 6.0))
    assert len(preds) == 21 and all(p.audio is not None for p in preds)
    # each window: 1 s float32 WAV (~64 kB) + its vector (~1.5 kB); room for three and a half
    cap = CaptureWriter(str(tmp_path / "cap2"), SR, max_bytes=int(3.5 * (64_000 + 1600 + 200)))
    for p in preds:
        cap.save(p, WARN)
    assert cap.saved == len(preds) and cap.dropped == len(preds) - 3
    with open(tmp_path / "cap2" / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and rows[-1]["start"] == f"{preds[-1].start:.3f}"
    assert len([f for f in os.listdir(tmp_path / "cap2") if f.endswith(".wav")]) == 3
    np.testing.assert_allclose(np.load(tmp_path / "cap2" / rows[-1]["features"]), preds[-1].vector)
    from features import read_audio
    y, _ = read_audio(tmp_path / "cap2" / rows[-1]["path"], sr=SR)
    assert len(y) == art.feature_config.window_samples
    # the manifest is a training manifest once a person fills in labels: those not labelled
    # yet are left out (and counted); with none labelled there is nothing to train on
    from train.dataset import DataError, load_dataset
    with pytest.raises(DataError, match="none of its 3 captured windows has a label yet"):
        load_dataset(tmp_path / "cap2" / "manifest.csv")
    rows[1]["label"] = "noise"
    with open(tmp_path / "cap2" / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ds = load_dataset(tmp_path / "cap2" / "manifest.csv", require_labels=False)
    assert [os.path.basename(it.path) for it in ds.items] == [rows[1]["path"]]
    assert ds.unlabelled_captures == 2 and ds.labels == ["noise"]
    # an ordinary manifest with an empty label is still a mistake to point out
    plain = tmp_path / "plain.csv"
    plain.write_text("path,label\nx.wav,noise\ny.wav,\n")
    with pytest.raises(DataError, match="1 row\\(s\\) have an empty label"):
        load_dataset(plain)


def test_capture_groups_overlapping_windows_and_later_sessions_keep_earlier_files(art, tmp_path):
    """Windows that share samples are one group (so grouped CV never validates on audio it
    trained on), and a second session into the folder -- stream time from 0 again, same
    stream id -- adds files instead of overwriting the ones the manifest already names."""
    from train.dataset import load_dataset
    from train.fit import cv_splits

    folder = tmp_path / "cap"
    kept = (0, 1, 2, 6, 7, 10, 16)  # windows start every 0.25 s and last 1 s
    for session in range(2):
        preds = Engine(art, keep_audio=True).push("live", clean_audio(20 + session, 5.0))
        cap = CaptureWriter(str(folder), SR)
        for i in kept:
            cap.save(preds[i], WARN)
    with open(folder / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * len(kept) and len({r["path"] for r in rows}) == len(rows)
    groups = [r["group"] for r in rows]
    # runs: 0-2 overlap; 6 starts where 2 ends (1.5 s) and overlaps 7 and 10; 16 stands alone
    run = [0, 0, 0, 1, 1, 1, 2]
    for session in range(2):
        g = groups[session * len(kept):(session + 1) * len(kept)]
        assert [g.index(x) for x in g] == [run.index(k) for k in run]
    assert not set(groups[:len(kept)]) & set(groups[len(kept):])
    # each file still holds its own session's audio: the first session's last window
    from features import read_audio
    first = Engine(art, keep_audio=True).push("live", clean_audio(20, 5.0))[kept[-1]].audio
    y, _ = read_audio(folder / rows[len(kept) - 1]["path"], sr=SR)
    np.testing.assert_array_equal(y, first)

    for i, r in enumerate(rows):  # labelled by run: 4 runs of one class, 2 of the other
        r["label"] = "speech" if run[i % len(kept)] == 1 else "noise"
    with open(folder / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ds = load_dataset(folder / "manifest.csv")
    assert ds.has_groups
    g = np.array([it.group for it in ds.items])
    y_ = np.array([it.label for it in ds.items])
    for tr, va in cv_splits("classify", y_, g, None, 3, 0):
        assert not set(g[tr]) & set(g[va])


def test_capture_folder_edited_in_a_spreadsheet_is_continued(art, tmp_path):
    """A person labels the manifest in a spreadsheet, which saves a BOM and maybe a column of
    their own; the next capture session keeps their labels and their column."""
    from train.dataset import load_dataset

    folder = tmp_path / "cap"
    preds = Engine(art, keep_audio=True).push("live", clean_audio(30, 3.0))
    cap = CaptureWriter(str(folder), SR)
    for p in preds[:2]:
        cap.save(p, WARN)
    with open(folder / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(folder / "manifest.csv", "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.DictWriter(fh, fieldnames=["notes", *rows[0]])
        w.writeheader()
        w.writerows({**r, "label": "speech", "notes": "checked"} for r in rows)
    assert (folder / "manifest.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    cap = CaptureWriter(str(folder), SR)
    cap.save(preds[5], WARN)
    with open(folder / "manifest.csv", newline="") as fh:
        again = list(csv.DictReader(fh))
    assert [r["label"] for r in again] == ["speech", "speech", ""]
    assert [r["notes"] for r in again] == ["checked", "checked", ""]
    again[-1]["label"] = "noise"
    with open(folder / "manifest.csv", "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.DictWriter(fh, fieldnames=list(again[0]))
        w.writeheader()
        w.writerows(again)
    assert [it.label for it in load_dataset(folder / "manifest.csv").items] == \
        ["speech", "speech", "noise"]
    # edited while a session still captures into it: the next save keeps the edit, and its
    # row lines up with the spreadsheet's column order
    with open(folder / "manifest.csv", "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.DictWriter(fh, fieldnames=["label", "notes", "path"] + [
            c for c in again[0] if c not in ("label", "notes", "path")])
        w.writeheader()
        w.writerows({**r, "notes": "heard"} for r in again)
    cap.save(preds[8], WARN)
    with open(folder / "manifest.csv", newline="", encoding="utf-8-sig") as fh:
        last = list(csv.DictReader(fh))
    assert [r["notes"] for r in last] == ["heard"] * 3 + [""]
    assert [r["label"] for r in last] == ["speech", "speech", "noise", ""]
    assert last[-1]["path"] == f"live_{preds[8].start:011.3f}.wav" and last[-1]["start"] == \
        f"{preds[8].start:.3f}"


def test_an_unreadable_capture_manifest_is_one_line_and_kept(tmp_path):
    folder = tmp_path / "cap"
    folder.mkdir()
    garbage = b"path,label\n\xff\xfe\x00garbage\n"
    (folder / "manifest.csv").write_bytes(garbage)
    wav = tmp_path / "a.wav"
    write_wav(wav, clean_audio(70, 2.0), SR)
    out = run_cli("listen", "--file", wav, "--fast", "--json", "--capture-dir", folder)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f"audioclf: error: {folder / 'manifest.csv'}: not a readable capture")
    assert (folder / "manifest.csv").read_bytes() == garbage


def test_a_capture_dir_that_cannot_be_one_is_one_line(tmp_path):
    wav = tmp_path / "a.wav"
    write_wav(wav, clean_audio(71, 2.0), SR)
    (tmp_path / "taken").write_text("a file")
    for folder, says in ((tmp_path / "taken", "is a file, not a folder"),
                         (tmp_path / "taken" / "sub", "cannot create it (Not a directory)")):
        out = run_cli("listen", "--file", wav, "--fast", "--json", "--capture-dir", folder)
        assert out.returncode == 1 and out.stderr.strip().splitlines() == [
            f"audioclf: error: --capture-dir {folder}: {says}"], out.stderr


def test_a_failing_capture_is_counted_and_monitoring_goes_on(art, tmp_path):
    """The capture folder removed (or the disk full) mid-session: the save is counted and
    reported, half-written files are not left behind, and the monitor thread -- which saves --
    does not die; the next save after the folder is back works."""
    import shutil

    folder = tmp_path / "cap"
    monitor = DriftMonitor(art, capture_dir=str(folder))
    preds = Engine(art, keep_audio=True).push("live", clean_audio(40, 3.0))
    assert monitor.capture.save(preds[0], WARN)
    shutil.rmtree(folder)
    assert monitor.capture.save(preds[1], WARN) is None
    d = monitor.status_dict()
    assert d["capture_failed"] == 1 and str(folder) in d["capture_error"]
    assert "capture failed 1x" in monitor.status_text()
    folder.mkdir()
    assert monitor.capture.save(preds[2], WARN) and monitor.capture.saved == 2
    with open(folder / "manifest.csv") as fh:  # neither the lost window's row nor that of
        # the window removed with the folder: the manifest names files that are there
        assert [r["path"] for r in csv.DictReader(fh)] == [f"live_{preds[2].start:011.3f}.wav"]
    assert sorted(os.listdir(folder)) == sorted(
        ["manifest.csv", *(f"live_{p.start:011.3f}{ext}" for p in (preds[2],)
                           for ext in (".wav", ".npy"))])
    # the manifest alone cannot be written: the window's files stay, its row is written with
    # the next save that can
    os.remove(folder / "manifest.csv")
    (folder / "manifest.csv").mkdir()
    assert monitor.capture.save(preds[3], WARN) and monitor.capture.failed == 2
    (folder / "manifest.csv").rmdir()
    assert monitor.capture.save(preds[4], WARN)
    with open(folder / "manifest.csv") as fh:
        assert [r["start"] for r in csv.DictReader(fh)] == [f"{p.start:.3f}" for p in preds[3:5]]


CAPTURING_PROCESS = """
import sys, numpy as np
from types import SimpleNamespace
from stream.capture import CaptureWriter
folder, sid, n, cap = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
writer = CaptureWriter(folder, 16000, max_bytes=cap)
rng = np.random.default_rng(abs(hash(sid)) % 2**32)
for i in range(n):
    audio = rng.standard_normal(16000).astype(np.float32) * 0.1
    writer.save(SimpleNamespace(audio=audio, vector=np.full(428, i, np.float32), stream_id=sid,
                                start=i * 0.25, end=i * 0.25 + 1.0, label="x", value=None,
                                probability=0.5), "DRIFT")
print(writer.saved, writer.dropped, writer.failed)
"""


def test_consumers_of_a_group_can_share_a_capture_folder(tmp_path):
    """`consume --capture-dir` on a shared volume, one per consumer of a group: each used to
    rewrite the manifest from its own memory (the other's rows vanished, their files were
    orphaned). Saves append under a lock on the folder, and a bounded rewrite re-reads it."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    window = 64_044 + 1_840  # a 1 s float WAV + a 428-float vector
    for cap, n in ((10**9, 60), (40 * window, 120)):
        folder = tmp_path / f"cap{cap}"
        procs = [subprocess.Popen([sys.executable, "-c", CAPTURING_PROCESS, str(folder), sid,
                                   str(n), str(cap)], cwd=repo, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for sid in ("a", "b")]
        results = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), results
        saved, dropped, failed = np.sum([list(map(int, out.split())) for out, _ in results], 0)
        assert saved == 2 * n and failed == 0
        with open(folder / "manifest.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        paths = [r["path"] for r in rows]
        assert len(set(paths)) == len(paths) == 2 * n - dropped
        on_disk = sorted(f for f in os.listdir(folder) if f != "manifest.csv")
        assert on_disk == sorted(paths + [r["features"] for r in rows])  # none orphaned
        for r in rows:
            assert float(np.load(folder / r["features"])[0]) * 0.25 == float(r["start"])
        if cap < 10**9:
            assert dropped > 0 and len(rows) * window <= cap + 2 * window
        else:
            assert {r["stream_id"] for r in rows} == {"a", "b"} and dropped == 0


def test_the_monitor_thread_survives_a_failing_batch(art):
    """Mocked fault (nothing real fails on demand): one batch raises inside the thread; it is
    counted and reported, and the next batches are still processed."""
    monitor = DriftMonitor(art)
    real, calls = monitor.process_many, []

    def flaky(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(batch)

    monitor.process_many = flaky
    monitor.start()
    try:
        preds = Engine(art).push("s", clean_audio(50, 3.0))
        monitor.submit_many(preds[:3])
        deadline = time.monotonic() + 10
        while not monitor.errors and time.monotonic() < deadline:
            time.sleep(0.01)
        monitor.submit_many(preds[3:])
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        monitor.stop()
    assert monitor.errors == 1 and monitor.status_dict()["last_error"] == "RuntimeError: boom"
    assert len(calls) >= 2 and monitor.streams["s"]["history"].n == len(preds) - 3


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "audioclf", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_listen_captures_and_drift_report(art, tmp_path):
    rng = np.random.default_rng(4)
    y = clean_audio(800, 125.0)
    noisy = np.concatenate([y, SHIFTS["noise_0dB"](clean_audio(801, 100.0), rng)])
    wav = tmp_path / "drifting.wav"
    write_wav(wav, np.clip(noisy, -1, 1), SR, subtype="FLOAT")
    out = run_cli("listen", "--file", wav, "--fast", "--json", "--capture-dir", tmp_path / "cap")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stderr.strip().splitlines()[-1])["summary"]
    assert summary["drift"]["state"] == DRIFT and summary["drift"]["captured"] > 0
    rep = run_cli("drift-report", default_model_path(), tmp_path / "cap", "--json",
                  "--png", tmp_path / "d.png")
    assert rep.returncode == 0, rep.stderr
    res = json.loads(rep.stdout)
    assert res["level"] == DRIFT and res["features"][0]["psi"] > 0.25
    assert os.path.getsize(tmp_path / "d.png") > 1000
    clean = tmp_path / "clean.wav"
    write_wav(clean, clean_audio(802, 130.0), SR)
    # `default` names the shipped model (what listen ran), as in every MODEL argument
    rep = json.loads(run_cli("drift-report", "default", clean, "--json",
                             "--png", tmp_path / "c.png").stdout)
    assert rep["level"] != DRIFT and rep["n"] >= 480 and rep["warnings"] == []


def test_drift_report_takes_a_folder_of_recordings(tmp_path):
    """Not only capture folders: a folder of new recordings (nested, any format) is compared
    as the list of its audio files would be; a folder with neither is one line."""
    rng = np.random.default_rng(5)
    (tmp_path / "new" / "day2").mkdir(parents=True)
    write_wav(tmp_path / "new" / "a.wav", clean_audio(803, 20.0), SR)
    write_wav(tmp_path / "new" / "day2" / "b.flac",
              np.clip(SHIFTS["noise_0dB"](clean_audio(804, 20.0), rng), -1, 1), SR)
    (tmp_path / "new" / "notes.txt").write_text("not audio")
    by_folder = run_cli("drift-report", "default", tmp_path / "new", "--json",
                        "--png", tmp_path / "f.png")
    assert by_folder.returncode == 0, by_folder.stderr
    by_files = run_cli("drift-report", "default", tmp_path / "new" / "a.wav",
                       tmp_path / "new" / "day2" / "b.flac", "--json", "--png", tmp_path / "g.png")
    got, want = json.loads(by_folder.stdout), json.loads(by_files.stdout)
    assert got["n"] == want["n"] == 2 * 77 and got["features"] == want["features"]
    # MODEL may be left out, as for predict: the folder is then the first source
    no_model = run_cli("drift-report", tmp_path / "new", "--json", "--png", tmp_path / "h.png")
    assert no_model.returncode == 0, no_model.stderr
    assert json.loads(no_model.stdout)["features"] == got["features"]
    # 154 windows are too few for PSI to mean much, and the report says so
    assert len(got["warnings"]) == 1 and got["warnings"][0].startswith("only 154 windows")
    (tmp_path / "empty").mkdir()
    out = run_cli("drift-report", "default", tmp_path / "empty")
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert "empty: no audio files (.wav" in out.stderr and "no manifest.csv" in out.stderr


def test_drift_thresholds_can_be_set_from_the_command_line(tmp_path):
    """The audio that drifts at the defaults (above) stays OK with thresholds it cannot reach,
    and a bad setting is one line naming what is wrong."""
    rng = np.random.default_rng(4)
    noisy = np.concatenate([clean_audio(800, 125.0),
                            SHIFTS["noise_0dB"](clean_audio(801, 100.0), rng)])
    wav = tmp_path / "drifting.wav"
    write_wav(wav, np.clip(noisy, -1, 1), SR, subtype="FLOAT")
    lenient = ("psi_warn=50,psi_drift=50,share_warn=2,share_drift=2,prediction_psi_drift=1e9,"
               "confidence_drop=2,level_shift_sd=1e9,level_psi_drift=1e9")
    out = run_cli("listen", "--file", wav, "--fast", "--json", "--drift-thresholds", lenient)
    assert out.returncode == 0, out.stderr
    drift = json.loads(out.stderr.strip().splitlines()[-1])["summary"]["drift"]
    assert drift["state"] == OK and drift["evaluations"] > 0
    for bad, says in (("share_warn=0.5", "share_warn=0.5 is above share_drift=0.3"),
                      ("psi_drfit=1", "unknown threshold(s) psi_drfit (known: psi_warn")):
        out = run_cli("consume", "--bootstrap", "127.0.0.1:1", "--topic", "a", "--out-topic",
                      "p", "--drift-thresholds", bad)
        assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert says in out.stderr, out.stderr


def test_a_metrics_port_in_use_is_one_line(tmp_path):
    import socket
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        wav = tmp_path / "a.wav"
        write_wav(wav, clean_audio(60, 2.0), SR)
        out = run_cli("listen", "--file", wav, "--fast", "--json", "--metrics-port", port)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == \
        f"audioclf: error: cannot serve /metrics on port {port}: Address already in use"


def test_metrics_endpoint(art):
    from stream.metrics import serve_metrics
    engine, monitor = Engine(art), DriftMonitor(art)
    stream(art, monitor, engine, clean_audio(3, 5.0))
    server = serve_metrics(0, engine=engine, monitors=[monitor])
    try:
        port = server.server_address[1]
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    assert f"audioclf_windows_scored_total {engine.windows_scored}" in body
    assert "audioclf_drift_state 0" in body and "# TYPE audioclf_drift_score gauge" in body
    assert f"audioclf_drift_evaluations_total {monitor.evaluations}" in body


def test_a_stream_resynced_after_lost_chunks_keeps_its_drift_history(art):
    """Lost chunks restart a stream's audio state on the window grid, not its drift history:
    forgetting it would restart the monitor's 480-window warm-up at every lost chunk, and a
    flaky device would never be watched. (No broker needed: the consumer's batch step is fed
    decoded chunks directly.)"""
    from types import SimpleNamespace

    from kafka.structs import TopicPartition

    from stream.consume import ConsumeService
    from stream.wire import AudioChunk

    monitor = DriftMonitor(art)
    svc = ConsumeService(art, {"bootstrap_servers": ["unused:9092"]}, ["t"], "g", "out",
                         monitor=monitor)
    y, tp = clean_audio(11, 12.0), TopicPartition("t", 0)
    decoded = [(tp, SimpleNamespace(offset=k),
                AudioChunk("dev", y[i:i + 1600], SR, seq=k, timestamp=100 + k / 10, sample_index=i))
               for k, i in enumerate(range(0, len(y), 1600)) if not 40 <= k < 45]  # 4.0-4.5 s lost
    monitor.start()
    windows = sum(len(svc._score_batch(decoded[b:b + 16])[0]) for b in range(0, len(decoded), 16))
    monitor.stop()
    assert svc.stats.resyncs == 1 and windows == 13 + 27  # starts 0-3.0 s, then 4.5-11.0 s
    assert monitor.streams["dev"]["history"].n == windows


def test_metrics_carry_the_consumer_counters(art):
    """Every counter `consume` reports in its status lines is a Prometheus counter too."""
    from stream.consume import ConsumeService
    from stream.metrics import render

    svc = ConsumeService(art, {"bootstrap_servers": ["unused:9092"]}, ["t"], "g", "out")
    counters = {"messages": "messages_total", "dlq": "dlq_total",
                "seq_gaps": "sequence_gaps_total", "rewinds": "rewinds_total",
                "rate_changes": "rate_changes_total", "resyncs": "resyncs_total",
                "partition_moves": "partition_moves_total"}
    for k, field_name in enumerate(counters):
        setattr(svc.stats, field_name, k + 2)
    body = render(consume=svc)
    status = svc.status()
    for field_name, metric in counters.items():
        assert f"audioclf_{metric} {status[field_name]}" in body, metric
    # gauges from the latest status line (the HTTP thread must not touch the consumer)
    assert "consumer_lag" not in body
    svc.last_status = {**status, "lag": 17, "state_bytes": 4096}
    body = render(consume=svc)
    assert "audioclf_consumer_lag 17" in body and "audioclf_state_bytes 4096" in body


def test_consumer_drops_drift_history_with_its_streams(art):
    """A Kafka consumer's per-stream drift histories go when their streams go (eviction,
    revoked partitions), and are counted in its reported state."""
    from stream.consume import ConsumeService, StreamTrack

    monitor = DriftMonitor(art)
    svc = ConsumeService(art, {"bootstrap_servers": ["unused:9092"]}, ["t"], "g", "out",
                         monitor=monitor, idle_timeout=60)
    for sid in ("kept", "evicted", "left-over"):
        for p in Engine(art).push(sid, clean_audio(7, 3.0)):
            monitor.process(p)
    svc.tracks = {"kept": StreamTrack(tp=None, rate=16000),
                  "evicted": StreamTrack(tp=None, rate=16000)}
    svc.tracks["evicted"].last_seen -= 120
    before = monitor.nbytes
    svc._evict_idle()  # "evicted" timed out; "left-over" was rebuilt after its stream went
    assert set(monitor.streams) == {"kept"} and monitor.nbytes == before / 3
    # no audio state in this engine: the monitor's and the Kafka bookkeeping of "kept"
    assert svc.status()["state_bytes"] == monitor.nbytes + svc.tracks["kept"].nbytes
    svc._drop_stream("kept")
    assert monitor.streams == {} and monitor.nbytes == 0
