"""Training-time feature baseline and the drift statistics that compare recent windows with it.

Pure numpy. The baseline is a dict of arrays (stored in the model artifact); the statistics are
small pure functions so the monitor, ``drift-report`` and tests share them.
"""
from __future__ import annotations

import numpy as np

N_BINS = 10  # quantile bins for PSI
N_QUANTILES = 101  # stored CDF resolution for KS
EPS = 1e-4  # PSI's floor for empty bins (a bin share of 0 would make log infinite)


def build_baseline(X: np.ndarray, names: list[str], predictions=None, labels=None,
                   confidence: float | None = None) -> dict:
    """Summarise training windows ``X`` ``(n_windows, n_features)`` for drift monitoring:
    :func:`feature_summary` and :func:`prediction_summary` in one dict."""
    return {**feature_summary(X, names), **prediction_summary(predictions, labels, confidence)}


def feature_summary(X: np.ndarray, names: list[str]) -> dict:
    """Per feature of ``X`` ``(n_windows, n_features)``: quantile bin edges and bin shares
    (PSI), 101 quantiles (KS), mean, std."""
    X = np.asarray(X, dtype=np.float64)
    ordered = np.sort(X, axis=0)  # one sort for both sets of quantiles (np.quantile: 8x slower)
    edges = sorted_quantiles(ordered, np.linspace(0, 1, N_BINS + 1)[1:-1]).T  # (n_tracks, 9)
    shares = sorted_bin_shares(ordered, edges)
    return {
        "names": list(names),
        "n_windows": int(X.shape[0]),
        "edges": edges.astype(np.float32),
        "shares": shares.astype(np.float32),
        "quantiles": sorted_quantiles(ordered, np.linspace(0, 1, N_QUANTILES)).T.astype(
            np.float32),
        "mean": X.mean(axis=0).astype(np.float32),
        "std": X.std(axis=0).astype(np.float32),
    }


def prediction_summary(predictions=None, labels=None, confidence: float | None = None) -> dict:
    """``predictions``/``labels`` give training class frequencies; ``confidence`` the mean
    top-class probability on held-out windows (either may be None: then it is left out)."""
    out = {}
    if predictions is not None and labels is not None:
        counts = class_counts(predictions, labels).astype(np.float64)
        out["class_freq"] = (counts / max(counts.sum(), 1)).astype(np.float32)
        out["labels"] = list(labels)
    if confidence is not None:
        out["confidence"] = float(confidence)
    return out


