"""Many concurrent streams (16 kHz, or --rate) through the broker: audioclf consume vs a bare
consume loop.

    python bench/kafka.py [--streams 500] [--seconds 4] [--drift] [--rate 16000]
                          [--repeat 1] [--commit-interval 1] [--bootstrap 127.0.0.1:9092]
                          [--cli-rss]

Produces S streams x D seconds of int16 audio in 100 ms chunks (with the sequence number, sample
index and capture timestamp headers `produce` sends; interleaved like live devices;
``--rate``: devices sending another rate, which the consumer resamples to the model's)
to a 4-partition topic, then in one run measures (a) a bare kafka-python consumer reading the
topic (the ceiling; once before and once after each (b), averaged, as the machine's speed
drifts) and (b) one `ConsumeService` (decode, incremental features, batched scoring, predictions
produced and flushed, offsets committed). Prints audio-seconds per wall-second (= concurrent
real-time streams one process sustains), the ratio to the ceiling, the CPU each loop used
(a bare loop far below one core is waiting for the broker, not parsing), and state bytes per
stream and process RSS, and the time the consumer spent collecting garbage
(``AUDIOCLF_GC_TUNING=0``: with CPython's settings, not ``audioclf.memory.settle_gc``'s).
Uses ../shared/tools/kafka-broker.sh when no --bootstrap.
"""
from __future__ import annotations

import argparse
import gc
import os
import resource
import subprocess
import sys
import threading
import time
import uuid

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# bench/ must not shadow the packages its scripts are named after (kafka, features)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.join(ROOT, "bench")]
sys.path.insert(0, ROOT)

from audioclf.artifact import load_model  # noqa: E402
from models import default_model_path  # noqa: E402
from stream.consume import ConsumeService  # noqa: E402
from stream.wire import encode_audio  # noqa: E402
from train.synthetic import CLASSES, synth_clip  # noqa: E402

