"""Full training on FSDD (features + hyperparameter search) vs a librosa reference, one run.

    python bench/train.py [--n-iter 12]

audioclf: `train_model` as `audioclf train` runs it (no feature cache, 2 workers): parallel
features, successive-halving search over 12 settings with speaker-grouped 4-fold CV, out-of-fold
validation, refit. Reference (what most users write): librosa MFCC + spectral statistics per
clip (mean/std, joblib with 2 processes), then scikit-learn's RandomizedSearchCV over the same
12 settings with the same grouped folds (n_jobs=2), refit. Both are scored on FSDD's official
test split (index 0-4) and with leave-one-speaker-out on the best settings.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.join(ROOT, "bench")]
sys.path.insert(0, ROOT)

FSDD = os.path.join(ROOT, "..", "shared", "data", "fsdd")


def librosa_features(path):
    import librosa
    y, sr = librosa.load(path, sr=16000)
    S = np.abs(librosa.stft(y, n_fft=512, hop_length=160))
    feats = [librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, n_fft=512, hop_length=160),
             librosa.feature.spectral_centroid(S=S, sr=sr),
             librosa.feature.spectral_bandwidth(S=S, sr=sr),
             librosa.feature.spectral_rolloff(S=S, sr=sr),
             librosa.feature.spectral_flatness(S=S),
             librosa.feature.spectral_contrast(S=S, sr=sr, fmin=200, n_bands=5),
             librosa.feature.zero_crossing_rate(y, frame_length=512, hop_length=160),
             librosa.feature.rms(y=y, frame_length=512, hop_length=160)]
    F = np.vstack(feats)
    return np.concatenate([F.mean(axis=1), F.std(axis=1)])


def reference(rows, n_iter, seed):
    from joblib import Parallel, delayed
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.model_selection import GroupKFold, RandomizedSearchCV
    from sklearn.pipeline import Pipeline

    from train.fit import SEARCH_SPACE

    t = time.perf_counter()
    X = np.stack(Parallel(n_jobs=2)(delayed(librosa_features)(r["path"]) for r in rows))
    t_feat = time.perf_counter() - t
    y = np.array([r["digit"] for r in rows])
    groups = np.array([r["speaker"] for r in rows])
    test = np.array([r["split"] == "test" for r in rows])
    grid = [{"model": [RandomForestClassifier(random_state=seed)],
             **{f"model__{k}": v for k, v in SEARCH_SPACE.items()}},
            {"model": [ExtraTreesClassifier(random_state=seed)],
             **{f"model__{k}": v for k, v in SEARCH_SPACE.items()}}]
    search = RandomizedSearchCV(Pipeline([("model", RandomForestClassifier())]), grid,
                                n_iter=n_iter, cv=GroupKFold(4), n_jobs=2, random_state=seed)
    search.fit(X[~test], y[~test], groups=groups[~test])
    total = time.perf_counter() - t
    acc = float(np.mean(search.predict(X[test]) == y[test]))
    return total, t_feat, acc


def ours(rows, n_iter, seed):
    from features import FeatureConfig
    from train.dataset import load_dataset
    from train.fit import TrainOptions, train_model

    with tempfile.TemporaryDirectory() as tmp:
        manifest = os.path.join(tmp, "fsdd.csv")
        with open(manifest, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["path", "label", "group", "split"])
            for r in rows:
                w.writerow([r["path"], r["digit"], r["speaker"], r["split"]])
        t = time.perf_counter()
        res = train_model(load_dataset(manifest), FeatureConfig(),
                          TrainOptions(n_iter=n_iter, n_jobs=2, seed=seed, cache_dir=None,
                                       progress=False))
        total = time.perf_counter() - t
    m = res.artifact.metrics
    return total, m["test"]["accuracy"], m["validation"]["accuracy"], res.search[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n-iter", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    manifest = os.path.join(FSDD, "manifest.csv")
    if not os.path.exists(manifest):
        sys.exit("FSDD not found at ../shared/data/fsdd")
    with open(manifest) as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["path"] = os.path.join(FSDD, r["path"])
    t_ours, acc, val, best = ours(rows, args.n_iter, args.seed)
    t_ref, t_ref_feat, acc_ref = reference(rows, args.n_iter, args.seed)
    print(f"audioclf : {t_ours:6.1f} s  official-split test accuracy {acc:.4f}, "
          f"speaker-grouped CV (out-of-fold) {val:.4f}; best {best['family']} "
          f"{best['n_estimators']} trees depth {best['max_depth']} max_features {best['max_features']}")
    print(f"reference: {t_ref:6.1f} s  (librosa features {t_ref_feat:.1f} s) official-split "
          f"test accuracy {acc_ref:.4f}")
    print(f"ratio    : {t_ref / t_ours:.2f}x faster (target >= 3x)")


if __name__ == "__main__":
    main()
