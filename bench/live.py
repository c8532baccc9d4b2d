"""Per-hop cost of the live path: incremental features + scoring vs recomputing the window.

    python bench/live.py [--seconds 60] [--cpu-seconds 20]

1 s windows, 0.25 s hop, 16 kHz, the shipped default model, blocks of 0.25 s (one hop) as a
microphone callback would deliver them. "latency" = block arrival -> prediction (features,
scoring, smoothing). The full-window reference recomputes all frames of the newest second each
hop (what a naive loop does). Then CPU% of `audioclf listen --demo` in real time.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

# bench/ must not shadow the packages its scripts are named after (kafka, features)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from audioclf.artifact import load_model  # noqa: E402
from features import signal_windows  # noqa: E402
from models import default_model_path  # noqa: E402
from stream.engine import Engine  # noqa: E402
from train.synthetic import demo_sequence  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--cpu-seconds", type=float, default=20.0)
    args = ap.parse_args()
    art = load_model(default_model_path())
    cfg = art.feature_config
    y = np.concatenate([demo_sequence(seed=s)[0] for s in range(int(args.seconds // 16) + 1)])
    y = y[: int(args.seconds * cfg.sr)]
    hop = cfg.window_hop_samples
    engine = Engine(art)
    engine.push("warm", y[: cfg.window_samples])
    inc = []
    for i in range(0, len(y) - hop + 1, hop):
        t = time.perf_counter()
        engine.push("bench", y[i:i + hop])
        inc.append((time.perf_counter() - t) * 1e3)
    inc = np.array(inc[cfg.window_samples // hop:])  # windows exist from the 4th hop on
    full = []
    for end in range(cfg.window_samples, len(y) + 1, hop):
        t = time.perf_counter()
        _, X = signal_windows(y[end - cfg.window_samples:end], cfg)
        art.score(X)
        full.append((time.perf_counter() - t) * 1e3)
    full = np.array(full)
    p = lambda a, q: np.percentile(a, q)  # noqa: E731
    print(f"model: {art.name}, {len(art.estimator.estimators_)} trees; {len(inc)} hops")
    print(f"incremental (new frames only) : p50 {p(inc, 50):6.3f} ms  p99 {p(inc, 99):6.3f} ms  "
          f"max {inc.max():6.3f} ms (target p99 < 10 ms)")
    print(f"full-window recompute         : p50 {p(full, 50):6.3f} ms  p99 {p(full, 99):6.3f} ms")
    print(f"ratio (full / incremental, p50): {p(full, 50) / p(inc, 50):.2f}x")
    if args.cpu_seconds > 0:
        t0, c0 = time.time(), os.times()
        subprocess.run([sys.executable, "-m", "audioclf", "listen", "--demo", "--json",
                        "--seconds", str(args.cpu_seconds)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c1 = os.times()
        wall = time.time() - t0
        cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
        print(f"CPU while listening in real time (incl. start-up, drift monitor on): "
              f"{100 * cpu / wall:.1f}% of one core over {wall:.1f} s")


if __name__ == "__main__":
    main()