SR = 16000  # the model's rate


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bare_consume(bootstrap: str, topic: str, total: int) -> tuple[float, float]:
    """Seconds a bare kafka-python loop (a new group, same settings as `consume`) takes to read
    the topic -- the ceiling -- and the CPU-seconds this process spent meanwhile."""
    from stream.kafka_io import make_consumer

    c = make_consumer({"bootstrap_servers": [bootstrap]}, f"bare-{uuid.uuid4().hex[:6]}")
    c.subscribe([topic])
    got, t0, cpu0 = 0, None, 0.0
    while got < total:
        for recs in c.poll(timeout_ms=500).values():
            if t0 is None:
                t0, cpu0 = time.perf_counter(), cpu_seconds()
            got += len(recs)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    c.close()
    return elapsed, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--streams", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--bootstrap")
    ap.add_argument("--rate", type=int, default=SR,
                    help="the devices' sample rate (the consumer resamples it to the model's)")
    ap.add_argument("--drift", action="store_true",
                    help="with the drift monitor, as `audioclf consume` runs by default")
    ap.add_argument("--commit-interval", type=float, default=1.0,
                    help="the consumer's seconds between offset commits (consume's default: 1; "
                         "0: after every batch)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="consumer runs, each between two ceiling reads; prints the median")
    ap.add_argument("--cli-rss", action="store_true",
                    help="also run `audioclf consume` itself on the topic and report its peak "
                         "RSS (this process's RSS also holds the producing and the bare loops)")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)  # as `audioclf consume` does
    from audioclf.memory import keep_freed_memory
    keep_freed_memory()  # as `audioclf` does, here for the bare loop as well
    bootstrap = args.bootstrap or subprocess.run(
        [os.path.join(ROOT, "..", "shared", "tools", "kafka-broker.sh"), "start"],
        capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench-audio-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    admin.close()
    rng = np.random.default_rng(0)
    bank = [synth_clip(CLASSES[i % len(CLASSES)], rng, seconds=args.seconds) for i in range(16)]
    rate, chunk = args.rate, args.rate // 10
    if rate != SR:
        from features.audio import resample
        bank = [resample(y, SR, rate) for y in bank]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=10,
                             batch_size=262144)
    n_chunks = int(args.seconds * rate) // chunk
    t, t0_capture = time.perf_counter(), time.time()
    for c in range(n_chunks):
        for s in range(args.streams):
            # with a capture timestamp, as the wire format has devices (and `produce`) send
            key, value, headers = encode_audio(f"s{s}", bank[s % 16][c * chunk:(c + 1) * chunk],
                                               rate, c, sample_index=c * chunk,
                                               timestamp=t0_capture + c * chunk / rate)
            producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()  # its buffers are no part of the consumer measured below
    total = n_chunks * args.streams
    audio_seconds = total * chunk / rate
    print(f"produced {total} messages ({audio_seconds:.0f} audio-s) in {time.perf_counter() - t:.1f} s")

    # (a) the ceiling, read before and after every (b): this machine's speed drifts
    art = load_model(default_model_path())
    from audioclf.memory import settle_gc
    settle_gc()  # as `audioclf consume` does once its model is loaded, here for both loops
    bares = [bare_consume(bootstrap, topic, total)]
    runs = []
    for _ in range(args.repeat):
        runs.append(audioclf_consume(art, bootstrap, topic, total, args.drift,
                                     args.commit_interval))  # (b)
        bares.append(bare_consume(bootstrap, topic, total))
    ratios, per_cpu = [], []
    for k, run in enumerate(runs):
        (before, cpu_before), (after, cpu_after) = bares[k], bares[k + 1]
        bare = (before + after) / 2
        ratios.append(bare / run["seconds"])
        per_cpu.append(audio_seconds / run["cpu"])
        if args.repeat > 1:
            print(f"run {k + 1}:")
        print(f"bare kafka-python consume : {audio_seconds / bare:9.0f} audio-s/s "
              f"({total / bare:.0f} msg/s; {audio_seconds / before:.0f} before, "
              f"{audio_seconds / after:.0f} after); "
              f"CPU {(cpu_before + cpu_after) / (before + after):.2f} cores")
        print(f"audioclf consume          : {audio_seconds / run['seconds']:9.0f} audio-s/s = "
              f"concurrent real-time streams; {run['windows']} windows; CPU "
              f"{run['cpu'] / run['seconds']:.2f} cores")
        print(f"ratio to the ceiling      : {ratios[-1]:.2f}x of bare (target >= 0.5)")
        print(f"per stream on one core    : {per_cpu[-1]:9.0f} audio-s per CPU-s (target >= 500)")
        print(f"garbage collection        : {run['gc'] * 1000:9.0f} ms while consuming "
              f"({run['gc'] / run['cpu']:.0%} of its CPU; AUDIOCLF_GC_TUNING=0: CPython's defaults)")
        if args.drift:
            print(f"drift monitor             : {run['evaluations']} evaluations, "
                  f"{run['dropped']} windows dropped by its queue")
        print(f"state{' (incl. drift history)' if args.drift else ''}: "
              f"{run['state'] / args.streams / 1024:.1f} KiB per stream (target <= 256), RSS "
              f"{run['rss_after']:.0f} MB ({run['rss_after'] - run['rss_before']:+.0f} MB while "
              f"consuming {args.streams} streams)")
    if args.cli_rss:
        rss, status = cli_consume_rss(bootstrap, topic, total, args.drift)
        print(f"audioclf consume, its own process{' (drift monitor on)' if args.drift else ''}: "
              f"peak RSS {rss:.0f} MB for {status['streams']} streams, {status['windows']} "
              f"windows (target 1000 streams <= 400 MB)")
    if args.repeat > 1:
        print(f"median of {args.repeat}: {np.median(ratios):.2f}x of bare "
              f"({', '.join(f'{r:.2f}' for r in ratios)}); {np.median(per_cpu):.0f} audio-s per "
              f"CPU-s ({', '.join(f'{c:.0f}' for c in per_cpu)})")


