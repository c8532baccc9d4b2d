"""Pictures of a signal: waveform above its log-mel spectrogram (matplotlib, Agg backend)."""
from __future__ import annotations

import numpy as np

from .config import FeatureConfig
from .extract import FrameAnalyzer


def plot_audio(y: np.ndarray, cfg: FeatureConfig, out_path, title: str = "") -> str:
    """Write a PNG: waveform (time s, amplitude) over log-mel power (time s, Hz, colour in dB)."""
    import matplotlib.pyplot as plt

    fig = audio_figure(y, cfg, title)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return str(out_path)


def audio_figure(y: np.ndarray, cfg: FeatureConfig, title: str = ""):
    """The matplotlib figure behind :func:`plot_audio` (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .spectral import mel_to_hz, hz_to_mel

    an = FrameAnalyzer(cfg)
    rows = an.frame_rows(y if len(y) >= cfg.n_fft else np.pad(y, (0, cfg.n_fft - len(y))))
    log_mel = rows[:, an.layout.logmel].T  # (n_mels, n_frames)
    t = np.arange(len(y)) / cfg.sr
    fig, (ax_w, ax_s) = plt.subplots(2, 1, figsize=(10, 6), sharex=True,
                                     gridspec_kw={"height_ratios": [1, 2]})
    ax_w.plot(t, y, linewidth=0.5)
    ax_w.set_ylabel("amplitude (full scale)")
    ax_w.set_ylim(-1.05, 1.05)
    ax_w.set_title(title)
    edges = mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax_hz), cfg.n_mels + 1))
    # frame t is drawn around its centre, t*hop + n_fft/2 (the analysis window is centred in
    # the frame), so the picture lines up with the waveform above it
    frame_t = (np.arange(log_mel.shape[1] + 1) * cfg.hop_length
               + (cfg.n_fft - cfg.hop_length) / 2) / cfg.sr
    vmax = float(log_mel.max()) if log_mel.size else 0.0
    mesh = ax_s.pcolormesh(frame_t, edges, log_mel, shading="flat", cmap="magma",
                           vmin=vmax - 80, vmax=vmax)
    ax_s.set_yscale("symlog", linthresh=1000)
    ax_s.set_ylabel("frequency (Hz, mel-spaced bands)")
    ax_s.set_xlabel("time (s)")
    fig.colorbar(mesh, ax=[ax_w, ax_s], label="power (dB)", shrink=0.7)
    return fig
