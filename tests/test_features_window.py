"""Window vectors: statistics, names, invariances, streaming equality, config, sklearn."""
import numpy as np
import pytest

from features import (FeatureConfig, FeatureConfigError, IncrementalFeatures, batch_windows,
                      block_windows, feature_names, signal_windows, window_vectors)
from features.extract import FrameAnalyzer, FrameLayout, frame_descriptor_names

CFG = FeatureConfig()


def speechy(rng, seconds=3.0, sr=16_000, noise=0.0003):
    """Bursts of harmonic sound in faint noise: active and inactive frames in every window."""
    t = np.arange(int(seconds * sr)) / sr
    env = (np.sin(2 * np.pi * 1.3 * t) > 0.3).astype(np.float32)
    tone = np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 660 * t)
    return (0.3 * env * tone + noise * rng.standard_normal(len(t))).astype(np.float32)


def test_names_are_stable_and_unique():
    names = feature_names(CFG)
    assert len(names) == len(set(names))
    _, X = signal_windows(np.zeros(16000, np.float32), CFG)
    assert X.shape == (1, len(names))
    assert names[0] == "mfcc00_mean" and names[-1] == "level_dbfs"


def test_stats_are_masked_over_active_frames(rng):
    y = speechy(rng)[:16000]
    rows = FrameAnalyzer(CFG).frame_rows(y)
    lay = FrameLayout(CFG)
    v = window_vectors(rows[None], CFG)[0]
    names = feature_names(CFG)
    rms_db = rows[:, lay.scalar["rms_db"]].astype(np.float64)
    active = rms_db >= rms_db.max() - CFG.active_db
    assert 0 < active.sum() < len(active)
    cent = rows[active, lay.scalar["centroid"]].astype(np.float64)
    for stat, ref in [("mean", cent.mean()), ("std", cent.std()),
                      ("p10", np.percentile(cent, 10)), ("p50", np.median(cent)),
                      ("p90", np.percentile(cent, 90))]:
        assert v[names.index(f"centroid_{stat}")] == pytest.approx(ref, rel=1e-5)
    core = rms_db >= rms_db.max() - CFG.core_db
    assert v[names.index("active_fraction")] == pytest.approx(core.mean())


def test_a_window_does_not_depend_on_the_activity_of_the_windows_beside_it(rng):
    """Statistics skip the masking when every frame of a pass is active (steady sound): a
    steady window's vector is numpy's statistics over all its frames, and the same bit for
    bit whether its pass is all active or shares it with a partly active window."""
    t = np.arange(16000) / 16000
    steady = (0.2 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(16000))
    an, lay, names = FrameAnalyzer(CFG), FrameLayout(CFG), feature_names(CFG)
    steady_rows = an.frame_rows(steady.astype(np.float32))
    bursty_rows = an.frame_rows(speechy(rng)[:16000])
    alone = window_vectors(steady_rows[None], CFG)[0]
    cent = steady_rows[:, lay.scalar["centroid"]].astype(np.float64)
    for stat, ref in [("mean", cent.mean()), ("std", cent.std()),
                      ("p10", np.percentile(cent, 10)), ("p90", np.percentile(cent, 90))]:
        assert alone[names.index(f"centroid_{stat}")] == pytest.approx(ref, rel=1e-5)
    assert alone[names.index("active_fraction")] == 1.0
    mixed = window_vectors(np.stack([bursty_rows, steady_rows]), CFG)
    np.testing.assert_array_equal(mixed[1], alone)
    np.testing.assert_array_equal(mixed[0], window_vectors(bursty_rows[None], CFG)[0])


def test_gain_invariance_with_loudness_normalisation(rng):
    y = speechy(rng, noise=0.003)  # floor well above the -100 dB clamp even after -20 dB
    _, a = signal_windows(y, CFG)
    _, b = signal_windows(y * 10 ** (-20 / 20), CFG)  # -20 dB
    scale = np.maximum(np.abs(a).max(axis=0), 1e-6)
    level = feature_names(CFG).index("level_dbfs")
    np.testing.assert_allclose(a[:, level] - b[:, level], 20.0, atol=1e-3)
    a[:, level] = b[:, level] = 0
    assert (np.abs(a - b) / scale).max() < 1e-3
    raw = CFG.replace(normalize_loudness=False)
    _, c = signal_windows(y, raw)
    _, d = signal_windows(y * 0.1, raw)
    i = feature_names(raw).index("rms_db_mean")
    np.testing.assert_allclose(c[:, i] - d[:, i], 20.0, atol=1e-3)


