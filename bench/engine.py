"""The streaming engine alone (no Kafka): CPU per audio-second over many streams, and its split.

    python bench/engine.py [--streams 1000] [--seconds 3] [--batch 500]

S synthetic 16 kHz streams send 100 ms chunks, interleaved as `consume` receives them, and the
default model's `Engine.push_many` takes ``--batch`` chunks per call (as one poll batch). Prints
audio-seconds per CPU-second, and how the engine's CPU divides between per-frame spectral
analysis (`FrameAnalyzer.analyze`), window statistics (`window_vectors`), scoring (the forest,
smoothing, prediction objects) and the rest (per-chunk bookkeeping: stream lookup, framing,
the frame ring). One BLAS thread, as `audioclf consume` runs. This is the part of
`bench/kafka.py`'s budget that is ours rather than kafka-python's: the Kafka consumer's CPU per
audio-second minus this is parsing, decoding and sending.
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


def interleaved_chunks(streams: int, seconds: float, sr: int) -> list:
    """``(stream_id, 100 ms of float32 samples, sr)`` for S synthetic streams of D seconds, chunk
    c of every stream before chunk c + 1 of any (as `consume` receives them)."""
    from train.synthetic import CLASSES, synth_clip

    chunk = sr // 10
    rng = np.random.default_rng(0)
    bank = [synth_clip(CLASSES[i % len(CLASSES)], rng, seconds=seconds).astype(np.float32)
            for i in range(16)]
    n_chunks = int(seconds * sr) // chunk
    return [(f"s{s}", bank[s % 16][c * chunk:(c + 1) * chunk], sr)
            for c in range(n_chunks) for s in range(streams)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=500, help="chunks per push_many call")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)

    import stream.engine as engine_module
    from audioclf.artifact import load_model
    from models import default_model_path

    art = load_model(default_model_path())
    engine = engine_module.Engine(art)
    sr, chunk = engine.cfg.sr, engine.cfg.sr // 10
    chunks = interleaved_chunks(args.streams, args.seconds, sr)

    spent = {"analysis": 0.0, "window statistics": 0.0, "scoring": 0.0}

    def timed(name, fn):
        depth = [0]  # `analyze` calls itself on a block's non-silent frames: time the outer call

        def wrapper(*a, **k):
            depth[0] += 1
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[name] += time.process_time() - t
        return wrapper

    engine.analyzer.analyze = timed("analysis", engine.analyzer.analyze)
    engine_module.window_vectors = timed("window statistics", engine_module.window_vectors)
    engine._score = timed("scoring", engine._score)
    windows = 0
    t = time.process_time()
    for i in range(0, len(chunks), args.batch):
        windows += len(engine.push_many(chunks[i:i + args.batch]))
    cpu = time.process_time() - t
    audio_seconds = len(chunks) * chunk / sr
    spent["rest"] = cpu - sum(spent.values())
    print(f"engine: {args.streams} streams x {args.seconds:g} s, {windows} windows, "
          f"{audio_seconds / cpu:.0f} audio-s per CPU-s ({cpu / audio_seconds * 1e3:.3f} ms "
          f"per audio-s)")
    print("split : " + ", ".join(f"{k} {v / cpu:.0%}" for k, v in spent.items())
          + f" (the rest: {spent['rest'] / len(chunks) * 1e6:.1f} us per chunk)")


if __name__ == "__main__":
    main()
