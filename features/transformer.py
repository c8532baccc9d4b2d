"""scikit-learn transformer from raw waveforms to window feature vectors."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .config import FeatureConfig
from .extract import clip_vector, feature_names


class AudioFeatures(TransformerMixin, BaseEstimator):
    """Waveforms -> feature vectors, one per clip; drops into a :class:`sklearn.pipeline.Pipeline`.

    ``X`` is a sequence of mono float waveforms at ``config.sr`` Hz (lengths may differ); each
    becomes one vector: all its frames aggregated as one window (see
    :func:`features.extract.window_vectors`). Stateless: ``fit`` only validates.
    """

    def __init__(self, config: FeatureConfig | None = None):
        self.config = config

    def _config(self) -> FeatureConfig:
        return self.config if self.config is not None else FeatureConfig()

    def fit(self, X, y=None):
        if not isinstance(self._config(), FeatureConfig):
            raise TypeError("config must be a FeatureConfig")
        self._check(X)
        self.config_ = self._config()
        self.n_features_out_ = len(feature_names(self.config_))
        return self

    def transform(self, X):
        cfg = getattr(self, "config_", None) or self._config()
        return np.stack([clip_vector(x, cfg) for x in self._check(X)])

    def get_feature_names_out(self, input_features=None):
        return np.asarray(feature_names(self._config()), dtype=object)

    @staticmethod
    def _check(X):
        waves = [np.asarray(x, dtype=np.float32) for x in X]
        for i, w in enumerate(waves):
            if w.ndim != 1:
                raise ValueError(f"waveform {i} has shape {w.shape}; expected 1-D mono samples")
            if not np.isfinite(w).all():
                raise ValueError(f"waveform {i} contains NaN or infinite samples")
        if not waves:
            raise ValueError("no waveforms given")
        return waves
