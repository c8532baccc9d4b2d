"""FeatureConfig: every number that determines a feature vector, in one hashable record."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

# Bumped whenever the code computes a different vector for the same config; an artifact whose
# config carries another version cannot be served (its features would not be reproduced).
FEATURE_VERSION = 3

STAT_NAMES = ("mean", "std", "p10", "p50", "p90")


class FeatureConfigError(ValueError):
    """A configuration that cannot produce features (or cannot be reproduced by this code)."""


@dataclass(frozen=True)
class FeatureConfig:
    """Feature settings. Units: Hz, samples, seconds, dB.

    Framing (``n_fft``/``win_length``/``hop_length``) is the STFT used everywhere; within a
    prediction window the frames are *not* centred, so a window's vector depends only on its own
    samples and a stream can reuse frames across overlapping windows.

    Two level gates, relative to the window's loudest frame: statistics are taken over the
    frames within ``active_db``; the segments of temporal pooling span the frames within
    ``core_db`` (the sound's loud core, so a quiet onset or tail does not shift them).
    """

    sr: int = 16_000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 40
    fmin: float = 0.0
    fmax: float | None = None
    n_mfcc: int = 20
    delta_width: int = 9
    contrast_fmin: float = 200.0
    contrast_bands: int = 5
    rolloff_percent: float = 0.85
    window_seconds: float = 1.0
    window_hop_seconds: float = 0.25
    stats: tuple = STAT_NAMES
    n_segments: int = 4
    active_db: float = 40.0
    core_db: float = 20.0
    normalize_loudness: bool = True
    feature_version: int = FEATURE_VERSION

    def __post_init__(self):
        object.__setattr__(self, "stats", tuple(self.stats))
        problems = self.problems()
        if problems:
            raise FeatureConfigError("invalid feature config: " + "; ".join(problems))

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sr))

    @property
    def window_hop_samples(self) -> int:
        return int(round(self.window_hop_seconds * self.sr))

    @property
    def frames_per_window(self) -> int:
        return 1 + (self.window_samples - self.n_fft) // self.hop_length

    @property
    def frames_per_window_hop(self) -> int:
        return self.window_hop_samples // self.hop_length

    @property
    def fmax_hz(self) -> float:
        return float(self.sr) / 2 if self.fmax is None else float(self.fmax)

    # ---- validation ----------------------------------------------------------------------
    def problems(self) -> list[str]:
        p = []
        if self.feature_version != FEATURE_VERSION:
            p.append(f"feature_version {self.feature_version} is not reproducible by this code "
                     f"(it computes version {FEATURE_VERSION})")
        if not (1000 <= self.sr <= 768_000):
            p.append(f"sr={self.sr} out of range")
        if self.n_fft < 16 or self.n_fft & (self.n_fft - 1):
            p.append(f"n_fft={self.n_fft} must be a power of two >= 16")
        if not (0 < self.win_length <= self.n_fft):
            p.append(f"win_length={self.win_length} must be in 1..n_fft")
        if not (0 < self.hop_length <= self.n_fft):
            p.append(f"hop_length={self.hop_length} must be in 1..n_fft")
        if not (0 <= self.fmin < self.fmax_hz <= self.sr / 2):
            p.append(f"need 0 <= fmin < fmax <= sr/2 (fmin={self.fmin}, fmax={self.fmax_hz})")
        if not (1 <= self.n_mfcc <= self.n_mels):
            p.append(f"n_mfcc={self.n_mfcc} must be in 1..n_mels")
        if self.delta_width < 3 or self.delta_width % 2 == 0:
            p.append(f"delta_width={self.delta_width} must be odd and >= 3")
        if self.contrast_bands < 1 or self.contrast_fmin <= 0 or (
            self.contrast_fmin * 2 ** (self.contrast_bands - 1) >= self.sr / 2
        ):
            p.append("spectral contrast bands exceed Nyquist: lower contrast_fmin or "
                     "contrast_bands")
        if not (0 < self.rolloff_percent < 1):
            p.append("rolloff_percent must be in (0, 1)")
        if self.window_samples < self.n_fft:
            p.append("window_seconds shorter than one FFT frame")
        elif self.frames_per_window < self.delta_width:
            p.append(f"a window holds {self.frames_per_window} frames, fewer than "
                     f"delta_width={self.delta_width}")
        if self.window_hop_samples <= 0 or self.window_hop_samples % self.hop_length:
            p.append(f"window hop ({self.window_hop_samples} samples) must be a positive "
                     f"multiple of hop_length={self.hop_length}")
        unknown = set(self.stats) - set(STAT_NAMES)
        if unknown or not self.stats:
            p.append(f"stats must be a non-empty subset of {STAT_NAMES}")
        if self.n_segments < 0:
            p.append("n_segments must be >= 0")
        if self.active_db <= 0:
            p.append("active_db must be > 0")
        if self.core_db <= 0:
            p.append("core_db must be > 0")
        return p

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["stats"] = list(self.stats)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise FeatureConfigError(
                f"feature config has fields this code does not know: {sorted(unknown)}")
        if "core_db" not in d:  # saved before the core had its own gate: it was the active frames
            d = {**d, "core_db": d.get("active_db", cls.active_db)}
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """SHA-256 of the canonical JSON; equal digests mean equal vectors."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def replace(self, **changes) -> "FeatureConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def at_rate(cls, sr: int, **changes) -> "FeatureConfig":
        """The default analysis at another rate ``sr`` (Hz): the frames keep their durations at
        16 kHz -- a 25 ms window (``win_length``) in the next power-of-two ``n_fft``, a 10 ms
        hop -- with the hop rounded to a divisor of the window hop, which frames must tile
        exactly (the 160-sample hop of 16 kHz divides 0.25 s at no other common rate). At
        16 kHz this is the default config. ``changes`` are other fields (window seconds...)."""
        ref = cls()
        scale = sr / ref.sr
        win = max(1, int(round(ref.win_length * scale)))
        n_fft = max(16, 1 << (win - 1).bit_length())
        hop_seconds = changes.get("window_hop_seconds", ref.window_hop_seconds)
        window_hop = int(round(hop_seconds * sr))
        target = ref.hop_length * scale
        near = [d for d in range(max(1, int(target / 2)), int(target * 2) + 1)
                if window_hop % d == 0] if window_hop > 0 else []
        # none within a factor of two (a prime number of samples): the nearest hop, and the
        # config's own check says the window hop does not tile
        hop = min(near, key=lambda d: abs(d - target)) if near else max(1, round(target))
        return cls(**{"sr": sr, "n_fft": n_fft, "win_length": win, "hop_length": hop,
                      **changes})
