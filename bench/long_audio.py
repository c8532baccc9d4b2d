"""Memory for long recordings: reading one, and extracting training features from several.

    python bench/long_audio.py [--minutes 20] [--files 6] [--file-minutes 5]

Each measurement runs in its own process and reports that process's peak RSS.
(a) A generated ``--minutes`` 48 kHz stereo 16-bit WAV read to 16 kHz mono: audioclf's
``read_audio`` (block-wise decoding and downmix, chunked resampling) against the usual
whole-file code, ``soundfile.read`` + channel mean + ``scipy.signal.resample_poly``, measured
in the same run. (b) ``audioclf predict``'s ``predict_file`` on that WAV with the shipped
model (decoded and scored block by block) against the same scoring of the file read whole
(``read_audio`` + ``signal_windows``). (c) ``--files`` recordings of ``--file-minutes`` at
16 kHz through ``train.extract.extract_windows`` in one worker, against the size of their
decoded audio. (d) ``audioclf plot`` of a ``--plot-minutes`` 16 kHz FLAC, whole and a 30 s
part of it: wall time and peak RSS. (e) With ``--produce`` (needs the broker:
``../shared/tools/kafka-broker.sh``, or ``--bootstrap``): ``audioclf produce`` of the (a) WAV
(decoded and sent block by block) against the same sends of the file decoded whole first (the
code before 2026-12-02), peak RSS and wall time of each.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

READ_OURS = """
import resource, sys
sys.path.insert(0, {root!r})
from features import read_audio
y, _ = read_audio({path!r}, sr=16000)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, y.shape[0])
"""
READ_REFERENCE = """
import resource
import soundfile as sf
from scipy.signal import resample_poly
data, sr = sf.read({path!r}, dtype="float32", always_2d=True)
y = resample_poly(data.mean(axis=1), 1, 3).astype("float32")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, y.shape[0])
"""
PREDICT_OURS = """
import resource, sys
sys.path.insert(0, {root!r})
import models
from audioclf.artifact import load_model
from train.predict import predict_file
out = predict_file(load_model(models.default_model_path()), {path!r})
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(out["windows"]))
"""
PREDICT_WHOLE = """
import resource, sys
sys.path.insert(0, {root!r})
import models
from audioclf.artifact import load_model
from features import read_audio, signal_windows
art = load_model(models.default_model_path())
y, _ = read_audio({path!r}, sr=16000)
scores = art.score(signal_windows(y, art.feature_config)[1])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(scores))
"""
EXTRACT = """
import resource, sys
sys.path.insert(0, {root!r})
from features import FeatureConfig
from train.extract import extract_windows
w = extract_windows({paths!r}, FeatureConfig(), n_jobs=1, cache_dir=None, progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, w.X.shape[0])
"""


PRODUCE_WHOLE = """
import resource, sys, time
sys.path.insert(0, {root!r})
from features import read_audio
from stream.kafka_io import make_producer
from stream.wire import encode_audio
t = time.perf_counter()
y, sr = read_audio({path!r}, sr=None)
p = make_producer({{"bootstrap_servers": [{bootstrap!r}]}})
n = sr // 10
for seq, i in enumerate(range(0, len(y), n)):
    key, value, headers = encode_audio("s", y[i:i + n], sr, seq, sample_index=i,
                                       timestamp=time.time())
    p.send({topic!r}, key=key, value=value, headers=headers)
