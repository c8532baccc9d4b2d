"""The model artifact: one joblib file that describes itself, and a digest beside it.

Written by ``train``, read by ``train.evaluate``, ``stream`` and the CLI. A pickle runs code
when it is loaded, so :func:`load_model` reads the file's bytes once, checks them against the
digest file (SHA-256, or HMAC-SHA256 when ``AUDIOCLF_MODEL_KEY`` is set) and only then unpickles
those same bytes.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import io
import os
import platform
import warnings
from dataclasses import dataclass, field

import numpy as np

from features import FeatureConfig, FeatureConfigError, feature_names

FORMAT = "audioclf-model"
FORMAT_VERSION = 1
KEY_ENV = "AUDIOCLF_MODEL_KEY"
ALLOW_SKLEARN_ENV = "AUDIOCLF_ALLOW_SKLEARN_MISMATCH"


class ArtifactError(ValueError):
    """A model file that cannot (or must not) be used; the message names the file."""


@dataclass
class ModelArtifact:
    """Everything serving needs, and everything a reader wants to know about a model."""

    estimator: object
    feature_config: FeatureConfig
    task: str  # "classify" | "regress"
    labels: list | None = None  # class names, in the estimator's column order
    target_name: str | None = None
    target_unit: str | None = None
    baseline: dict = field(default_factory=dict)  # see features.baseline.build_baseline
    metrics: dict = field(default_factory=dict)
    search: list = field(default_factory=list)  # tried settings and scores
    data_fingerprint: str = ""
    # content ids of the training files (train.extract.content_ids); None: not recorded
    training_files: np.ndarray | None = None
    name: str = "model"
    created: str = ""
    versions: dict = field(default_factory=dict)
    path: str | None = None  # where it was loaded from (not stored)
    digest: str = ""  # the verified file digest (not stored)
    _flat: object = field(default=None, repr=False)  # FlatForest, built on first use

    @property
    def feature_names(self) -> list[str]:
        return feature_names(self.feature_config)

    @property
    def is_classifier(self) -> bool:
        return self.task == "classify"

    def score(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` in ``labels`` order, or values ``(n,)``."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 1:
            X = X[None]
        if hasattr(self.estimator, "estimators_"):
            if self._flat is None:
                from .forest import FlatForest
                self._flat = FlatForest(self.estimator)
            return self._flat.predict(X)
        if self.is_classifier:
            return self.estimator.predict_proba(X)
        return self.estimator.predict(X)

    def trained_on(self, ids: np.ndarray) -> np.ndarray | None:
        """Which of these file content ids (``train.extract.content_ids``) were training files:
        a bool mask, or None when the artifact did not record them (made before they were)."""
        if not isinstance(self.training_files, np.ndarray):
            return None
        return np.isin(np.asarray(ids, dtype=np.uint64), self.training_files)

    def describe(self) -> dict:
        """What the artifact says about itself, as plain JSON-able values (``audioclf info``)."""
        est = self.estimator
        cfg = self.feature_config
        summary = {"name": self.name, "path": self.path, "digest": self.digest,
                   "created": self.created, "task": self.task,
                   "estimator": type(est).__name__,
                   "trees": len(getattr(est, "estimators_", []) or []) or None,
                   "setting": {k: v for k, v in (self.search[0] if self.search else {}).items()
                               if k in ("family", "n_estimators", "max_depth", "max_features",
                                        "min_samples_leaf", "max_leaf_nodes")},
                   "features": {"sr": cfg.sr, "window_s": cfg.window_seconds,
                                "hop_s": cfg.window_hop_seconds,
                                "n_features": len(self.feature_names),
                                "config_digest": cfg.digest()},
                   "versions": self.versions, "data_fingerprint": self.data_fingerprint,
                   "training_files": (len(self.training_files)
                                      if isinstance(self.training_files, np.ndarray) else None),
                   "training_windows": self.metrics.get("n_train_windows"),
                   "drift_baseline_windows": self.baseline.get("n_windows")}
        if self.is_classifier:
            summary["labels"] = list(self.labels or [])
        else:
            summary["target"] = {"name": self.target_name, "unit": self.target_unit}
        keys = ("accuracy", "balanced_accuracy", "macro_f1") if self.is_classifier else (
            "mae", "rmse", "r2")
        for part in ("validation", "test"):
            m = self.metrics.get(part)
            if m:
                summary[part] = {"n": m.get("n"), **{k: m.get(k) for k in keys}}
        return summary

    def to_payload(self) -> dict:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "estimator": self.estimator, "feature_config": self.feature_config.to_dict(),
            "feature_names": self.feature_names, "task": self.task,
            "labels": list(self.labels) if self.labels is not None else None,
            "target_name": self.target_name, "target_unit": self.target_unit,
            "baseline": self.baseline, "metrics": self.metrics, "search": self.search,
            "data_fingerprint": self.data_fingerprint, "training_files": self.training_files,
            "name": self.name, "created": self.created or _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "versions": self.versions or library_versions(),
        }


def library_versions() -> dict:
    import joblib
    import scipy
    import sklearn

    from audioclf import __version__

    return {"audioclf": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__,
            "joblib": joblib.__version__}


# ---------------------------------------------------------------------------- digests
def _sidecars(path: str) -> tuple[str, str]:
    return path + ".sha256", path + ".hmac"


def _key() -> bytes | None:
    key = os.environ.get(KEY_ENV)
    return key.encode() if key else None


def file_digest(data: bytes, key: bytes | None = None) -> str:
    if key:
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def save_model(artifact: ModelArtifact, path) -> str:
    """Write ``path`` (joblib, compressed) and its digest file; returns the digest."""
    import joblib

    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    buf = io.BytesIO()
    joblib.dump(artifact.to_payload(), buf, compress=3)
    data = buf.getvalue()
    key = _key()
    digest = file_digest(data, key)
    sha_path, hmac_path = _sidecars(path)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):  # a full disk, or a folder where the file should go
            os.remove(tmp)
        raise
    keep, drop = (hmac_path, sha_path) if key else (sha_path, hmac_path)
    with open(keep, "w") as fh:  # sha256sum's format, so `sha256sum -c` checks it too
        fh.write(f"{digest}  {os.path.basename(path)}\n")
    if os.path.exists(drop):
        os.remove(drop)
    artifact.path, artifact.digest = path, digest
    return digest


def _expected_digest(path: str) -> tuple[str, bool]:
    sha_path, hmac_path = _sidecars(path)
    key = _key()
    if key:
        if not os.path.exists(hmac_path):
            raise ArtifactError(f"{path}: {KEY_ENV} is set but there is no HMAC file "
                                f"{os.path.basename(hmac_path)} beside it; refusing to load")
        return _read_sidecar(hmac_path), True
    if os.path.exists(hmac_path) and not os.path.exists(sha_path):
        raise ArtifactError(f"{path}: signed with a key (HMAC); set {KEY_ENV} to load it")
    if not os.path.exists(sha_path):
        raise ArtifactError(f"{path}: no digest file {os.path.basename(sha_path)} beside it; "
                            "refusing to unpickle an unchecked model")
    return _read_sidecar(sha_path), False


def _read_sidecar(p: str) -> str:
    with open(p) as fh:
        text = fh.read().split()
    if not text or len(text[0]) != 64:
        raise ArtifactError(f"{p}: not a digest file")
    return text[0].lower()


def verify_model_file(path, pinned_sha256: str | None = None) -> tuple[bytes, str]:
    """Read the file and check it against its digest file -- or against ``pinned_sha256``, a
    digest the calling code itself holds (the shipped model's); returns (bytes, digest)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ArtifactError(f"{path}: no such model file")
    expected, keyed = (pinned_sha256, False) if pinned_sha256 else _expected_digest(path)
    with open(path, "rb") as fh:
        data = fh.read()
    actual = file_digest(data, _key() if keyed else None)
    if pinned_sha256 and not hmac.compare_digest(actual, expected):
        raise ArtifactError(f"{path}: SHA-256 differs from the digest this audioclf holds for "
                            "it (models.DEFAULT_SHA256): the file was replaced; reinstall "
                            "audioclf (after retraining the default, update the digest)")
    if not hmac.compare_digest(actual, expected):
        kind = "HMAC" if keyed else "SHA-256"
        raise ArtifactError(f"{path}: {kind} mismatch (file changed after it was written, or "
                            "the wrong key); refusing to unpickle it")
    return data, actual


def load_model(path, pinned_sha256: str | None = None) -> ModelArtifact:
    """Verify, unpickle and validate a model artifact (``pinned_sha256``: see
    :func:`verify_model_file`)."""
    import joblib

    path = os.fspath(path)
    data, digest = verify_model_file(path, pinned_sha256)
    with warnings.catch_warnings():
        # sklearn's InconsistentVersionWarning is replaced by the policy in _check_sklearn
        warnings.simplefilter("ignore")
        try:
            payload = joblib.load(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 -- an unreadable pickle is a user-facing problem
            raise ArtifactError(f"{path}: cannot be unpickled ({type(exc).__name__}: {exc})"
                                ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not an audioclf model artifact")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: artifact format {payload.get('format_version')} is not "
                            f"supported (this audioclf reads format {FORMAT_VERSION})")
    _check_sklearn(path, payload.get("versions", {}))
    try:
        cfg = FeatureConfig.from_dict(payload["feature_config"])
    except (FeatureConfigError, TypeError) as exc:
        raise ArtifactError(f"{path}: its features cannot be reproduced here: {exc}") from None
    if payload.get("feature_names") != feature_names(cfg):
        raise ArtifactError(f"{path}: its feature names differ from what this code computes "
                            "for its config; the model would see different features")
    return ModelArtifact(
        estimator=payload["estimator"], feature_config=cfg, task=payload["task"],
        labels=payload.get("labels"), target_name=payload.get("target_name"),
        target_unit=payload.get("target_unit"), baseline=payload.get("baseline") or {},
        metrics=payload.get("metrics") or {}, search=payload.get("search") or [],
        data_fingerprint=payload.get("data_fingerprint", ""),
        training_files=payload.get("training_files"), name=payload.get("name", "model"),
        created=payload.get("created", ""), versions=payload.get("versions", {}), path=path,
        digest=digest)


def _check_sklearn(path, versions: dict) -> None:
    import sklearn

    saved = versions.get("sklearn", "")
    here = sklearn.__version__
    if saved.split(".")[:2] == here.split(".")[:2]:
        return
    message = (f"{path}: trained with scikit-learn {saved or 'unknown'}, this is {here}; "
               "tree internals may differ")
    if os.environ.get(ALLOW_SKLEARN_ENV):
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return
    raise ArtifactError(message + f" (retrain, or set {ALLOW_SKLEARN_ENV}=1 to load anyway)")
