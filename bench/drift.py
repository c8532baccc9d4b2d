"""Drift monitor: overhead per window vs scoring cost, detection delay per shift, false alarms.

    python bench/drift.py [--clean-windows 2000]

Streams audio through the engine and feeds each prediction to the monitor synchronously (to
time it). In-distribution audio = fresh clips of the default model's generator (new seeds);
shifts start after 500 in-distribution windows: noise at 0 dB SNR, low-pass 500 Hz, -30 dB gain,
sample-rate mismatch (22.05 kHz audio read as 16 kHz), and a sound type the model never saw.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.join(ROOT, "bench")]
sys.path.insert(0, ROOT)

from audioclf.artifact import load_model  # noqa: E402
from features.audio import resample  # noqa: E402
from models import default_model_path  # noqa: E402
from stream.drift import OK, DriftMonitor  # noqa: E402
from stream.engine import Engine  # noqa: E402
from train.synthetic import random_soundtrack  # noqa: E402

SR = 16000


def clean_audio(seed, seconds):
    """Held-out in-distribution audio: the default model's generator with a new seed."""
    return random_soundtrack(seed, seconds, SR)


def unseen(seed, seconds):
    """A sound type the generator never makes: a low buzzing pulse train with tremolo."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 55 * (1 + 0.02 * np.sin(2 * np.pi * 0.3 * t))
    x = np.sign(np.sin(2 * np.pi * np.cumsum(f0) / SR)) * (0.6 + 0.4 * np.sin(2 * np.pi * 6 * t))
    return (0.2 * x + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


SHIFTS = {
    "noise 0 dB SNR": lambda y, rng: y + rng.standard_normal(len(y)).astype(np.float32) * np.std(y),
    "low-pass 500 Hz": lambda y, rng: __import__("scipy.signal", fromlist=["s"]).sosfilt(
        __import__("scipy.signal", fromlist=["s"]).butter(8, 500, fs=SR, output="sos"), y),
    "-30 dB gain": lambda y, rng: y * 10 ** (-30 / 20),
    "rate mismatch 22.05k as 16k": lambda y, rng: resample(y, SR, 22050)[: len(y)],
    "unseen sound type": lambda y, rng: unseen(9, len(y) / SR),
}


def run(art, y, monitor, engine, sid, timings=None):
    states = []
    for i in range(0, len(y), 1600):
        t = time.perf_counter()
        preds = engine.push(sid, np.asarray(y[i:i + 1600], np.float32))
        t_score = time.perf_counter() - t
        for p in preds:
            t = time.perf_counter()
            monitor.process(p)
            if timings is not None:
                timings.append((t_score / len(preds), time.perf_counter() - t))
            states.append(monitor.state(sid))
    return states


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clean-windows", type=int, default=2000)
    args = ap.parse_args()
    art = load_model(default_model_path())
    engine = Engine(art)
    mon = DriftMonitor(art)
    timings = []
    seconds = (args.clean_windows + 3) * art.feature_config.window_hop_seconds
    states = run(art, clean_audio(1000, seconds), mon, engine, "clean", timings)
    evals = mon.evaluations
    alarms = sum(s != OK for s in states)
    drift = sum(s == "DRIFT" for s in states)
    t = np.array(timings)
    print(f"monitor cost: {1e6 * t[:, 1].mean():.0f} us/window on the hot path if run inline "
          f"(mean; the thread takes it off the hot path) vs scoring+features "
          f"{1e6 * t[:, 0].mean():.0f} us/window -> {100 * t[:, 1].mean() / t[:, 0].mean():.1f}%;"
          f" hot-path cost of submit() is one deque append")
    t0 = time.perf_counter()
    for _ in range(10000):
        mon._queue.append(None)
        mon._queue.clear()
    submit_us = (time.perf_counter() - t0) / 10000 * 1e6
    print(f"submit() overhead: {submit_us:.2f} us/window = {100 * submit_us / (1e6 * t[:, 0].mean()):.2f}% of scoring")
    # what the monitor thread does under load (Kafka): batches of many streams' windows
    per_stream = [Engine(art).push(f"s{k}", clean_audio(50 + k, 30.0)) for k in range(20)]
    preds = [p for step in zip(*per_stream) for p in step]  # interleaved, each in order
    batch_mon = DriftMonitor(art)
    t0 = time.perf_counter()
    for k in range(0, len(preds), 500):
        batch_mon.process_many(preds[k:k + 500])
    batched_us = (time.perf_counter() - t0) / len(preds) * 1e6
    print(f"monitor cost in batches of 500 windows from 20 streams (the thread under load): "
          f"{batched_us:.0f} us/window")
    print(f"in-distribution: {len(states)} windows, {evals} evaluations; windows in WARN "
          f"{alarms - drift} ({100 * (alarms - drift) / len(states):.1f}%), in DRIFT {drift} "
          f"({100 * drift / len(states):.1f}%)")
    rng = np.random.default_rng(7)
    for name, shift in SHIFTS.items():
        engine, mon = Engine(art), DriftMonitor(art)
        base = clean_audio(2000, 125.0)  # fills the monitor's 480-window history
        run(art, base, mon, engine, "s")
        shifted = np.asarray(shift(clean_audio(3000, 150.0), rng), np.float32)
        states = run(art, shifted, mon, engine, "s")
        warn = next((i for i, s in enumerate(states) if s != OK), None)
        drift = next((i for i, s in enumerate(states) if s == "DRIFT"), None)
        print(f"{name:28s}: WARN after {warn} windows, DRIFT after {drift} windows "
              f"(of {len(states)}; 4 windows = 1 s)")


if __name__ == "__main__":
    main()