def test_segments_follow_temporal_order(rng):
    sr = 16000
    t = np.arange(sr // 2) / sr
    up = np.concatenate([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 3000 * t)])
    down = up[::-1].copy()
    _, a = signal_windows(up.astype(np.float32), CFG)
    _, b = signal_windows(down.astype(np.float32), CFG)
    names = feature_names(CFG)
    seg0, seg3 = names.index("seg0_mfcc01"), names.index("seg3_mfcc01")
    # same frames, reversed: the summary stats hardly differ, the segments swap
    assert a[0, seg0] == pytest.approx(b[0, seg3], rel=0.05)
    assert abs(a[0, seg0] - a[0, seg3]) > 5


@pytest.mark.parametrize("block", [1, 160, 1000, 4000, 7919, 48000])
def test_incremental_equals_offline(rng, block):
    y = speechy(rng, seconds=4.2)
    starts, X = signal_windows(y, CFG)
    inc = IncrementalFeatures(CFG)
    got = []
    for i in range(0, len(y), block):
        got += inc.push(y[i:i + block])
    assert [s for s, _ in got] == list(starts)
    np.testing.assert_allclose(np.stack([v for _, v in got]), X, rtol=1e-6, atol=1e-6)
    _, _, Xb = batch_windows([y], CFG)
    np.testing.assert_array_equal(Xb, X)
    level = feature_names(CFG).index("level_dbfs")  # streamed levels equal the batch path's
    np.testing.assert_allclose([v[level] for _, v in got], Xb[:, level], atol=1e-6)
    # one window's frame rows and less than a frame of samples (the docstring's figure)
    assert inc.nbytes <= 4 * (CFG.frames_per_window * FrameLayout(CFG).width + CFG.n_fft)


@pytest.mark.parametrize("chunk", [1, 3, 12, 13, 64])
def test_long_signal_chunks_equal_one_pass(rng, monkeypatch, chunk):
    """signal_windows analyses a long signal a few windows at a time; the chunk seams (shared
    frames, a last partial chunk) change no number against the one-pass batch path."""
    import features.extract as fx

    y = speechy(rng, seconds=4.2)  # 13 windows
    _, _, want = batch_windows([y], CFG)
    monkeypatch.setattr(fx, "WINDOW_CHUNK", chunk)
    starts, X = signal_windows(y, CFG)
    assert len(starts) == len(want) == 13
    np.testing.assert_array_equal(X, want)


@pytest.mark.parametrize("seconds", [0.3, 1.0, 1.1, 3.0, 3.25, 3.3, 6.2])
@pytest.mark.parametrize("block", [1000, 16_000, 10 ** 6])
def test_windows_of_blocks_equal_the_whole_signal(rng, seconds, block):
    """block_windows (a file decoded block by block) gives signal_windows' windows of the
    whole signal, whatever the blocks and the parts: a clip shorter than a window padded, a
    tail shorter than a hop not scored, windows across block and part seams unchanged."""
    y = speechy(rng, seconds=seconds)
    want_starts, want = signal_windows(y, CFG)
    parts = list(block_windows((y[i:i + block] for i in range(0, len(y), block)), CFG,
                               max_windows=5))
    assert all(len(s) <= 5 for s, _ in parts)
    np.testing.assert_array_equal(np.concatenate([s for s, _ in parts]), want_starts)
    np.testing.assert_array_equal(np.concatenate([X for _, X in parts]), want)
    assert list(block_windows(iter([]), CFG)) == []


