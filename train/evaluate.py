"""Metrics for a model on windows and on whole files, and their pictures."""
from __future__ import annotations

import numpy as np


SILENT_DBFS = -80.0  # a window whose loudest frame is below this holds no sound (zeros, dither)
SOUND_DBFS = -50.0  # a file with a window this loud has sound: its silent windows are padding


def sound_windows(levels_db: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Which windows are evidence of their file's label: ``(n_windows,)`` bool.

    All, except the windows of digital silence (loudest frame ``<= SILENT_DBFS``) in a file
    whose loudest window reaches ``SOUND_DBFS``: a clip dataset's zero padding (ESC-50 pads
    a short sound to 5 s with zeros). Left in, such identical silent windows carry every
    class's label, and both in training and in a file's average they vote for the classes
    whose clips are padded most. A file of silence keeps its windows. ``levels_db``: each
    window's ``level_dbfs`` feature; ``owner``: its file.
    """
    levels_db = np.asarray(levels_db, dtype=np.float64)
    files, inverse = np.unique(np.asarray(owner), return_inverse=True)
    loudest = np.full(len(files), -np.inf)
    np.maximum.at(loudest, inverse, levels_db)
    return (levels_db > SILENT_DBFS) | (loudest[inverse] < SOUND_DBFS)


def file_scores(scores: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average window scores per file: probabilities ``(n, C)`` or values ``(n,)``.

    Returns ``(files, averaged)`` with ``files`` the sorted unique owners.
    """
    files, inverse = np.unique(owner, return_inverse=True)
    counts = np.bincount(inverse).astype(np.float64)
    if scores.ndim == 1:
        return files, np.bincount(inverse, weights=scores) / counts
    summed = np.stack([np.bincount(inverse, weights=scores[:, c], minlength=len(files))
                       for c in range(scores.shape[1])], axis=1)
    return files, summed / counts[:, None]


def classification_metrics(y_true, y_pred, labels) -> dict:
    from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score,
                                 precision_recall_fscore_support)

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    present = [lab for lab in labels if lab in set(y_true) | set(y_pred)]
    prec, rec, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=present, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(_balanced_accuracy(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro",
                                   zero_division=0)),
        "per_class": {lab: {"precision": float(p), "recall": float(r), "f1": float(f),
                            "support": int(s)}
                      for lab, p, r, f, s in zip(present, prec, rec, f1, support)},
        "labels": present,
        "confusion": confusion_matrix(y_true, y_pred, labels=present).tolist(),
    }


def _balanced_accuracy(y_true, y_pred) -> float:
    """Mean recall over the classes present in ``y_true``, without scikit-learn's warning when a
    prediction names a class the scored files lack (a small test split): that is the defined
    behaviour, and the warning reached users as a raw Python warning with a library path."""
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return balanced_accuracy_score(y_true, y_pred)


def regression_metrics(y_true, y_pred) -> dict:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return {"n": int(len(y_true)), "mae": float(mean_absolute_error(y_true, y_pred)),
            "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
            # undefined for one value or a constant truth (scikit-learn says 0 or 1 there)
            "r2": (float(r2_score(y_true, y_pred)) if len(y_true) > 1 and np.ptp(y_true) > 0
                   else float("nan"))}


def evaluate_scores(task: str, labels, scores: np.ndarray, owner: np.ndarray,
                    truth_per_file) -> dict:
    """Window-level and file-level metrics; the top level repeats the file-level figures."""
    truth_per_file = np.asarray(truth_per_file, dtype=object)
    files, per_file = file_scores(scores, owner)
    if task == "classify":
        labels = np.asarray(labels, dtype=object)
        win = classification_metrics(truth_per_file[owner], labels[scores.argmax(axis=1)], labels)
        fil = classification_metrics(truth_per_file[files], labels[per_file.argmax(axis=1)],
                                     labels)
    else:
        truth = truth_per_file.astype(float)
        win = regression_metrics(truth[owner], scores)
        fil = regression_metrics(truth[files], per_file)
    return {**fil, "files": fil, "windows": win}


def plot_confusion(metrics: dict, out_path: str, title: str = "") -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, cm = metrics["labels"], np.asarray(metrics["confusion"])
    size = max(4.0, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {metrics['accuracy']:.3f}")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, label="count")
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path


def plot_regression(y_true, y_pred, out_path: str, name: str = "target", unit: str = "") -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y_true, y_pred, s=8, alpha=0.6)
    lo, hi = min(y_true.min(), y_pred.min()), max(y_true.max(), y_pred.max())
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=1, label="ideal")
    suffix = f" ({unit})" if unit else ""
    ax.set_xlabel(f"true {name}{suffix}")
    ax.set_ylabel(f"predicted {name}{suffix}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
