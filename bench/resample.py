"""The stream resampler's cost per stream-second, against scipy resampling the same audio whole.

    python bench/resample.py [--seconds 10] [--chunk-ms 100]

For each device rate a stream is fed to ``features.resample.StreamResampler`` in ``--chunk-ms``
chunks, as a consumer does (one BLAS thread, process CPU time, best of 5). The reference is
``scipy.signal.resample_poly`` over the whole signal at once -- the same samples (checked),
with none of a stream's per-chunk overhead. Prints ms of CPU per stream-second for both.
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

MODEL_SR = 16000


def best_cpu(fn, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--chunk-ms", type=float, default=100.0)
    args = ap.parse_args()
    from fractions import Fraction

    from scipy.signal import resample_poly
    from threadpoolctl import threadpool_limits

    from features.resample import StreamResampler

    threadpool_limits(1)  # as `audioclf consume` and `listen` do
    rng = np.random.default_rng(0)
    for rate in (48000, 44100, 22050, 8000):
        x = (0.2 * rng.standard_normal(int(rate * args.seconds))).astype(np.float32)
        chunk = int(rate * args.chunk_ms / 1000)
        out = []

        def stream():
            r = StreamResampler(rate, MODEL_SR)
            out[:] = [r.process(x[i:i + chunk]) for i in range(0, len(x), chunk)] + [r.flush()]

        ratio = Fraction(MODEL_SR, rate)
        ours = best_cpu(stream)
        ref = best_cpu(lambda: resample_poly(x, ratio.numerator, ratio.denominator))
        want = resample_poly(x, ratio.numerator, ratio.denominator)
        diff = float(np.abs(np.concatenate(out) - want).max())
        print(f"{rate:6d} Hz -> {MODEL_SR}: stream {ours / args.seconds * 1e3:.3f} ms per "
              f"stream-second in {args.chunk_ms:g} ms chunks; scipy whole-signal "
              f"{ref / args.seconds * 1e3:.3f} ms ({ours / ref:.2f}x); max difference {diff:.1e}")


if __name__ == "__main__":
    main()