@pytest.mark.parametrize("chunk", [1, 2, 32])
def test_batch_of_mixed_lengths_equals_each_signal(rng, monkeypatch, chunk):
    """Short signals share passes (up to ``chunk`` signals or WINDOW_CHUNK windows), long ones
    go alone; either way each signal's windows come back in order, equal to its own."""
    import features.extract as fx

    monkeypatch.setattr(fx, "WINDOW_CHUNK", 3)
    signals = [speechy(rng, seconds=s) for s in (0.5, 4.2, 1.3, 1.0, 2.0, 0.2, 1.5)]
    owner, starts, X = batch_windows(signals, CFG, chunk=chunk)
    assert list(owner) == sorted(owner) and set(owner) == set(range(len(signals)))
    for k, y in enumerate(signals):
        s_k, X_k = signal_windows(y, CFG)
        np.testing.assert_array_equal(starts[owner == k], s_k)
        np.testing.assert_array_equal(X[owner == k], X_k)


def test_many_windows_in_one_call_equal_one_at_a_time(rng):
    """window_vectors splits a large stack into VECTOR_BATCH passes; no number changes."""
    import features.extract as fx

    rows = FrameAnalyzer(CFG).frame_rows(speechy(rng, seconds=16.0))
    F, step = CFG.frames_per_window, CFG.frames_per_window_hop
    windows = np.stack([rows[i:i + F] for i in range(0, len(rows) - F + 1, step // 5)])
    assert len(windows) > 2 * fx.VECTOR_BATCH + 1
    want = np.concatenate([window_vectors(w, CFG) for w in windows])
    np.testing.assert_array_equal(window_vectors(windows, CFG), want)


def test_silent_frames_share_one_row_equal_to_analysing_them(rng):
    an = FrameAnalyzer(CFG)
    frames = (0.1 * rng.standard_normal((300, CFG.n_fft))).astype(np.float32)
    frames[::3] = 0  # padding / digital silence among sound, in every block
    frames[200:] = 0  # and a run longer than a block
    frames[1, [0, CFG.n_fft // 2, -1]] = 0  # sound whose first, middle and last samples are 0
    got = an.analyze(frames)
    want = np.empty_like(got)
    for b in range(0, len(frames), an.BLOCK):  # every frame through the full analysis
        an._analyze_block(frames[b:b + an.BLOCK], want[b:b + an.BLOCK])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(got[::3], np.broadcast_to(got[0], got[::3].shape))
    assert got[1, 0] > got[0, 0] == -100  # a sounding frame is not the silent row


def test_short_stream_flush_equals_padded_clip(rng):
    y = speechy(rng, seconds=0.6)
    _, X = signal_windows(y, CFG)
    inc = IncrementalFeatures(CFG)
    assert inc.push(y) == []
    (start, v), = inc.flush()
    assert start == 0
    np.testing.assert_allclose(v, X[0], rtol=1e-6, atol=1e-6)


def test_config_roundtrip_hash_and_validation():
    cfg = FeatureConfig(n_mels=64, window_seconds=2.0)
    again = FeatureConfig.from_dict(cfg.to_dict())
    assert again == cfg and hash(again) == hash(cfg) and again.digest() == cfg.digest()
    assert cfg.digest() != CFG.digest()
    with pytest.raises(FeatureConfigError, match="multiple of hop_length"):
        FeatureConfig(window_hop_seconds=0.0123)
    with pytest.raises(FeatureConfigError, match="Nyquist"):
        FeatureConfig(sr=8000, contrast_bands=6)
    with pytest.raises(FeatureConfigError, match="not reproducible"):
        FeatureConfig.from_dict({**CFG.to_dict(), "feature_version": 999})
    with pytest.raises(FeatureConfigError, match="does not know"):
        FeatureConfig.from_dict({**CFG.to_dict(), "wavelets": True})


def test_config_saved_before_the_core_gate_keeps_its_vectors(rng):
    old = {k: v for k, v in CFG.to_dict().items() if k != "core_db"}
    cfg = FeatureConfig.from_dict(old)
    assert cfg.core_db == cfg.active_db == 40.0  # what the segments spanned then
    y = speechy(rng)[:16000]
    y[:4000] *= 0.03  # a quiet onset: active (within 40 dB), not core (within 20 dB)
    rows = FrameAnalyzer(cfg).frame_rows(y)
    rms_db = rows[:, FrameLayout(cfg).scalar["rms_db"]]
    names = feature_names(cfg)
    for c in (cfg, CFG):
        gate = np.flatnonzero(rms_db >= rms_db.max() - c.core_db)
        v = window_vectors(rows[None], c)[0]
        assert v[names.index("active_span")] == pytest.approx(
            (gate[-1] - gate[0] + 1) / len(rows))
    assert window_vectors(rows[None], cfg)[0][names.index("active_span")] > \
        window_vectors(rows[None], CFG)[0][names.index("active_span")]


def test_sklearn_pipeline(rng):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    from features import AudioFeatures

    sr = 16000
    t = np.arange(sr // 2) / sr
    waves = [np.sin(2 * np.pi * f * t) * 0.3 for f in rng.uniform(200, 400, 10)]
    waves += [0.3 * rng.standard_normal(len(t) + int(rng.integers(0, 9000))) for _ in range(10)]
    labels = ["tone"] * 10 + ["noise"] * 10
    pipe = make_pipeline(AudioFeatures(), RandomForestClassifier(n_estimators=20, random_state=0))
    pipe.fit(waves, labels)
    assert list(pipe.predict([np.sin(2 * np.pi * 300 * t), rng.standard_normal(9000)])) == \
        ["tone", "noise"]
    assert len(pipe[0].get_feature_names_out()) == len(feature_names(CFG))
    with pytest.raises(ValueError, match="NaN"):
        AudioFeatures().fit([np.array([0.0, np.nan])])


def test_descriptor_names_cover_stats():
    assert len(feature_names(CFG)) == len(CFG.stats) * len(frame_descriptor_names(CFG)) + \
        2 * CFG.n_segments * CFG.n_mfcc + 3


def test_fft_and_dct_are_scipys():
    """The STFT takes numpy's FFT on numpy 2 (the pocketfft scipy.fft uses) and the DCT matrix
    is built from its formula, so feature workers need not import scipy.fft: both must give
    scipy's numbers."""
    import scipy.fft

    from features import spectral as sp

    rng = np.random.default_rng(4)
    for n, scale in ((1, 1.0), (37, 1e-5), (600, 3e2)):
        frames = rng.standard_normal((n, 512)) * scale
        want = scipy.fft.rfft(frames * sp.analysis_window(400, 512), axis=-1)
        np.testing.assert_allclose(sp.stft_frames(frames, 400), want, rtol=0,
                                   atol=1e-13 * np.abs(want).max())
        np.testing.assert_allclose(sp.stft_frames(frames.copy(), 400, overwrite=True), want,
                                   rtol=0, atol=1e-13 * np.abs(want).max())
    for n_in, n_out in ((40, 20), (64, 30), (10, 10), (128, 13)):
        want = scipy.fft.dct(np.eye(n_in), type=2, norm="ortho", axis=0)[:n_out]
        np.testing.assert_allclose(sp.dct_matrix(n_in, n_out), want, rtol=0, atol=1e-7)
        assert not np.any(sp.dct_matrix(n_in, n_out)[np.abs(want) > 1e-12] == 0)


def test_delta_of_stacked_rows_is_each_rows_own_delta_bit_for_bit(rng):
    """delta runs its shifted differences over all rows laid end to end; the differences that
    reach into a neighbouring row must all be overwritten by the edge slopes, and a row's
    numbers must not depend on what is stacked with it (a streamed window equals the offline
    one). float32 in is cast exactly; ``out`` may be a strided slice."""
    from features import spectral as sp

    x = (rng.standard_normal((6, 5, 23)) * 30).astype(np.float32)
    x[2, 3] += 1e4  # a loud neighbour would leak into the rows beside it
    one_by_one = np.stack([[sp.delta(row.astype(np.float64), 9) for row in rows] for rows in x])
    assert np.array_equal(sp.delta(x, 9), one_by_one)
    out = np.zeros((6, 9, 23))
    sp.delta(x.transpose(1, 0, 2).transpose(1, 0, 2), 9, out=out[:, 2:7])
    assert np.array_equal(out[:, 2:7], one_by_one) and not out[:, :2].any()
    # and a row alone is the Savitzky-Golay slope: a straight line's delta is its slope
    line = 0.25 * np.arange(23) - 3.0
    np.testing.assert_allclose(sp.delta(line, 9), np.full(23, 0.25), rtol=1e-12)