def audioclf_consume(art, bootstrap: str, topic: str, total: int, drift: bool,
                     commit_interval: float) -> dict:
    """One `ConsumeService` (a new group) reading the topic in this process: wall and CPU
    seconds from its first message to its last, state bytes and RSS."""
    monitor = None
    if drift:
        from stream.drift import DriftMonitor
        monitor = DriftMonitor(art)
        monitor.start()
    svc = ConsumeService(art, {"bootstrap_servers": [bootstrap]}, [topic],
                         f"bench-{uuid.uuid4().hex[:6]}", f"{topic}-pred", status_every=1e9,
                         status_out=open(os.devnull, "w"), monitor=monitor,
                         commit_interval=commit_interval)
    rss0 = rss_mb()
    gc_seconds, gc_started = [0.0], {}

    def time_gc(phase, info):  # collections hold the GIL: their wall time is the process's
        if phase == "start":
            gc_started[threading.get_ident()] = time.perf_counter()
        elif measuring:
            gc_seconds[0] += time.perf_counter() - gc_started.pop(threading.get_ident())

    measuring = False
    gc.callbacks.append(time_gc)
    # wall and CPU seconds when the scoring thread started its first batch, and finished its
    # latest: the consumer's time from its first message to its last
    started_at, scored_at = [], [0.0, 0.0]
    score_batch = svc._score_batch

    def timed_score_batch(decoded):
        if not started_at:
            started_at[:] = time.perf_counter(), cpu_seconds()
        try:
            return score_batch(decoded)
        finally:
            scored_at[:] = time.perf_counter(), cpu_seconds()

    svc._score_batch = timed_score_batch
    th = threading.Thread(target=svc.run, daemon=True)
    th.start()
    while svc.stats.messages == 0:
        time.sleep(0.01)
    measuring = True
    # every message taken *and scored*: messages are counted when their batch starts scoring,
    # and the last batch (up to 2000 messages) is then still in the scoring thread
    while svc.stats.messages < total or svc.scoring:
        # a slow poll: this thread waking for the GIL every few ms slowed the consumer (by
        # ~5% of its CPU efficiency); the end is taken when the last batch is scored
        time.sleep(0.05)
    (t0, cpu0), (t1, cpu1) = started_at, scored_at
    out = {"seconds": t1 - t0, "cpu": cpu1 - cpu0,
           "state": svc.status()["state_bytes"], "rss_before": rss0, "rss_after": rss_mb(),
           "gc": gc_seconds[0]}
    gc.callbacks.remove(time_gc)
    svc.stop_event.set()
    th.join(timeout=30)
    out["windows"] = svc.stats.windows
    if monitor is not None:
        monitor.stop()
        out.update(evaluations=monitor.evaluations, dropped=monitor.dropped)
    return out


CLI_RSS = """
import resource, sys
from audioclf.cli import main
rc = main(sys.argv[1:])
print("peak-rss-mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)
sys.exit(rc)
"""


def cli_consume_rss(bootstrap: str, topic: str, total: int, drift: bool) -> tuple[float, dict]:
    """Peak RSS (MB) of `audioclf consume` reading the whole topic as a new group, stopped with
    SIGTERM (a graceful stop) once its status lines count every message; and its last status."""
    import json
    import signal
    argv = ["consume", "--bootstrap", bootstrap, "--topic", topic, "--group",
            f"cli-{uuid.uuid4().hex[:6]}", "--out-topic", f"{topic}-cli-pred",
            "--status-every", "1", *([] if drift else ["--no-drift"])]
    proc = subprocess.Popen([sys.executable, "-c", CLI_RSS, *argv], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
    status, rss, stopped = {}, float("nan"), False
    for line in proc.stderr:  # JSON status lines: stderr is not a terminal
        if line.startswith("peak-rss-mb"):
            rss = float(line.split()[1])
        elif line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "status":
                status = record
                if record["messages"] >= total and not stopped:
                    proc.send_signal(signal.SIGTERM)  # once: it finishes the batch and exits
                    stopped = True
    proc.wait(timeout=60)
    return rss, status


if __name__ == "__main__":
    main()
