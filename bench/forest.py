"""Scoring the default model's forest: FlatForest (all trees' arrays walked at once with numpy)
against scikit-learn's ``predict_proba`` (``n_jobs=1``, as live scoring runs), one run.

    python bench/forest.py [--repeat 200]

Times one window (a live hop) and 780 windows (a large Kafka poll batch) of feature vectors
from a generated soundtrack the model never trained on, checks both give the same probabilities, and prints the ratio.
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


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)  # as `audioclf consume` and `listen` do

    from audioclf.artifact import load_model
    from audioclf.forest import FlatForest
    from features import signal_windows
    from models import default_model_path
    from train.synthetic import random_soundtrack

    art = load_model(default_model_path())
    forest = art.estimator
    forest.set_params(n_jobs=1)
    y = random_soundtrack(seed=7, seconds=200.0, sr=art.feature_config.sr)
    X = signal_windows(y, art.feature_config)[1].astype(np.float32)
    flat = FlatForest(forest)
    batch = X[:780]
    diff = float(np.abs(flat.predict(batch) - forest.predict_proba(batch)).max())
    print(f"model: default, {len(forest.estimators_)} trees, {X.shape[1]} features; "
          f"max difference {diff:.1e} over {len(batch)} windows")
    for n in (1, len(batch)):
        rows = batch[:n]
        ours = best_ms(lambda: flat.predict(rows), args.repeat if n == 1 else args.repeat // 10)
        sk = best_ms(lambda: forest.predict_proba(rows), args.repeat if n == 1 else args.repeat // 10)
        print(f"{n:4d} window(s): FlatForest {ours:7.2f} ms, predict_proba {sk:7.2f} ms "
              f"({sk / ours:.1f}x)")


if __name__ == "__main__":
    main()