p.flush()
p.close()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - t)
"""


def run(code: str) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), int(out[1])


PLOT = """
import resource, sys, time
sys.path.insert(0, {root!r})
from audioclf.cli import main
t = time.perf_counter()
assert main({argv!r}) == 0
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - t)
"""


def timed_cli(argv) -> tuple[float, float]:
    """Wall seconds (after start-up) and peak RSS (MB) of ``audioclf ARGV`` in its own
    process."""
    out = subprocess.run([sys.executable, "-c", PLOT.format(root=ROOT, argv=list(argv))],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[-1]), float(out[-2])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--file-minutes", type=float, default=5.0)
    ap.add_argument("--plot-minutes", type=int, default=60)
    ap.add_argument("--produce", action="store_true", help="also (e): needs a Kafka broker")
    ap.add_argument("--bootstrap", help="(e) broker (default: ../shared/tools/kafka-broker.sh)")
    args = ap.parse_args()
    import soundfile as sf

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        stereo = os.path.join(tmp, "long_stereo.wav")
        with sf.SoundFile(stereo, "w", 48000, 2, "PCM_16") as fh:
            for _ in range(int(args.minutes)):
                fh.write((0.1 * rng.standard_normal((48000 * 60, 2))).astype(np.float32))
        ours, n = run(READ_OURS.format(root=ROOT, path=stereo))
        ref, n_ref = run(READ_REFERENCE.format(path=stereo))
        out_mb = n * 4 / 2 ** 20
        print(f"read {int(args.minutes)} min 48 kHz stereo to 16 kHz mono (output {out_mb:.0f} MiB): "
              f"audioclf peak RSS {ours:.0f} MB, whole-file soundfile + resample_poly {ref:.0f} MB "
              f"({ref / ours:.1f}x)")
        assert n == n_ref, (n, n_ref)
        ours, n = run(PREDICT_OURS.format(root=ROOT, path=stereo))
        whole, n_whole = run(PREDICT_WHOLE.format(root=ROOT, path=stereo))
        print(f"predict on it ({n} windows): peak RSS {ours:.0f} MB block by block, "
              f"{whole:.0f} MB read whole ({whole / ours:.1f}x)")
        assert n == n_whole, (n, n_whole)
        if args.produce:
            produce_bench(stereo, args)

        paths = []
        for k in range(args.files):
            paths.append(os.path.join(tmp, f"rec{k}.wav"))
            sf.write(paths[-1], (0.1 * rng.standard_normal(int(args.file_minutes * 60 * 16000))
                                 ).astype(np.float32), 16000, subtype="PCM_16")
        rss, windows = run(EXTRACT.format(root=ROOT, paths=paths))
        audio_mb = args.files * args.file_minutes * 60 * 16000 * 4 / 2 ** 20
        print(f"extract_windows, {args.files} recordings of {args.file_minutes:g} min in one worker "
              f"({windows} windows; their decoded audio alone is {audio_mb:.0f} MiB): "
              f"peak RSS {rss:.0f} MB")

        flac = os.path.join(tmp, "hour.flac")
        with sf.SoundFile(flac, "w", 16000, 1, "PCM_16") as fh:
            for _ in range(args.plot_minutes):
                fh.write((0.1 * rng.standard_normal(16000 * 60)).astype(np.float32))
        for extra in ([], ["--start", str(args.plot_minutes * 30), "--seconds", "30"]):
            seconds, rss = timed_cli(["plot", flac, "-o", os.path.join(tmp, "p.png"), *extra])
            what = "whole" if not extra else "30 s of it"
            print(f"plot of a {args.plot_minutes}-minute 16 kHz FLAC, {what}: {seconds:.1f} s, "
                  f"peak RSS {rss:.0f} MB")


def produce_bench(path: str, args) -> None:
    import uuid
    bootstrap = args.bootstrap or subprocess.run(
        [os.path.join(ROOT, "..", "shared", "tools", "kafka-broker.sh"), "start"],
        capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    ours = timed_cli(["produce", path, "--bootstrap", bootstrap, "--stream-id", "s",
                      "--topic", f"bench-produce-{uuid.uuid4().hex[:6]}"])
    out = subprocess.run([sys.executable, "-c", PRODUCE_WHOLE.format(
        root=ROOT, path=path, bootstrap=bootstrap,
        topic=f"bench-produce-{uuid.uuid4().hex[:6]}")],
        capture_output=True, text=True, check=True).stdout.split()
    whole_rss, whole_s = float(out[-2]), float(out[-1])
    print(f"produce it (48 kHz, 100 ms int16 chunks): peak RSS {ours[1]:.0f} MB block by block "
          f"({ours[0]:.1f} s), {whole_rss:.0f} MB decoded whole first ({whole_s:.1f} s; "
          f"{whole_rss / ours[1]:.1f}x)")


if __name__ == "__main__":
    main()