def sorted_quantiles(ordered: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantiles ``q`` (in [0, 1]) of each column of ``ordered`` ``(n, n_tracks)``, already
    sorted along axis 0: ``(len(q), n_tracks)``, as ``np.quantile(..., axis=0)`` computes
    them (its default 'linear' method, interpolated the same way)."""
    n = ordered.shape[0]
    at = np.asarray(q, dtype=np.float64) * (n - 1)
    lo = np.floor(at).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    t = (at - lo)[:, None]
    below, above = ordered[lo], ordered[hi]
    step = above - below
    # numpy's lerp: from the nearer end, so that t = 1 gives the upper value exactly
    return np.where(t >= 0.5, above - step * (1 - t), below + step * t)


def class_counts(predictions, labels) -> np.ndarray:
    """How many of ``predictions`` are each of ``labels``, in that order."""
    predictions = np.asarray(predictions)
    return np.array([np.sum(predictions == lab) for lab in labels])


def sorted_bin_shares(ordered: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """:func:`bin_shares` of every column of ``ordered`` ``(n, n_tracks)``, already sorted along
    axis 0, with its own ``edges`` ``(n_tracks, n_edges)``: ``(n_tracks, n_edges + 1)``. A
    value is in bin ``k`` when ``edges[k-1] < value <= edges[k]``, so the values up to each
    edge are one binary search in the sorted column (80x faster than binning every value)."""
    n, n_tracks = ordered.shape
    upto = np.zeros((n_tracks, edges.shape[1] + 2), dtype=np.intp)
    upto[:, -1] = n
    for j in range(n_tracks):
        upto[j, 1:-1] = np.searchsorted(ordered[:, j], edges[j], side="right")
    return np.diff(upto, axis=1) / max(n, 1)


def bin_shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values in each of the ``len(edges)+1`` bins (right-closed like np.digitize)."""
    idx = np.searchsorted(edges, x, side="left")
    return np.bincount(idx, minlength=len(edges) + 1) / max(len(x), 1)


def psi(recent: np.ndarray, edges: np.ndarray, base_shares: np.ndarray) -> np.ndarray:
    """Population stability index per feature: recent ``(n, n_tracks)`` vs baseline bins.

    ``sum((r - b) * ln(r / b))`` over the baseline's quantile bins, both shares floored at 1e-4.
    Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.
    """
    recent = np.asarray(recent)
    return psi_from_counts(bin_counts(recent, edges), recent.shape[0], base_shares)


def bin_counts(recent: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many of the recent windows ``(n, n_tracks)`` fall in each baseline bin, per track:
    ``(n_tracks, n_bins)``."""
    return bin_totals(bin_index(recent, edges), edges.shape[1] + 1)


def bin_totals(idx: np.ndarray, n_bins: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Per track, the windows (or their ``weights`` ``(n,)``) in each bin, from the bin indices
    ``idx`` ``(n, n_tracks)`` of :func:`bin_index`: ``(n_tracks, n_bins)`` float64."""
    n_tracks = idx.shape[1]
    flat = (idx + np.arange(n_tracks) * n_bins).ravel()
    per_value = None if weights is None else np.repeat(np.asarray(weights, np.float64), n_tracks)
    totals = np.bincount(flat, weights=per_value, minlength=n_tracks * n_bins)
    return totals.reshape(n_tracks, n_bins).astype(np.float64, copy=False)


def bin_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Baseline bin of every value, ``x`` ``(..., n_tracks)`` -> same shape: the number of edges
    below it (``searchsorted`` 'left', as :func:`bin_shares`)."""
    return (edges < np.asarray(x, dtype=np.float64)[..., None]).sum(axis=-1)


def psi_from_counts(counts: np.ndarray, n: int, base_shares: np.ndarray) -> np.ndarray:
    """:func:`psi` from per-track bin counts ``(n_tracks, n_bins)`` of ``n`` recent windows (a
    monitor keeps these up to date window by window)."""
    r = np.maximum(counts / max(n, 1), EPS)
    b = np.maximum(base_shares.astype(np.float64), EPS)
    return np.sum((r - b) * np.log(r / b), axis=1)


def ks_statistic(recent: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Two-sample Kolmogorov-Smirnov distance per feature, against the baseline's quantiles.

    The baseline CDF is the piecewise-linear interpolation of its stored quantiles; the recent
    CDF is empirical. Returns ``max |F_recent - F_base|`` in [0, 1].
    """
    recent = np.sort(np.asarray(recent, dtype=np.float64), axis=0)
    n = recent.shape[0]
    probs = np.linspace(0, 1, quantiles.shape[1])
    out = np.empty(recent.shape[1])
    ecdf_hi = np.arange(1, n + 1) / n
    ecdf_lo = np.arange(0, n) / n
    for j in range(recent.shape[1]):
        q = quantiles[j].astype(np.float64)
        q_unique, first = np.unique(q, return_index=True)
        if len(q_unique) == 1:  # constant in training: any other value is fully shifted
            base_cdf = (recent[:, j] >= q_unique[0]).astype(float)
        else:
            last = np.r_[first[1:] - 1, len(q) - 1]
            base_cdf = np.interp(recent[:, j], q_unique, probs[last], left=0.0, right=1.0)
        out[j] = max(np.max(np.abs(ecdf_hi - base_cdf)), np.max(np.abs(base_cdf - ecdf_lo)))
    return out


def ks_from_counts(counts: np.ndarray, base_shares: np.ndarray) -> np.ndarray:
    """KS distance at the baseline's bin edges only (decile resolution) from bin counts
    ``(n_tracks, n_bins)``: what a monitor that keeps counts, not values, can tell."""
    counts = np.asarray(counts, dtype=np.float64)
    recent = np.cumsum(counts, axis=1)[:, :-1] / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    base = np.cumsum(base_shares.astype(np.float64), axis=1)[:, :-1]
    return np.abs(recent - base).max(axis=1)


def mean_shift(recent: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardised shift of the recent mean: ``|mean_recent - mean_base| / std_base``."""
    return standardised_shift(np.asarray(recent).mean(axis=0, dtype=np.float64), mean, std)


def standardised_shift(recent_mean: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``|recent_mean - mean_base| / std_base`` (floored so constant features do not explode)."""
    scale = np.maximum(std.astype(np.float64), 1e-6 + 1e-3 * np.abs(mean))
    return np.abs(recent_mean - mean) / scale
