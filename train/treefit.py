"""The search's forests, grown tree by tree with scikit-learn's own tree builder.

A forest's ``fit`` spends ~0.5 ms of Python on every tree (cloning the estimator, checking its
targets again) before scikit-learn's compiled builder runs. On the search's early rounds that is
more than the building: a tree on 226 FSDD windows builds in ~0.4 ms. The search only needs each
forest's validation predictions, so :func:`grow_and_predict` calls the builder itself, with the
random states, bootstrap samples and settings ``RandomForest*`` / ``ExtraTrees*`` would give
each tree: the same trees, node for node. Whether that holds for the installed scikit-learn
(the builder is private API) is checked once per process on a small problem
(:func:`builder_matches_sklearn`); where it does not, the search uses the forests' own ``fit``.
The model that ships is always fitted by scikit-learn's public ``fit``.

The builder releases the GIL, and so does a tree's ``predict``: chunks of trees run on threads,
with no worker process to start or to import scikit-learn in.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

MAX_INT = np.iinfo(np.int32).max


def tree_seeds(random_state: int, n_estimators: int) -> np.ndarray:
    """The ``random_state`` each tree of a forest with this ``random_state`` gets, in order
    (``BaseForest.fit`` draws one int per tree from ``RandomState(random_state)``)."""
    return np.random.RandomState(random_state).randint(MAX_INT, size=n_estimators)


def max_features_count(max_features, n_features: int) -> int:
    """Features tried per split for a ``max_features`` setting (as ``BaseDecisionTree``)."""
    if max_features == "sqrt":
        return max(1, int(np.sqrt(n_features)))
    if max_features == "log2":
        return max(1, int(np.log2(n_features)))
    if max_features is None:
        return n_features
    if isinstance(max_features, (int, np.integer)):
        return int(max_features)
    return max(1, int(max_features * n_features))


def grow_and_predict(task: str, family: str, setting: dict, X: np.ndarray, y: np.ndarray,
                     X_eval: np.ndarray, seeds) -> tuple[list | None, np.ndarray]:
    """Grow one tree per seed on ``X, y`` and sum their predictions on ``X_eval``.

    ``X``: float32 ``(n_rows, n_features)``, finite. ``setting``: ``max_features``,
    ``min_samples_leaf``, ``max_depth``, ``max_leaf_nodes`` (None: unbounded). Returns
    ``(classes, summed)``: for classification the sorted classes of ``y`` and the summed class
    probabilities ``(len(X_eval), len(classes))``; for regression ``None`` and the summed
    predictions ``(len(X_eval),)``. Divided by ``len(seeds)`` this is the forest's
    ``predict_proba`` / ``predict``.
    """
    from sklearn.tree._criterion import MSE, Gini
    from sklearn.tree._splitter import BestSplitter, RandomSplitter
    from sklearn.tree._tree import BestFirstTreeBuilder, DepthFirstTreeBuilder, Tree

    n_rows, n_features = X.shape
    if task == "classify":
        classes, codes = np.unique(y, return_inverse=True)
        n_classes = np.array([len(classes)], dtype=np.intp)
        target = np.ascontiguousarray(codes.reshape(-1, 1), dtype=np.float64)
        out = np.zeros((len(X_eval), len(classes)))
    else:
        classes, n_classes = None, np.array([1], dtype=np.intp)
        target = np.ascontiguousarray(np.asarray(y, dtype=np.float64).reshape(-1, 1))
        out = np.zeros(len(X_eval))
    leaf = setting["min_samples_leaf"]
    split_min = max(2, 2 * leaf)  # min_samples_split's default, as the tree raises it
    depth = MAX_INT if setting.get("max_depth") is None else setting["max_depth"]
    max_leaves = setting.get("max_leaf_nodes")
    n_try = max_features_count(setting["max_features"], n_features)
    Splitter = RandomSplitter if family == "et" else BestSplitter
    bootstrap = family == "rf"  # RandomForest's default; ExtraTrees' is no bootstrap
    for seed in seeds:
        weight = None
        if bootstrap:  # rows drawn with replacement, passed as counts (as the forest does)
            drawn = np.random.RandomState(seed).randint(0, n_rows, n_rows)
            weight = np.bincount(drawn, minlength=n_rows).astype(np.float64)
        criterion = Gini(1, n_classes) if task == "classify" else MSE(1, n_rows)
        splitter = Splitter(criterion, n_try, leaf, 0.0, np.random.RandomState(seed), None)
        tree = Tree(n_features, n_classes, 1)
        if max_leaves is None:
            builder = DepthFirstTreeBuilder(splitter, split_min, leaf, 0.0, depth, 0.0)
        else:
            builder = BestFirstTreeBuilder(splitter, split_min, leaf, 0.0, depth, max_leaves, 0.0)
        builder.build(tree, X, target, weight, None)
        pred = tree.predict(X_eval)
        out += pred[:, :len(classes)] if task == "classify" else pred[:, 0]
    return (list(classes) if classes is not None else None), out


@lru_cache(maxsize=None)
def builder_matches_sklearn() -> bool:
    """Whether :func:`grow_and_predict` grows exactly the trees the installed scikit-learn's
    forests grow (checked once per process, ~10 ms): the same predictions, bit for bit, for
    both families and tasks, depth-first and with a leaf cap."""
    from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor,
                                  RandomForestClassifier, RandomForestRegressor)

    rng = np.random.RandomState(0)
    X = rng.standard_normal((80, 9)).astype(np.float32)
    labels = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    value = X[:, 2] * 2 + X[:, 3] ** 2
    new = rng.standard_normal((30, 9)).astype(np.float32)
    forests = {("classify", "rf"): RandomForestClassifier,
               ("classify", "et"): ExtraTreesClassifier,
               ("regress", "rf"): RandomForestRegressor, ("regress", "et"): ExtraTreesRegressor}
    try:
        for (task, family), cls in forests.items():
            y = labels if task == "classify" else value
            for setting in ({"max_features": "sqrt", "min_samples_leaf": 2, "max_depth": None,
                             "max_leaf_nodes": None},
                            {"max_features": 0.5, "min_samples_leaf": 1, "max_depth": 4,
                             "max_leaf_nodes": 6}):
                forest = cls(n_estimators=3, random_state=7, n_jobs=1, **setting).fit(X, y)
                want = forest.predict_proba(new) if task == "classify" else forest.predict(new)
                classes, got = grow_and_predict(task, family, setting, X, y, new,
                                                tree_seeds(7, 3))
                if task == "classify" and classes != list(forest.classes_):
                    return False
                if not np.array_equal(got / 3, want):
                    return False
    except (ImportError, TypeError, ValueError, AttributeError):  # the private API moved
        return False
    return True
