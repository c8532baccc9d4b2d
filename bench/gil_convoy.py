"""Why the Kafka consumer stays at one core: the engine beside a busy pure-Python thread.

    python bench/gil_convoy.py [--streams 1000] [--seconds 3] [--busy 0,0.3,0.6]

The default model's `Engine.push_many` scores S streams x D seconds of 100 ms chunks in poll-sized
batches (1659 chunks, as `bench/kafka.py` polls them) while another thread runs pure Python for
a share ``--busy`` of every 10 ms and sleeps the rest -- a stand-in for kafka-python's record
parsing and the consumer's sends. Prints the engine's audio-seconds per wall-second at each share,
with the default switch interval (5 ms) and with 0.2 ms. Numpy releases the GIL inside its
array operations, but each time it does the busy thread takes the lock and keeps it for up to
the switch interval: the two take turns, and the engine keeps about the share of time the other
thread leaves it -- no overlap, as the consumer's scoring thread gets none from its polling
thread.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.join(ROOT, "bench")]
sys.path.insert(0, ROOT)

BATCH = 1659  # chunks per poll batch in bench/kafka.py (4 partitions x 1 MB fetches)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--busy", default="0,0.3,0.6", help="shares of time the other thread runs")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)  # as `audioclf consume`

    from audioclf.artifact import load_model
    from bench.engine import interleaved_chunks
    from models import default_model_path
    from stream.engine import Engine

    art = load_model(default_model_path())
    sr = art.feature_config.sr
    chunks = interleaved_chunks(args.streams, args.seconds, sr)
    audio_seconds = sum(len(samples) for _, samples, _ in chunks) / sr
    default_interval = sys.getswitchinterval()
    for interval in (default_interval, 0.0002):
        sys.setswitchinterval(interval)
        for busy in (float(b) for b in args.busy.split(",")):
            stop = threading.Event()

            def python_work(share=busy):
                while not stop.is_set():
                    t = time.perf_counter()
                    while time.perf_counter() - t < 0.01 * share:
                        sum(i * i for i in range(200))
                    time.sleep(0.01 * (1 - share))

            other = threading.Thread(target=python_work, daemon=True)
            if busy > 0:
                other.start()
            engine = Engine(art)
            t = time.perf_counter()
            for i in range(0, len(chunks), BATCH):
                engine.push_many(chunks[i:i + BATCH])
            wall = time.perf_counter() - t
            stop.set()
            if busy > 0:
                other.join()
            print(f"switch interval {interval * 1e3:.1f} ms, other thread busy {busy:.0%}: "
                  f"engine {audio_seconds / wall:6.0f} audio-s per wall-s")
    sys.setswitchinterval(default_interval)


if __name__ == "__main__":
    main()
