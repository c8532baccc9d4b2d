"""Train a forest on a dataset: features -> grouped hyperparameter search -> refit -> artifact."""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from audioclf.artifact import ModelArtifact, library_versions
from features import FeatureConfig, feature_names
from features.baseline import feature_summary, prediction_summary
from features.extract import level_index

from .dataset import DataError, Dataset
from .evaluate import evaluate_scores, sound_windows
from .extract import content_ids, extract_windows
from .progress import progress_bar, status_line
from .treefit import CHUNK_TREES, fit_forest, forest_classes

SEARCH_SPACE = {
    "n_estimators": [100, 200, 300],
    "max_depth": [None, 24, 16],
    "max_features": ["sqrt", "log2", 0.05],  # per split: 20, 9, 21 of 428 features
    "min_samples_leaf": [1, 2, 4],
}
FAMILIES = ("rf", "et")  # RandomForest, ExtraTrees


@dataclass
class TrainOptions:
    n_iter: int = 12  # settings tried by the randomised search (successive halving)
    cv: int = 4  # folds (grouped) when the data has no fold column
    n_jobs: int = -1
    seed: int = 0
    cache_dir: str | None = ""  # "" default cache, None off
    progress: bool = True
    name: str = "model"
    target_unit: str = ""
    families: tuple = FAMILIES  # RandomForest and/or ExtraTrees
    # fully grown trees grow with the data: 20k windows of 10 classes made a 420 MB forest;
    # the search's last round and the final fit cap each tree's leaves to stay within this
    # size (None: no cap)
    max_model_mb: float | None = 100.0

    def problems(self) -> list[str]:
        """What makes these options unusable, in the words of the CLI flags (empty: none)."""
        out = []
        if self.n_iter < 1:
            out.append(f"n_iter (--n-iter) = {self.n_iter}: the search needs at least 1 setting")
        if self.cv < 2:
            out.append(f"cv (--cv) = {self.cv}: cross-validation needs at least 2 folds")
        if self.n_jobs == 0:
            out.append("n_jobs (--jobs) = 0: give a number of workers, or -1 for all cores")
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown or not self.families:
            out.append(f"families (--families) = {','.join(self.families) or 'none'}: "
                       f"use {', '.join(FAMILIES)} or both, comma-separated")
        if self.max_model_mb is not None and not self.max_model_mb > 0:
            out.append(f"max_model_mb (--max-model-mb) = {self.max_model_mb}: give a size in MB "
                       "above 0, or no budget (None; --max-model-mb 0)")
        return out

    def check(self) -> None:
        """Raise :class:`TrainOptionsError` naming every problem (see :meth:`problems`)."""
        problems = self.problems()
        if problems:
            raise TrainOptionsError("invalid training options: " + "; ".join(problems))


class TrainOptionsError(ValueError):
    """Training options that cannot work; one line for the user."""


@dataclass
class TrainResult:
    artifact: ModelArtifact
    search: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    n_train_files: int = 0
    n_test_files: int = 0
    cache_hits: int = 0
    warnings: list = field(default_factory=list)  # one line each, for the user
    cv_groups: str = ""  # what the cross-validation folds keep apart, for the user
    padding_windows: int = 0  # silent windows of files with sound, left out (sound_windows)


def _forest(task: str, family: str, seed: int):
    return forest_classes()[(task, family)](random_state=seed, n_jobs=1)


def candidate_settings(opts: TrainOptions) -> list[dict]:
    """The settings the search tries: a seeded random sample of the grid, per forest family."""
    from sklearn.model_selection import ParameterSampler

    grid = [{"family": list(opts.families), **SEARCH_SPACE}]
    return list(ParameterSampler(grid, n_iter=opts.n_iter, random_state=opts.seed))


