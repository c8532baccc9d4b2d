"""Our feature functions against librosa (test oracle only) on real FSDD speech and synthetic signals.

Tolerance: 1e-4 relative to the largest magnitude of each feature track (values that cross zero,
such as MFCCs, cannot be compared element-wise relatively). Deliberate differences:
* framing is uncentred (``center=False``) inside windows, so librosa is called with center=False;
* log-mel and contrast have no ``top_db`` clipping (librosa clips 80 dB below the input's
  maximum by default, which makes a frame depend on the rest of the input);
* librosa is fed float64 samples so both sides compute spectra in double precision.
"""
import numpy as np
import pytest

librosa = pytest.importorskip("librosa")

from features import FeatureConfig, read_audio
from features import spectral as sp
from features.extract import FrameAnalyzer, FrameLayout
from tests.conftest import fsdd_manifest

CFG = FeatureConfig()
N_FFT, HOP, WIN, SR = CFG.n_fft, CFG.hop_length, CFG.win_length, CFG.sr


def close(ours, ref, rtol=1e-4):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    scale = max(np.abs(ref).max(), 1e-12)
    err = np.abs(ours - ref).max() / scale
    assert err <= rtol, f"max error {err:.2e} of scale {scale:.3g}"


def signals():
    t = np.arange(SR) / SR
    rng = np.random.default_rng(0)
    yield "chirp", (0.5 * np.sin(2 * np.pi * (100 + 3000 * t) * t)).astype(np.float32)
    yield "noise", (0.1 * rng.standard_normal(SR)).astype(np.float32)
    yield "tone+silence", np.concatenate([0.3 * np.sin(2 * np.pi * 440 * t[:8000]),
                                          np.zeros(8000)]).astype(np.float32)
    rows = fsdd_manifest() if _fsdd_present() else []
    for r in rows[:: max(1, len(rows) // 12)][:12]:
        y, _ = read_audio(r["path"], sr=SR)
        yield r["path"].rsplit("/", 1)[-1], y


def _fsdd_present():
    from tests.conftest import FSDD
    return (FSDD / "manifest.csv").exists()


SIGNALS = list(signals())


@pytest.fixture(params=SIGNALS, ids=[n for n, _ in SIGNALS])
def signal(request):
    return request.param[1]


def lib_mag(y):
    # float64 input makes librosa compute in double precision, as we do; in float32 its quiet
    # bins (e.g. above FSDD's 4 kHz band edge after resampling) are rounding noise.
    y = y.astype(np.float64)
    return np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, win_length=WIN, center=False))


def test_stft_matches(signal):
    close(np.abs(sp.stft(signal, N_FFT, HOP, WIN)), lib_mag(signal))
    ref_c = np.abs(librosa.stft(signal.astype(np.float64), n_fft=N_FFT, hop_length=HOP, win_length=WIN,
                                center=True, pad_mode="constant"))
    close(np.abs(sp.stft(signal, N_FFT, HOP, WIN, center=True)), ref_c)


def test_mel_filterbank_matches():
    close(sp.mel_filterbank(SR, N_FFT, 40), librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=40))
    close(sp.mel_filterbank(22050, 2048, 128, 50, 9000),
          librosa.filters.mel(sr=22050, n_fft=2048, n_mels=128, fmin=50, fmax=9000))


def test_frame_rows_match_librosa(signal, monkeypatch):
    # librosa's contrast converts peaks and valleys with power_to_db(top_db=80), clipping each
    # valley 80 dB below the loudest valley of the *whole input*; ours has no cross-frame clip.
    import functools
    import librosa.feature.spectral as lfs
    monkeypatch.setattr(lfs, "power_to_db", functools.partial(librosa.power_to_db, top_db=None))
    an = FrameAnalyzer(CFG)
    lay = FrameLayout(CFG)
    rows = an.frame_rows(signal).T  # (width, n_frames)
    S = lib_mag(signal)
    mel = librosa.feature.melspectrogram(S=S ** 2, sr=SR, n_mels=CFG.n_mels)
    close(10 ** (rows[lay.logmel] / 10), np.maximum(mel, 1e-10))  # mel power
    log_mel = librosa.power_to_db(mel, top_db=None)
    close(rows[lay.logmel], log_mel)
    close(rows[lay.mfcc], librosa.feature.mfcc(S=log_mel, n_mfcc=CFG.n_mfcc))
    s = lay.scalar
    close(rows[s["centroid"]], librosa.feature.spectral_centroid(S=S, sr=SR)[0])
    close(rows[s["bandwidth"]], librosa.feature.spectral_bandwidth(S=S, sr=SR)[0])
    close(rows[s["rolloff"]], librosa.feature.spectral_rolloff(S=S, sr=SR)[0])
    close(rows[s["flatness"]], librosa.feature.spectral_flatness(S=S)[0])
    close(rows[lay.contrast], librosa.feature.spectral_contrast(
        S=S, sr=SR, n_fft=N_FFT, fmin=CFG.contrast_fmin, n_bands=CFG.contrast_bands))
    close(rows[s["zcr"]], librosa.feature.zero_crossing_rate(
        signal, frame_length=N_FFT, hop_length=HOP, center=False)[0])
    rms = librosa.feature.rms(y=signal, frame_length=N_FFT, hop_length=HOP, center=False)[0]
    close(10 ** (rows[s["rms_db"]] / 20), np.maximum(rms, 1e-5))


def test_delta_matches(signal):
    m = FrameAnalyzer(CFG).frame_rows(signal)[:, FrameLayout(CFG).mfcc].T
    close(sp.delta(m, 9), librosa.feature.delta(m, width=9))


def test_moments_from_one_product_equal_librosa_centroid_and_bandwidth(signal):
    """spectral_moments (and the analysis's fused product) from raw moments; silent frames 0."""
    S = np.abs(sp.stft(signal, N_FFT, HOP))
    S[:, :3] = 0.0
    centroid, bandwidth = sp.spectral_moments(S, sp.fft_frequencies(SR, N_FFT))
    close(centroid[3:], librosa.feature.spectral_centroid(S=S, sr=SR)[0, 3:])
    close(bandwidth[3:], librosa.feature.spectral_bandwidth(S=S, sr=SR)[0, 3:])
    assert not centroid[:3].any() and not bandwidth[:3].any()


def test_dct_matrix_is_ortho_dct():
    import scipy.fft
    x = np.random.default_rng(3).standard_normal((40, 7))
    close(sp.dct_matrix(40, 13) @ x, scipy.fft.dct(x, axis=0, norm="ortho")[:13])


def test_rolloff_bins_equals_a_plain_cumulative_search():
    # the two-level search against the definition, on spectra whose roll-off lands in every
    # block, including the short last one (bin 256 alone) and all-zero frames
    rng = np.random.default_rng(5)
    S = rng.random((400, N_FFT // 2 + 1)) ** 4
    S[::7, : rng.integers(1, 256)] = 0.0  # energy only above some bin
    S[1::7, -1] = 1e6  # nearly all energy in the Nyquist bin
    S[2::7] = 0.0
    for percent in (0.5, 0.85, 0.99):
        cum = np.cumsum(S, axis=1)
        expected = np.minimum(np.argmax(cum >= percent * cum[:, -1:], axis=1), S.shape[1] - 1)
        np.testing.assert_array_equal(sp.rolloff_bins(S, percent), expected)
