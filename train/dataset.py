"""Datasets on disk: a folder with one subfolder per class, or a CSV manifest.

CSV columns: ``path`` (relative to the CSV's folder), ``label`` (classification) or ``target``
(regression), optional ``group`` (speaker, source recording...), ``split`` (train/test),
``fold`` (integer) and ``offset``/``duration`` (seconds: the part of the recording the row
labels). Without groups, each file is its own group: windows of one recording (all its
labelled parts) never land on both sides of a validation split.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field

from features.audio import audio_files, is_hidden


class DataError(ValueError):
    """A dataset that cannot be trained on; the message says which and why, in one line."""


@dataclass
class Item:
    path: str
    label: str | None = None
    target: float | None = None
    group: str | None = None
    split: str | None = None
    fold: int | None = None
    # the part of the recording this row labels, in seconds (manifest ``offset``/``duration``,
    # as librosa.load's): None for the whole file; duration None runs to its end
    segment: tuple | None = None


@dataclass
class Dataset:
    items: list[Item]
    task: str  # "classify" | "regress"
    source: str
    target_name: str | None = None
    has_groups: bool = False
    has_split: bool = False
    has_folds: bool = False
    labels: list[str] = field(default_factory=list)
    # capture-manifest rows (``--capture-dir``) not labelled yet: left out, not an error
    unlabelled_captures: int = 0

    def subset(self, split: str) -> list[Item]:
        return [it for it in self.items if (it.split or "train") == split]


def load_dataset(data, task: str | None = None, require_labels: bool = True,
                 group_by: str | None = None) -> Dataset:
    """Read a folder-per-class tree or a CSV manifest; validate it for ``task``.

    ``group_by``: a regular expression that takes each file's group (speaker, source
    recording...) from its path -- see :func:`groups_from_paths`.
    """
    data = os.fspath(data)
    if not os.path.exists(data):
        raise DataError(f"{data}: no such file or folder")
    if os.path.isdir(data):
        ds = _from_folders(data)
    elif data.lower().endswith(".csv"):
        ds = _from_csv(data, task)
    else:
        raise DataError(f"{data}: expected a folder of class subfolders or a .csv manifest")
    if group_by is not None:
        groups_from_paths(ds, _root(data), group_by)
    if task and task != ds.task:
        if task == "regress" and ds.task == "classify" and ds.source.endswith(".csv"):
            raise DataError(f"{data}: --task regress needs a numeric 'target' column")
        if task == "regress":
            raise DataError(f"{data}: a class-folder tree can only be used for classification")
        raise DataError(f"{data}: has a 'target' column; use --task regress or a 'label' column")
    if require_labels:
        _validate(ds)
    return ds


def _root(data: str) -> str:
    """The folder a source's paths are relative to: the folder itself, or a CSV's folder."""
    return data if os.path.isdir(data) else os.path.dirname(os.path.abspath(data))


def groups_from_paths(ds: Dataset, root: str, pattern: str) -> None:
    """Set every item's group from its path relative to ``root`` ('/'-separated, e.g.
    ``dog/george_0.wav``): the first capture group of ``pattern``'s first match, or the whole
    match if it has no group. A class-folder tree has no other way to say which files share a
    speaker or source; a CSV's ``group`` column is replaced. Raises :class:`DataError` for a
    pattern that is not a regular expression or a file it does not match."""
    import re

    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise DataError(f"--group-by {pattern!r} is not a regular expression: {exc}") from None
    unmatched = []
    for it in ds.items:
        rel = os.path.relpath(os.path.abspath(it.path), os.path.abspath(root))
        m = rx.search(rel.replace(os.sep, "/"))
        group = (m.group(1) if rx.groups else m.group(0)) if m else None
        if not group:
            unmatched.append(rel)
        it.group = group
    if unmatched:
        raise DataError(f"{ds.source}: --group-by {pattern!r} finds no group in "
                        f"{len(unmatched)} of {len(ds.items)} file paths (e.g. {unmatched[0]}); "
                        "it is searched in each path relative to the data folder, and its first "
                        "(...) group, or else the whole match, is the group")
    ds.has_groups = True


def load_datasets(sources, task: str | None = None, require_labels: bool = True,
                  group_by: str | None = None) -> Dataset:
    """Several folders/CSVs as one dataset -- e.g. the original recordings and a capture folder
    whose labels were filled in (``audioclf train DATA drifted/manifest.csv``).

    Every source must be for the same task. Groups, splits and folds keep their meaning per
    item: a group name is the same group in every source (a speaker stays on one side of the
    splits), items without a split are training data. Folds must be given by all sources or
    none, and a file may be listed only once.

    ``group_by`` groups the sources that have no ``group`` column of their own (a class-folder
    tree beside a capture folder's manifest, whose groups are its capture runs and whose file
    names the pattern was not written for); if every source has one, it replaces them all.
    """
    parts = [load_dataset(s, task=task, require_labels=False) for s in sources]
    if not parts:
        raise DataError("no DATA given (a folder of class subfolders or a CSV)")
    if group_by is not None:
        ungrouped = [(s, p) for s, p in zip(sources, parts) if not p.has_groups]
        for source, ds in ungrouped or zip(sources, parts):
            groups_from_paths(ds, _root(os.fspath(source)), group_by)
    first = parts[0]
    for other in parts[1:]:
        if other.task != first.task:
            raise DataError(f"{other.source} is {_task_data(other.task)} but {first.source} is "
                            f"{_task_data(first.task)}; train them separately")
        if other.has_folds != first.has_folds:
            with_folds, without = (first, other) if first.has_folds else (other, first)
            raise DataError(f"{with_folds.source} has a 'fold' column but {without.source} has "
                            "none; give every source folds, or none")
    seen = {}
    for ds in parts:
        for it in ds.items:
            key = (os.path.realpath(it.path), it.segment)  # parts of a recording may recur
            if key in seen:
                what = it.path + ("" if it.segment is None else f" from {it.segment[0]:g} s")
                raise DataError(f"{what} is listed twice ({seen[key]} and {ds.source})")
            seen[key] = ds.source
    ds = first if len(parts) == 1 else Dataset(
        items=[it for p in parts for it in p.items], task=first.task,
        source=" + ".join(p.source for p in parts), target_name=first.target_name,
        has_groups=any(p.has_groups for p in parts), has_split=any(p.has_split for p in parts),
        has_folds=first.has_folds, labels=sorted({lab for p in parts for lab in p.labels}),
        unlabelled_captures=sum(p.unlabelled_captures for p in parts))
    if require_labels:
        _validate(ds)
    return ds


def _task_data(task: str) -> str:
    return "labelled (classification)" if task == "classify" else "regression data (target)"


def _from_folders(root: str) -> Dataset:
    classes = sorted(d for d in os.listdir(root)
                     if os.path.isdir(os.path.join(root, d)) and not is_hidden(d))
    if not classes:
        raise DataError(f"{root}: no class subfolders (expected {root}/<class>/<file>.wav)")
    items, empty = [], []
    for cls in classes:
        files = sorted(audio_files(os.path.join(root, cls)))
        if not files:
            empty.append(cls)
        items += [Item(path=f, label=cls) for f in files]
    if empty:
        raise DataError(f"{root}: class folder(s) with no audio files: {', '.join(empty)}")
    return Dataset(items=items, task="classify", source=root, labels=classes)


def _from_csv(path: str, task: str | None) -> Dataset:
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from None
    if "path" not in columns:
        raise DataError(f"{path}: no 'path' column (columns: {', '.join(columns) or 'none'})")
    has_target = "target" in columns
    label_col = "label" if "label" in columns else None
    if task == "regress" or (task is None and has_target and not label_col):
        ds_task = "regress"
        if not has_target:
            raise DataError(f"{path}: regression needs a 'target' column")
    else:
        ds_task = "classify"
        if not label_col:
            raise DataError(f"{path}: classification needs a 'label' column (or use a 'target' "
                            "column with --task regress)")
    # a capture folder's manifest is a to-do list: its windows are labelled a few at a time
    capture = {"predicted", "drift_state"} <= set(columns) and ds_task == "classify"
    items, unlabelled = [], 0
    for line, row in enumerate(rows, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if capture and not row.get("label"):
            unlabelled += 1
            continue
        if not row.get("path"):
            raise DataError(f"{path}:{line}: empty path")
        item = Item(path=_listed_path(base, row["path"]),
                    group=row.get("group") or None, split=(row.get("split") or None))
        if ds_task == "regress":
            try:
                item.target = float(row["target"])
            except ValueError:
                item.target = math.nan
            if not math.isfinite(item.target):  # float() also reads 'nan' and 'inf'
                raise DataError(f"{path}:{line}: target {row['target']!r} is not a finite number")
        else:
            item.label = row.get(label_col) or None
        if row.get("fold"):
            try:
                item.fold = int(row["fold"])
            except ValueError:
                raise DataError(f"{path}:{line}: fold {row['fold']!r} is not an integer") from None
        if row.get("offset") or row.get("duration"):
            item.segment = _segment(row.get("offset"), row.get("duration"), f"{path}:{line}")
        if item.split and item.split not in ("train", "test"):
            raise DataError(f"{path}:{line}: split must be 'train' or 'test', not {item.split!r}")
        items.append(item)
    if capture and rows and not items:
        raise DataError(f"{path}: none of its {len(rows)} captured windows has a label yet; "
                        "fill in the label column of those to train on")
    labels = sorted({it.label for it in items if it.label}) if ds_task == "classify" else []
    return Dataset(items=items, task=ds_task, source=path, target_name="target",
                   has_groups=any(it.group for it in items), labels=labels,
                   has_split=any(it.split for it in items),
                   has_folds=any(it.fold is not None for it in items),
                   unlabelled_captures=unlabelled)


def _segment(offset: str | None, duration: str | None, where: str) -> tuple:
    """``(offset, duration | None)`` seconds from a manifest row's columns, checked."""
    try:
        start = float(offset) if offset else 0.0
        length = float(duration) if duration else None
    except ValueError:
        raise DataError(f"{where}: offset {offset!r} / duration {duration!r} must be seconds"
                        ) from None
    if not (math.isfinite(start) and start >= 0) or \
            (length is not None and not (math.isfinite(length) and length > 0)):
        raise DataError(f"{where}: offset must be >= 0 s and duration > 0 s (got {offset!r}, "
                        f"{duration!r})")
    return (start, length)