def cv_splits(task: str, y, groups, folds, n_splits: int, seed: int, source: str = "data"):
    """Grouped splits: the fold column if given, else (Stratified)GroupKFold over groups.

    Raises :class:`DataError` (naming ``source``) when the training rows cannot be split: one
    group, or folds that leave a split nothing to train on. Stratification needs a class with
    at least as many windows as folds; below that (a file or two per class) the folds are
    grouped only.
    """
    from sklearn.model_selection import GroupKFold, PredefinedSplit, StratifiedGroupKFold

    if folds is not None:
        named = sorted(set(np.asarray(folds).tolist()) - {-1})
        splits = list(PredefinedSplit(folds).split())
        if not named:
            raise DataError(f"{source}: no training file has a fold (those with one are all in "
                            "the test split); give training files a 'fold', or drop the column")
        if any(len(tr) == 0 for tr, _ in splits):
            raise DataError(f"{source}: every training file is in fold {named[0]}, which leaves "
                            "nothing to train on while validating it; cross-validation needs "
                            "at least two folds")
        return splits
    names = np.unique(groups)
    if len(names) < 2:
        raise DataError(f"{source}: all training files are in one group ({names[0]}) and "
                        "cross-validation needs at least two: add recordings from another "
                        "speaker, source or capture run (without a 'group' column each file is "
                        "one group)")
    k = min(n_splits, len(names))
    if task == "classify" and np.unique(y, return_counts=True)[1].max() >= k:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), y, groups))
    return list(GroupKFold(n_splits=k).split(np.zeros(len(y)), y, groups))


MIN_SEARCH_TREES = 20  # fewest trees a shortened early-round forest gets
NODE_BYTES = 64  # a scikit-learn tree node, before its stored values (8 bytes each)


