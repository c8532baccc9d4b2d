"""Audio input and features: the one code path shared by training and serving.

Depends on nothing else in this repository.
"""
from .audio import (AudioError, AudioInfo, audio_info, level_dbfs, read_audio, read_audio_blocks,
                    resample, to_mono)
from .config import FEATURE_VERSION, FeatureConfig, FeatureConfigError
from .extract import (FrameAnalyzer, IncrementalFeatures, batch_windows, block_windows,
                      clip_vector, feature_names, n_features, signal_windows, window_vectors)

__all__ = [
    "AudioError", "AudioInfo", "audio_info", "level_dbfs", "read_audio", "read_audio_blocks",
    "resample", "to_mono", "FEATURE_VERSION", "FeatureConfig", "FeatureConfigError",
    "FrameAnalyzer", "IncrementalFeatures", "batch_windows", "block_windows", "clip_vector",
    "feature_names", "n_features", "signal_windows", "window_vectors", "AudioFeatures",
]


def __getattr__(name):  # sklearn is only imported when the transformer is wanted
    if name == "AudioFeatures":
        from .transformer import AudioFeatures
        return AudioFeatures
    raise AttributeError(name)
