"""`audioclf drift-report`: how far a set of windows (captured or from files) is from training."""
from __future__ import annotations

import csv
import os

import numpy as np

from audioclf.artifact import ModelArtifact
from features import AudioError, block_windows, read_audio_blocks
from features.audio import audio_files, no_audio_files

from .drift import MIN_WINDOWS, DriftThresholds, evaluate_window


def collect_vectors(art: ModelArtifact, sources: list[str]) -> tuple[np.ndarray, list[str]]:
    """Vectors from capture folders (their saved .npy), folders of recordings (every audio file
    under them) and audio files; plus skipped notes."""
    vectors, skipped = [], []
    for src in sources:
        manifest = os.path.join(src, "manifest.csv") if os.path.isdir(src) else None
        if manifest and os.path.exists(manifest):
            with open(manifest, newline="", encoding="utf-8-sig") as fh:
                for row in csv.DictReader(fh):
                    try:
                        vectors.append(np.load(os.path.join(src, row["features"]))[None])
                    except (OSError, ValueError, KeyError) as exc:
                        skipped.append(f"{src}/{row.get('features')}: {exc}")
            continue
        files = [src]
        if os.path.isdir(src):
            files = sorted(audio_files(src))
            if not files:
                raise FileNotFoundError(f"{no_audio_files(src)} and no manifest.csv (a "
                                        "capture folder)")
        for path in files:
            cfg = art.feature_config
            try:  # block by block: a long recording is not held whole
                parts = [X for _, X in block_windows(read_audio_blocks(path, sr=cfg.sr), cfg)]
            except AudioError as exc:
                skipped.append(str(exc))
                continue
            vectors.extend(parts)
    if not vectors:
        why = "; ".join(skipped[:3]) + (f"; {len(skipped) - 3} more" if len(skipped) > 3 else "")
        raise FileNotFoundError(f"no windows to compare: {why or 'no readable files or captures'}")
    return np.concatenate(vectors), skipped


def drift_report(art: ModelArtifact, sources: list[str], png: str | None = None,
                 top: int = 15) -> dict:
    X, skipped = collect_vectors(art, sources)
    if X.shape[1] != len(art.feature_names):
        raise FileNotFoundError(f"captured vectors have {X.shape[1]} features, the model "
                                f"{len(art.feature_names)}: captured with another model")
    labels = None
    if art.is_classifier:
        labels = list(np.asarray(art.labels)[art.score(X).argmax(axis=1)])
    res = evaluate_window(X, labels, art.baseline, DriftThresholds())
    names = art.baseline["names"]
    from features.baseline import ks_statistic, mean_shift, psi
    p = psi(X, art.baseline["edges"], art.baseline["shares"])
    ks = ks_statistic(X, art.baseline["quantiles"])
    shift = mean_shift(X, art.baseline["mean"].astype(float), art.baseline["std"])
    order = np.argsort(p)[::-1][:top]
    res["features"] = [{"name": names[j], "psi": float(p[j]), "ks": float(ks[j]),
                        "shift_sd": float(shift[j]), "baseline_mean": float(art.baseline["mean"][j]),
                        "recent_mean": float(X[:, j].mean())} for j in order]
    res["skipped"] = skipped
    res["warnings"] = [] if len(X) >= MIN_WINDOWS else [
        f"only {len(X)} windows: on fewer than {MIN_WINDOWS} the per-feature PSI is mostly "
        "sampling noise (clean audio can read as drifted; the live monitor waits for "
        f"{MIN_WINDOWS}), so take these figures as a sketch and compare more audio"]
    if png:
        _plot(art, X, order[:6], png)
        res["png"] = png
    return res


def _plot(art, X, columns, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, q = art.baseline["names"], art.baseline["quantiles"]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    for ax, j in zip(axes.flat, columns):
        ax.plot(q[j], np.linspace(0, 1, q.shape[1]), label="training baseline")
        xs = np.sort(X[:, j])
        ax.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post", label="recent")
        ax.set_title(names[j])
        ax.set_xlabel("feature value")
        ax.set_ylabel("cumulative share")
    axes.flat[0].legend()
    fig.suptitle("baseline vs recent distributions (top drifting features by PSI)")
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