def leaf_cap(setting: dict, n_rows: int, n_full: int, n_values: int,
             max_model_mb: float | None) -> int | None:
    """``max_leaf_nodes`` for a forest of ``setting`` fitted on ``n_rows`` of ``n_full`` rows,
    so that the full model (``setting['n_estimators']`` trees on ``n_full`` rows) stays within
    ``max_model_mb``; None where no tree could reach the cap (the tree is then grown
    depth-first as without one).

    A node costs ``NODE_BYTES`` plus 8 bytes per stored value (``n_values``: classes, or 1 for
    regression) and a tree of L leaves has 2L - 1 nodes. A forest fitted on fewer rows (a
    cross-validation fold) gets the same share of the leaves.
    """
    if max_model_mb is None:
        return None
    nodes = max_model_mb * 1e6 / (setting["n_estimators"] * (NODE_BYTES + 8 * n_values))
    leaves = max(2, int((nodes + 1) // 2 * n_rows / max(n_full, 1)))
    return leaves if n_rows / setting["min_samples_leaf"] > leaves else None


def search(task, X, y, splits, settings, n_jobs, seed, factor: int = 3,
           max_model_mb: float | None = None, progress: bool = False):
    """Successive halving over ``settings`` with grouped CV; rows sorted best first.

    Round r fits every remaining setting on every split with a budget of
    ``factor**(r - last)``: the training part of each split is subsampled to that share of its
    rows (per class for classification) and the forest to that share of its trees (at least
    ``MIN_SEARCH_TREES``) -- a forest's cost is per tree as much as per row, and below a few
    hundred rows the per-tree cost is all there is. The best ``1/factor`` go on, down to one
    finalist, which the last round fits in full on every fold (its out-of-fold predictions
    are the validation metrics). Validation parts are never subsampled. Each row reports the
    score of the last round the setting reached, with that round's rows per fold and trees.
    With ``max_model_mb``, the last round's fits have the leaf cap (:func:`leaf_cap`) their
    setting gets on all of ``X``. ``progress``: a bar per round on a terminal, in trees grown.
    """
    from joblib import Parallel

    from .treefit import builder_matches_sklearn

    rng = np.random.default_rng(seed)
    n_values = len(np.unique(y)) if task == "classify" else 1
    rounds = max(0, int(np.ceil(np.log(max(len(settings), 1)) / np.log(factor))) - 1)
    alive = list(range(len(settings)))
    rows = {}
    X = np.asarray(X, dtype=np.float32)  # as the forests cast it
    own_builder = builder_matches_sklearn() and bool(np.isfinite(X).all())
    # threads: the tree builder releases the GIL, and no worker process has to start, import
    # scikit-learn and be sent X
    with Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator") as parallel:
        for r in range(rounds + 1):
            frac = float(factor) ** (r - rounds)
            sub = [(_subsample(tr, y, frac, rng, task), va) for tr, va in splits]
            last = r == rounds
            budget = [dict(settings[i], n_estimators=_trees(settings[i]["n_estimators"], frac))
                      for i in alive]
            # the last round validates the model as it will be fitted: with its leaf cap.
            # Earlier rounds are not capped: their forests are discarded, and a cap scaled down
            # to their few rows would bind where the full model's does not (small trees have
            # relatively more leaves) and change the ranking
            fits = [(dict(setting, max_leaf_nodes=leaf_cap(settings[i], len(tr), len(X),
                                                            n_values,
                                                            max_model_mb if last else None)),
                     tr, va)
                    for i, setting in zip(alive, budget) for tr, va in sub]
            label = (f"search {r + 1}/{rounds + 1}: {len(alive)} setting(s) x {len(sub)} folds"
                     if not last else f"validating the best setting on {len(sub)} folds")
            with progress_bar(progress, sum(s["n_estimators"] for s, _, _ in fits),
                              label) as advance:
                results = _fit_and_score(parallel, task, X, y, fits, seed, keep=last,
                                         own_builder=own_builder, advance=advance)
            for k, i in enumerate(alive):
                fold_results = results[k * len(sub):(k + 1) * len(sub)]
                fold_scores = [score for score, _ in fold_results]
                rows[i] = {**{key: settings[i][key] for key in ("family", *SEARCH_SPACE)},
                           "score": float(np.mean(fold_scores)),
                           "std": float(np.std(fold_scores)),
                           "round": r, "train_rows": int(np.mean([len(tr) for tr, _ in sub])),
                           "trees": budget[k]["n_estimators"],
                           # the cap the final model would get with this setting (None: none)
                           "max_leaf_nodes": leaf_cap(settings[i], len(X), len(X), n_values,
                                                      max_model_mb)}
                if last:  # out-of-fold predictions of the finalists, for validation metrics
                    rows[i]["_oof"] = [pred for _, pred in fold_results]
            if r < rounds:
                alive.sort(key=lambda i: -rows[i]["score"])
                alive = alive[: max(1, len(alive) // factor)]
    return sorted(rows.values(), key=lambda row: (-row["round"], -row["score"]))


def _trees(n_estimators: int, frac: float) -> int:
    """Trees an early round (``frac`` < 1 of the budget) grows for an ``n_estimators`` setting."""
    if frac >= 1:
        return n_estimators
    return min(n_estimators, max(MIN_SEARCH_TREES, int(round(n_estimators * frac))))


def _fit_and_score(parallel, task, X, y, fits, seed, keep, own_builder, advance=None):
    """``[(score, (classes, predictions) | None)]`` of each ``(setting, tr, va)`` in ``fits``:
    a forest of ``setting`` with ``random_state=seed`` fitted on rows ``tr``, scored on ``va``.

    With ``own_builder`` its trees are grown in chunks of ``CHUNK_TREES``
    (:mod:`train.treefit`): the forest's trees, whose predictions equal its ``predict_proba``
    or ``predict`` to rounding (the chunks' sums are added up). Otherwise each forest is fitted
    whole by scikit-learn. ``advance(n)`` is told of every ``n`` trees grown.
    """
    from joblib import delayed

    from .treefit import tree_seeds

    advance = advance or (lambda n: None)
    if not own_builder:
        results = []
        for (setting, _, _), result in zip(fits, parallel(
                delayed(_fit_score)(task, X, y, tr, va, setting, seed, keep=keep)
                for setting, tr, va in fits)):
            results.append(result)
            advance(setting["n_estimators"])
        return results
    chunks = []  # (fit index, seeds)
    for k, (setting, _, _) in enumerate(fits):
        seeds = tree_seeds(seed, setting["n_estimators"])
        chunks += [(k, seeds[i:i + CHUNK_TREES]) for i in range(0, len(seeds), CHUNK_TREES)]
    summed = [None] * len(fits)  # per fit: (classes, its trees' predictions summed)
    for (k, seeds), (classes, out) in zip(chunks, parallel(
            delayed(_grow_chunk)(task, fits[k][0], X, y, fits[k][1], fits[k][2], seeds)
            for k, seeds in chunks)):
        summed[k] = (classes, out) if summed[k] is None else (classes, summed[k][1] + out)
        advance(len(seeds))
    results = []
    for (setting, _, va), (classes, total) in zip(fits, summed):
        pred = total / setting["n_estimators"]
        results.append((_score(task, classes, pred, y[va]), (classes, pred) if keep else None))
    return results


def _grow_chunk(task, setting, X, y, tr, va, seeds):
    # each chunk copies its fold's rows (a few ms against 0.05-0.7 s of trees): only the
    # running chunks' copies are held, not every fold's at once
    from .treefit import grow_and_predict

    return grow_and_predict(task, setting["family"], setting, X[tr], y[tr], X[va], seeds)


def out_of_fold(task, y, splits, fold_predictions):
    """Assemble per-fold ``(classes, predictions)`` into one out-of-fold array + a mask."""
    validated = np.zeros(len(y), bool)
    if task == "classify":
        classes = sorted(set(y))
        out = np.zeros((len(y), len(classes)))
    else:
        out = np.zeros(len(y))
    for (_, va), (cls, pred) in zip(splits, fold_predictions):
        validated[va] = True
        if task == "classify":
            out[np.ix_(va, [classes.index(c) for c in cls])] = pred
        else:
            out[va] = pred
    return out, validated


def _subsample(idx, y, frac, rng, task):
    if frac >= 1:
        return idx
    if task != "classify":
        return np.sort(rng.choice(idx, max(2, int(len(idx) * frac)), replace=False))
    keep = []
    for c in np.unique(y[idx]):
        members = idx[y[idx] == c]
        keep.append(rng.choice(members, max(1, int(round(len(members) * frac))), replace=False))
    return np.sort(np.concatenate(keep))


def _fit_score(task, X, y, tr, va, setting, seed, keep=False):
    """Fit on ``tr``, score on ``va``; with ``keep`` also return the validation predictions."""
    model = _forest(task, setting["family"], seed)
    model.set_params(max_leaf_nodes=setting.get("max_leaf_nodes"),
                     **{k: setting[k] for k in SEARCH_SPACE})
    model.fit(X[tr], y[tr])
    if task == "classify":
        classes, pred = list(model.classes_), model.predict_proba(X[va])
    else:
        classes, pred = None, model.predict(X[va])
    return _score(task, classes, pred, y[va]), ((classes, pred) if keep else None)


def _score(task, classes, pred, truth) -> float:
    """A search fit's validation score: accuracy of the top class (``pred``: probabilities in
    ``classes`` order) or R² of the predicted values."""
    if task == "classify":
        return float(np.mean(np.asarray(classes, dtype=object)[pred.argmax(axis=1)] == truth))
    from sklearn.metrics import r2_score
    return float(r2_score(truth, pred))


def train_model(ds: Dataset, cfg: FeatureConfig, opts: TrainOptions) -> TrainResult:
    from joblib import effective_n_jobs  # here, before the thread below, which imports joblib

    opts.check()  # before minutes of feature extraction
    paths = [it.path for it in ds.items]
    # this process only waits while worker processes extract features: meanwhile it imports
    # scikit-learn (0.5-1 s in `audioclf train`) and checks the tree builder (~0.1 s)
    warmed_up = _in_background(_warm_up_tree_building)
    win = extract_windows(paths, cfg, n_jobs=opts.n_jobs, cache_dir=opts.cache_dir,
                          progress=opts.progress, segments=[it.segment for it in ds.items])
    warmed_up()
    if win.X.shape[0] == 0:
        first = win.skipped[0][1] if win.skipped else "none listed"
        raise DataError(f"{ds.source}: no file could be read ({len(win.skipped)} skipped, "
                        f"e.g. {first})")
    items = ds.items
    # a clip's zero padding is no evidence of its label: left out of training and test scores
    keep = sound_windows(win.X[:, level_index(cfg)], win.owner)
    is_test = np.array([(items[o].split or "train") == "test" for o in win.owner])
    tr, is_test = ~is_test & keep, is_test & keep
    if ds.task == "classify":
        truth = np.array([it.label for it in items], dtype=object)
    else:
        truth = np.array([it.target for it in items], dtype=float)
    y_all = truth[win.owner]
    X_tr, y_tr, own_tr = win.X[tr], y_all[tr], win.owner[tr]
    if ds.task == "classify":
        present = sorted(set(y_tr))
        if len(present) < 2:
            raise DataError(f"{ds.source}: after skipping unreadable files only "
                            f"{len(present)} class remains; a classifier needs at least two")
        missing = sorted(set(ds.labels) - set(present))
        if missing:
            raise DataError(f"{ds.source}: no readable training audio for class(es) "
                            f"{', '.join(missing)}")
    elif len(np.unique(y_tr)) < 2:
        left = f"every training target is {y_tr[0]:g}" if len(y_tr) else "no training file remains"
        raise DataError(f"{ds.source}: after skipping unreadable files, {left}; a regression "
                        "needs targets that vary")
    groups = np.array([items[o].group or items[o].path for o in own_tr])
    folds = (np.array([items[o].fold if items[o].fold is not None else -1 for o in own_tr])
             if ds.has_folds else None)
    splits = cv_splits(ds.task, y_tr, groups, folds, opts.cv, opts.seed, ds.source)
    if folds is not None:
        cv_groups = f"{len(splits)} folds from the fold column"
    elif ds.has_groups:
        cv_groups = f"{len(np.unique(groups))} groups in {len(splits)} folds"
    else:  # say so: files of one speaker or source on both sides make validation optimistic
        cv_groups = (f"one per file ({len(np.unique(groups))}) in {len(splits)} folds: no group "
                     "column or --group-by")
    warnings = []
    if ds.task == "classify":
        unseen = sorted({c for tr, va in splits for c in set(y_tr[va]) - set(y_tr[tr])})
        if unseen:  # e.g. a class recorded by one speaker, or one run of captured windows
            warnings.append(
                f"class(es) {', '.join(unseen)}: a cross-validation fold holds all of their "
                "training data (too few groups: files, speakers or capture runs), so validation "
                "scores them with a model that never saw them; recordings from more sources "
                "fix it")
    train_files, test_files = np.unique(own_tr), np.unique(win.owner[is_test])
    leaked = _same_content(win.sha256, train_files, test_files)
    if leaked:
        t, o = leaked[0]
        same = (f"{paths[t]} = {paths[o]}" if paths[t] != paths[o] else
                f"{paths[t]}, parts of which are training rows")
        warnings.append(
            f"{len(leaked)} test file(s) have the same content as a training file (e.g. "
            f"{same}): the test figures include audio the model was trained on, or from the "
            "same recording")
    # the baseline's stream windows need only the training files: their worker processes run
    # beside the search's threads and fill the cores those leave idle (round ends, the serial
    # steps after the refit) instead of taking a phase of their own after it
    stream_job = (_stream_windows, [(items[o].path, items[o].segment) for o in train_files],
                  cfg, opts.seed, opts.n_jobs)
    # (with one job, nothing is left idle: they run after the refit, on the one core)
    stream_windows = (_in_background(*stream_job) if effective_n_jobs(opts.n_jobs) > 1 else
                      partial(*stream_job))
    settings = candidate_settings(opts)
    rows = search(ds.task, X_tr, y_tr, splits, settings, opts.n_jobs, opts.seed,
                  max_model_mb=opts.max_model_mb, progress=opts.progress)
    best = rows[0]

    # validation predictions of the chosen setting (out-of-fold), for metrics and the baseline
    oof, validated = out_of_fold(ds.task, y_tr, splits, best.pop("_oof"))
    for row in rows:
        row.pop("_oof", None)
    model = _forest(ds.task, best["family"], opts.seed)
    model.set_params(n_jobs=opts.n_jobs, max_leaf_nodes=best["max_leaf_nodes"],  # the search's
                     **{k: best[k] for k in SEARCH_SPACE})
    with status_line(opts.progress, f"fitting the final model: {best['n_estimators']} trees on "
                                    f"{len(X_tr)} windows"):
        fit_forest(model, X_tr, y_tr, n_jobs=opts.n_jobs)  # = model.fit, less Python per tree
    model.set_params(n_jobs=1)  # live scoring is one small batch at a time
    cap = best["max_leaf_nodes"]
    capped = np.mean([t.tree_.n_leaves >= cap for t in model.estimators_]) if cap else 0.0
    if capped > 0.5:  # many classes and windows: the budget, not the data, shaped the trees
        warnings.append(
            f"the model-size budget (--max-model-mb {opts.max_model_mb:g}) stopped "
            f"{capped:.0%} of the trees at {cap} leaves; the validation figures are the capped "
            "model's, and a larger budget lets the trees grow (a larger model that may score "
            "higher)")
    labels = [str(c) for c in model.classes_] if ds.task == "classify" else None
    # live streams also hold windows that straddle two sounds; a baseline of clip-internal
    # windows only made clean streamed audio look drifted (drift share up to 0.36)
    with status_line(opts.progress, "drift baseline: the training audio played as one stream"):
        X_stream = stream_windows()
    # its sort releases the GIL: it runs beside the metrics and the scoring below
    baseline_features = _in_background(feature_summary, np.concatenate([X_tr, X_stream]),
                                       feature_names(cfg))

    metrics = {"validation": evaluate_scores(ds.task, labels, oof[validated], own_tr[validated],
                                             truth),
               "cv_score": best["score"], "n_train_windows": int(tr.sum())}
    art = ModelArtifact(estimator=model, feature_config=cfg, task=ds.task, labels=labels,
                        target_name=ds.target_name if ds.task == "regress" else None,
                        target_unit=opts.target_unit or None, name=opts.name, search=rows,
                        versions=library_versions())
    if is_test.any():
        test_scores = art.score(win.X[is_test])
        metrics["test"] = evaluate_scores(ds.task, labels, test_scores, win.owner[is_test], truth)
    art.metrics = metrics
    confidence = float(oof[validated].max(axis=1).mean()) if ds.task == "classify" else None
    predicted = y_tr
    if labels and len(X_stream):
        # the prediction mix a live stream is compared with: what the model predicts on its
        # training audio played as one, not the labels of clip-internal windows. Windows that
        # straddle two sounds go to some classes more than others (on the synthetic soundtrack
        # 25% chord, 5% silence against 12.5% each), and clean streams read as drifted
        predicted = np.asarray(labels)[art.score(X_stream).argmax(axis=1)]
    art.baseline = {**baseline_features(),
                    **prediction_summary(predicted if labels else None, labels, confidence)}
    art.data_fingerprint = _fingerprint(X_tr, y_tr)
    art.training_files = content_ids([win.sha256[o] for o in train_files.tolist()])
    return TrainResult(artifact=art, search=rows, skipped=win.skipped,
                       n_train_files=len(train_files), n_test_files=len(test_files),
                       cache_hits=win.cache_hits, warnings=warnings, cv_groups=cv_groups,
                       padding_windows=int((~keep).sum()))


def _warm_up_tree_building() -> None:
    try:
        import sklearn.ensemble  # noqa: F401
        import sklearn.model_selection  # noqa: F401

        from .treefit import assembly_matches_sklearn, builder_matches_sklearn
        builder_matches_sklearn()
        assembly_matches_sklearn()
    except Exception:  # noqa: BLE001 -- the search meets the same problem and reports it
        pass


def _in_background(fn, *args):
    """Start ``fn(*args)`` on a daemon thread; return a function that waits for it and returns
    its result, or raises what it raised."""
    outcome = {}

    def run():
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]
    return result


# separate back-to-back recordings the baseline's stream is played as, computed in parallel.
# A fixed number, not one per job: the baseline must not depend on the machine's cores
STREAM_PARTS = 2


def _stream_windows(paths, cfg: FeatureConfig, seed: int, n_jobs: int = 1,
                    max_seconds: float = 600.0):
    """Windows of training files (``(path, segment | None)``) played back to back (random
    order, up to ``max_seconds``), as ``STREAM_PARTS`` separate back-to-back recordings
    computed on up to ``n_jobs`` workers."""
    from joblib import Parallel, delayed, effective_n_jobs

    rng = np.random.default_rng(seed)
    order = [paths[i] for i in rng.permutation(len(paths))]
    n = max(1, min(STREAM_PARTS, len(order)))
    parts = Parallel(n_jobs=min(effective_n_jobs(n_jobs), n))(
        delayed(_back_to_back)(order[k::n], cfg, max_seconds / n) for k in range(n))
    parts = [p for p in parts if p is not None]
    if not parts:
        return np.zeros((0, len(feature_names(cfg))), np.float32)
    return np.concatenate(parts)


def _back_to_back(paths, cfg: FeatureConfig, max_seconds: float) -> np.ndarray | None:
    from audioclf.memory import keep_freed_memory
    from features import AudioError, read_audio_blocks, signal_windows
    from features.audio import read_audio_segment

    keep_freed_memory()

    parts, total, limit = [], 0, int(max_seconds * cfg.sr)
    for path, segment in paths:
        taken, n = [], 0
        try:  # block by block, so an hour-long file is not decoded for its first minutes (a
            # clip is one block: the clip that reaches the limit is still taken whole)
            blocks = (read_audio_blocks(path, sr=cfg.sr) if segment is None else
                      [read_audio_segment(path, cfg.sr, *segment)])
            for block in blocks:
                taken.append(block)
                n += len(block)
                if total + n >= limit:
                    break
        except AudioError:
            continue
        parts.extend(taken)
        total += n
        if total >= limit:
            break
    if not parts:
        return None
    return signal_windows(np.concatenate(parts), cfg)[1]


def _same_content(sha256: dict, train_files, test_files) -> list[tuple[int, int]]:
    """``(test file, training file)`` index pairs whose bytes are identical."""
    first = {}
    for o in train_files.tolist():
        first.setdefault(sha256[o], o)
    return [(t, first[sha256[t]]) for t in test_files.tolist() if sha256[t] in first]


def _fingerprint(X, y) -> str:
    h = hashlib.sha256(np.ascontiguousarray(X).tobytes())
    h.update("\x00".join(map(str, y)).encode())
    return h.hexdigest()
