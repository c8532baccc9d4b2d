"""The forests' trees, grown with scikit-learn's own tree builder.

A forest's ``fit`` spends ~0.5 ms of Python on every tree (cloning the estimator, checking its
targets again) before scikit-learn's compiled builder runs. On the search's early rounds that is
more than the building: a tree on 226 FSDD windows builds in ~0.4 ms. The search only needs each
forest's validation predictions, so :func:`grow_and_predict` calls the builder itself, with the
random states, bootstrap samples and settings ``RandomForest*`` / ``ExtraTrees*`` would give
each tree: the same trees, node for node. Whether that holds for the installed scikit-learn
(the builder is private API) is checked once per process on a small problem
(:func:`builder_matches_sklearn`); where it does not, the search uses the forests' own ``fit``.

The model that ships is a real fitted forest: :func:`fit_forest` lets scikit-learn fit its first
tree and set its attributes, then adds the builder's other trees, each in a copy of the first
tree's estimator. It is used where it gives the forest ``fit`` gives, pickled byte for byte
(:func:`assembly_matches_sklearn`, also checked once per process), and is ``fit`` otherwise.

The builder releases the GIL, and so does a tree's ``predict``: chunks of trees run on threads,
with no worker process to start or to import scikit-learn in.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

MAX_INT = np.iinfo(np.int32).max
CHUNK_TREES = 50  # trees per threaded job: small enough to keep two cores busy to the end


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


def grow_trees(task: str, family: str, setting: dict, X: np.ndarray, y: np.ndarray, seeds):
    """The builder's tree (``sklearn.tree._tree.Tree``) for each seed, one at a time, as
    :func:`grow_and_predict` describes: ``(classes, trees)``, ``classes`` the sorted classes of
    ``y`` (None for regression) and ``trees`` a generator."""
    from sklearn.tree._criterion import MSE, Gini
    from sklearn.tree._splitter import BestSplitter, RandomSplitter
    from sklearn.tree._tree import BestFirstTreeBuilder, DepthFirstTreeBuilder, Tree

    n_rows, n_features = X.shape
    if task == "classify":
        classes, codes = np.unique(y, return_inverse=True)
        n_classes = np.array([len(classes)], dtype=np.intp)
        target = np.ascontiguousarray(codes.reshape(-1, 1), dtype=np.float64)
    else:
        classes, n_classes = None, np.array([1], dtype=np.intp)
        target = np.ascontiguousarray(np.asarray(y, dtype=np.float64).reshape(-1, 1))
    leaf = setting["min_samples_leaf"]
    split_min = max(2, 2 * leaf)  # min_samples_split's default, as the tree raises it
    depth = MAX_INT if setting.get("max_depth") is None else setting["max_depth"]
    max_leaves = setting.get("max_leaf_nodes")
    n_try = max_features_count(setting["max_features"], n_features)
    Splitter = RandomSplitter if family == "et" else BestSplitter
    bootstrap = family == "rf"  # RandomForest's default; ExtraTrees' is no bootstrap

    def trees():
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
                builder = BestFirstTreeBuilder(splitter, split_min, leaf, 0.0, depth,
                                               max_leaves, 0.0)
            builder.build(tree, X, target, weight, None)
            yield tree

    return (list(classes) if classes is not None else None), trees()


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
    classes, trees = grow_trees(task, family, setting, X, y, seeds)
    out = np.zeros((len(X_eval), len(classes)) if classes is not None else len(X_eval))
    for tree in trees:
        pred = tree.predict(X_eval)
        out += pred[:, :len(classes)] if classes is not None else pred[:, 0]
    return classes, out


# what fit_forest grows itself; any other parameter must have its default
FOREST_SETTINGS = ("max_features", "min_samples_leaf", "max_depth", "max_leaf_nodes")
FOREST_FREE = ("n_estimators", "n_jobs", "random_state", "verbose")


def _kind(forest) -> tuple[str, str] | None:
    """``(task, family)`` of a RandomForest*/ExtraTrees* whose other parameters are all at
    their defaults (what :func:`grow_trees` reproduces), else None."""
    kind = {cls: kind for kind, cls in forest_classes().items()}.get(type(forest))
    if kind is None or not isinstance(forest.random_state, (int, np.integer)):
        return None
    given, default = forest.get_params(deep=False), type(forest)().get_params(deep=False)
    if not all(_equal(given[k], default[k]) for k in given
               if k not in FOREST_SETTINGS + FOREST_FREE):
        return None
    return kind


def _equal(value, default) -> bool:
    try:
        return bool(value == default)
    except (TypeError, ValueError):  # e.g. an array (monotonic_cst): not the default
        return False


def fit_forest(forest, X: np.ndarray, y: np.ndarray, n_jobs: int = 1):
    """``forest.fit(X, y)``: the same forest to the byte, with less Python per tree.

    scikit-learn fits the first tree (and sets every attribute of the forest); the others are
    grown by :func:`grow_trees` in chunks on ``n_jobs`` threads, each put in a copy of the
    first tree's estimator with its own random state. Where that is not known to give what
    ``fit`` gives (:func:`assembly_matches_sklearn`, a non-default parameter, non-finite
    ``X``, more than one output), this is ``forest.fit(X, y)``. Returns ``forest``.
    """
    kind = _kind(forest)
    X = np.ascontiguousarray(X, dtype=np.float32)  # as the forest casts it
    if (kind is None or forest.n_estimators < 2 or np.ndim(y) != 1 or not np.isfinite(X).all()
            or not assembly_matches_sklearn()):
        return forest.fit(X, y)
    return _assemble(forest, kind, X, y, n_jobs, CHUNK_TREES)


def _assemble(forest, kind, X, y, n_jobs: int, chunk: int):
    import copy

    from joblib import Parallel, delayed, effective_n_jobs

    n = forest.n_estimators
    setting = {k: getattr(forest, k) for k in FOREST_SETTINGS}
    seeds = tree_seeds(forest.random_state, n)[1:]
    # at most `chunk` trees a job, and four jobs a thread where there are trees enough: an
    # expensive forest of few trees must not land on one thread
    parts = max(-(-len(seeds) // chunk), min(len(seeds), 4 * effective_n_jobs(n_jobs)))

    def grow(part):
        return list(grow_trees(*kind, setting, X, y, part)[1])

    forest.set_params(n_estimators=1)  # scikit-learn fits the first tree, beside the others
    try:
        with Parallel(n_jobs=n_jobs, prefer="threads") as parallel:
            _, *grown = parallel([delayed(forest.fit)(X, y)] + [
                delayed(grow)(part) for part in np.array_split(seeds, parts)])
    finally:
        forest.set_params(n_estimators=n)
    first = forest.estimators_[0]
    for seed, tree in zip(seeds, (t for part in grown for t in part)):
        # as fit makes them: the parameters are the forest's own objects, and each tree has
        # its own numpy attributes (classes_, n_classes_)
        est = copy.copy(first)
        for name, value in vars(first).items():
            if isinstance(value, (np.ndarray, np.generic)):
                setattr(est, name, value.copy())
        est.random_state = int(seed)
        est.tree_ = tree
        forest.estimators_.append(est)
    return forest


def forest_classes() -> dict:
    """The scikit-learn forest class of each ``(task, family)``: task "classify" or "regress",
    family "rf" or "et"."""
    from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor,
                                  RandomForestClassifier, RandomForestRegressor)

    return {("classify", "rf"): RandomForestClassifier, ("classify", "et"): ExtraTreesClassifier,
            ("regress", "rf"): RandomForestRegressor, ("regress", "et"): ExtraTreesRegressor}


def _check_cases():
    """The checks' cases, ``(task, family, forest class, X, y, X_new, setting)``: both families
    and tasks, depth-first and best-first with a leaf cap, on one small problem."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((80, 9)).astype(np.float32)
    labels = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    value = X[:, 2] * 2 + X[:, 3] ** 2
    new = rng.standard_normal((30, 9)).astype(np.float32)
    for (task, family), cls in forest_classes().items():
        for setting in ({"max_features": "sqrt", "min_samples_leaf": 2, "max_depth": None,
                         "max_leaf_nodes": None},
                        {"max_features": 0.5, "min_samples_leaf": 1, "max_depth": 4,
                         "max_leaf_nodes": 6}):
            yield task, family, cls, X, labels if task == "classify" else value, new, setting