def _listed_path(base: str, listed: str) -> str:
    """A manifest's path, relative to its folder. A manifest written on Windows separates
    folders with backslashes, which are file-name characters here: then, unless a file of
    that very name exists, they are read as separators."""
    path = os.path.normpath(os.path.join(base, listed))
    if os.sep == "/" and "\\" in listed and not os.path.exists(path):
        path = os.path.normpath(os.path.join(base, listed.replace("\\", "/")))
    return path


def _validate(ds: Dataset) -> None:
    if not ds.items:
        raise DataError(f"{ds.source}: no audio files listed")
    if not ds.subset("train"):
        raise DataError(f"{ds.source}: no training data: all {len(ds.items)} files are in the "
                        "test split")
    if ds.task == "classify":
        unlabelled = [it.path for it in ds.items if not it.label]
        if unlabelled:
            raise DataError(f"{ds.source}: {len(unlabelled)} row(s) have an empty label, e.g. "
                            f"{unlabelled[0]} (fill in the label column, or delete the rows "
                            "not to train on)")
        train_labels = {it.label for it in ds.items if (it.split or "train") == "train"}
        if len(train_labels) < 2:
            raise DataError(f"{ds.source}: only one class ({', '.join(train_labels) or 'none'}) "
                            "in the training data; a classifier needs at least two")
    else:
        targets = {it.target for it in ds.subset("train")}
        if len(targets) < 2:
            raise DataError(f"{ds.source}: every training target is {targets.pop():g}; a "
                            "regression needs targets that vary")
