"""Pictures of a signal: waveform above its log-mel spectrogram (matplotlib, Agg backend)."""
from __future__ import annotations

import numpy as np

from .config import FeatureConfig
from .extract import FrameAnalyzer


def plot_audio(y: np.ndarray, cfg: FeatureConfig, out_path, title: str = "",
               t0: float = 0.0) -> str:
    """Write a PNG: waveform (time s, amplitude) over log-mel power (time s, Hz, colour in dB);
    ``t0``: the time of ``y``'s first sample (a segment of a recording)."""
    import matplotlib.pyplot as plt

    fig = audio_figure(y, cfg, title, t0)
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return str(out_path)


MAX_WAVEFORM_POINTS = 8000  # beyond this many samples the waveform is drawn as its envelope
MAX_COLUMNS = 2000  # spectrogram columns drawn; longer signals pool frames into each
CHUNK_FRAMES = 8192  # frames analysed at a time (a long signal's rows are never all held)


def audio_figure(y: np.ndarray, cfg: FeatureConfig, title: str = "", t0: float = 0.0):
    """The matplotlib figure behind :func:`plot_audio` (Agg backend); ``t0``: the time (s) of
    ``y``'s first sample, for a segment of a longer recording. A long signal is drawn as its
    waveform's min/max envelope and a spectrogram whose columns pool several frames (their
    mean power), so an hour takes seconds and memory stays that of the samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .spectral import mel_to_hz, hz_to_mel

    y = np.asarray(y, dtype=np.float32)
    fig, (ax_w, ax_s) = plt.subplots(2, 1, figsize=(10, 6), sharex=True,
                                     gridspec_kw={"height_ratios": [1, 2]})
    if len(y) > MAX_WAVEFORM_POINTS:
        k = len(y) // (MAX_WAVEFORM_POINTS // 2)  # samples per envelope point
        blocks = y[:len(y) // k * k].reshape(-1, k)
        t = t0 + (np.arange(len(blocks)) + 0.5) * k / cfg.sr
        ax_w.fill_between(t, blocks.min(axis=1), blocks.max(axis=1), linewidth=0.5)
    else:
        ax_w.plot(t0 + np.arange(len(y)) / cfg.sr, y, linewidth=0.5)
    ax_w.set_ylabel("amplitude (full scale)")
    ax_w.set_ylim(-1.05, 1.05)
    ax_w.set_title(title)
    log_mel, pool = _pooled_log_mel(y, cfg)
    edges = mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax_hz), cfg.n_mels + 1))
    # frame t is drawn around its centre, t*hop + n_fft/2 (the analysis window is centred in
    # the frame), so the picture lines up with the waveform above it; a pooled column spans
    # its frames
    n_frames = max(1, 1 + (max(len(y), cfg.n_fft) - cfg.n_fft) // cfg.hop_length)
    frame_edges = np.minimum(np.arange(log_mel.shape[1] + 1) * pool, n_frames)
    frame_t = t0 + (frame_edges * cfg.hop_length + (cfg.n_fft - cfg.hop_length) / 2) / cfg.sr
    vmax = float(log_mel.max()) if log_mel.size else 0.0
    mesh = ax_s.pcolormesh(frame_t, edges, log_mel, shading="flat", cmap="magma",
                           vmin=vmax - 80, vmax=vmax)
    ax_s.set_yscale("symlog", linthresh=1000)
    ax_s.set_ylabel("frequency (Hz, mel-spaced bands)")
    ax_s.set_xlabel("time (s)")
    fig.colorbar(mesh, ax=[ax_w, ax_s], label="power (dB)", shrink=0.7)
    return fig


def _pooled_log_mel(y: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, int]:
    """Log-mel power ``(n_mels, n_columns)`` in dB, each column the mean power of ``pool``
    consecutive frames (1 up to ``MAX_COLUMNS`` frames); and ``pool``."""
    an = FrameAnalyzer(cfg)
    if len(y) < cfg.n_fft:
        y = np.pad(y, (0, cfg.n_fft - len(y)))
    n_frames = 1 + (len(y) - cfg.n_fft) // cfg.hop_length
    pool = -(-n_frames // MAX_COLUMNS)
    step = max(pool, CHUNK_FRAMES // pool * pool)  # whole columns per chunk
    columns = []
    for f0 in range(0, n_frames, step):
        f1 = min(f0 + step, n_frames)
        span = y[f0 * cfg.hop_length:(f1 - 1) * cfg.hop_length + cfg.n_fft]
        log_mel = an.frame_rows(span)[:, an.layout.logmel]  # (frames, n_mels), dB
        if pool == 1:
            columns.append(log_mel)
            continue
        power = 10.0 ** (log_mel.astype(np.float64) / 10)
        starts = np.arange(0, len(power), pool)
        columns.append(10 * np.log10(np.add.reduceat(power, starts, axis=0)
                                     / np.diff(np.append(starts, len(power)))[:, None]))
    return np.concatenate(columns).T, pool