@lru_cache(maxsize=None)
def assembly_matches_sklearn() -> bool:
    """Whether :func:`fit_forest` gives the forest ``fit`` gives, pickled byte for byte, for
    both families and tasks, depth-first and with a leaf cap (checked once per process)."""
    import pickle

    if not builder_matches_sklearn():
        return False
    try:
        for task, family, cls, X, y, _, setting in _check_cases():
            want = cls(n_estimators=5, random_state=3, n_jobs=1, **setting).fit(X, y)
            got = _assemble(cls(n_estimators=5, random_state=3, n_jobs=1, **setting),
                            (task, family), X, y, n_jobs=1, chunk=2)
            if pickle.dumps(got) != pickle.dumps(want):
                return False
    except (ImportError, TypeError, ValueError, AttributeError, pickle.PicklingError):
        return False
    return True


@lru_cache(maxsize=None)
def builder_matches_sklearn() -> bool:
    """Whether :func:`grow_and_predict` grows exactly the trees the installed scikit-learn's
    forests grow (checked once per process, ~10 ms): the same predictions, bit for bit, for
    both families and tasks, depth-first and with a leaf cap."""
    try:
        for task, family, cls, X, y, new, setting in _check_cases():
            forest = cls(n_estimators=3, random_state=7, n_jobs=1, **setting).fit(X, y)
            want = forest.predict_proba(new) if task == "classify" else forest.predict(new)
            classes, got = grow_and_predict(task, family, setting, X, y, new, tree_seeds(7, 3))
            if task == "classify" and classes != list(forest.classes_):
                return False
            if not np.array_equal(got / 3, want):
                return False
    except (ImportError, TypeError, ValueError, AttributeError):  # the private API moved
        return False
    return True
