"""Scoring a fitted scikit-learn forest from its tree arrays, without per-call overhead.

``predict_proba`` on one sample spends ~10 ms in joblib/validation machinery for a 300-tree
forest; walking all trees at once with numpy takes well under a millisecond. Larger batches
go tree by tree through scikit-learn's compiled ``Tree.apply`` (no validation or dispatch per
tree; it releases the GIL). Results equal scikit-learn's (same float32 input, same ``<=`` on
float64 thresholds, leaf values averaged over trees in float64).
"""
from __future__ import annotations

import numpy as np


class FlatForest:
    """All trees of a fitted RandomForest/ExtraTrees (classifier or regressor) in flat arrays."""

    WALK_MAX_ROWS = 24  # above this, one compiled traversal per tree beats the numpy walk

    def __init__(self, forest):
        trees = [est.tree_ for est in forest.estimators_]
        self.trees = trees
        sizes = np.array([t.node_count for t in trees])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.roots = offsets.astype(np.intp)
        total = int(sizes.sum())
        first = trees[0].value
        n_out = first.shape[2] if first.shape[1] == 1 else first.shape[1]
        # filled in place, tree by tree: concatenating and casting copies took 0.05 s a model
        self.left = np.empty(total, np.intp)
        self.right = np.empty(total, np.intp)
        self.feature = np.empty(total, np.intp)
        self.threshold = np.empty(total)
        values = np.empty((total, n_out))
        for off, size, t in zip(offsets, sizes, trees):
            span = slice(off, off + size)
            left = t.children_left  # each access builds a new array
            leaf = left == -1
            own = np.arange(off, off + size)
            np.add(left, off, out=self.left[span])
            np.add(t.children_right, off, out=self.right[span])
            self.left[span][leaf] = own[leaf]  # a leaf points at itself: walks stop there
            self.right[span][leaf] = own[leaf]
            self.feature[span] = t.feature
            self.feature[span][leaf] = 0
            self.threshold[span] = t.threshold
            self.threshold[span][leaf] = np.inf
            v = t.value
            values[span] = v[:, 0, :] if v.shape[1] == 1 else v[:, :, 0]
        self.is_classifier = hasattr(forest, "classes_")
        if self.is_classifier:
            values /= np.maximum(values.sum(axis=1, keepdims=True), 1e-300)
        self.values = values
        self.depth = max(int(est.tree_.max_depth) for est in forest.estimators_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` or regression values ``(n,)``."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        n = X.shape[0]
        if n > self.WALK_MAX_ROWS:
            total = np.zeros((n, self.values.shape[1]))
            for tree, root in zip(self.trees, self.roots):
                total += self.values[root + tree.apply(X)]
            out = total / len(self.trees)
            return out if self.is_classifier else out[:, 0]
        node = np.broadcast_to(self.roots, (n, len(self.roots))).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            go_left = X[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        out = self.values[node].mean(axis=1)
        return out if self.is_classifier else out[:, 0]
