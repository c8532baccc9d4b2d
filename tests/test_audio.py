"""Audio reading across formats, dtypes, channel counts and rates, and every bad-input message."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from features import AudioError, audio_info, read_audio, read_audio_blocks

SR = 16_000


def tone(sr, seconds=0.5, channels=1, freq=440.0):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([x * (0.5 + 0.5 * c) for c in range(channels)], axis=1) if channels > 1 else x


@pytest.mark.parametrize("fmt,subtype", [
    ("WAV", "PCM_U8"), ("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "PCM_32"), ("WAV", "FLOAT"),
    ("WAV", "DOUBLE"), ("FLAC", "PCM_16"), ("FLAC", "PCM_24"), ("OGG", "VORBIS"),
])
def test_formats_and_dtypes_decode_to_float32_mono(tmp_path, fmt, subtype):
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(path, tone(SR), SR, format=fmt, subtype=subtype)
    y, sr = read_audio(path, sr=SR)
    assert sr == SR and y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - SR // 2) <= 1
    ref = tone(SR)[: len(y)]
    tol = 0.02 if subtype in ("PCM_U8", "VORBIS") else 1e-3
    assert np.sqrt(np.mean((y - ref) ** 2)) < tol


@pytest.mark.parametrize("channels", [2, 6])
@pytest.mark.parametrize("block", [None, 7])
def test_channels_are_averaged(tmp_path, channels, block, monkeypatch):
    """Multichannel files are downmixed block by block (DECODE_BLOCK frames); a small block
    makes the seams and the last partial block count."""
    import features.audio

    if block is not None:
        monkeypatch.setattr(features.audio, "DECODE_BLOCK", block)
    path = tmp_path / "multi.wav"
    x = tone(SR, channels=channels)
    sf.write(path, x, SR, subtype="FLOAT")
    y, _ = read_audio(path, sr=SR)
    assert y.shape == (len(x),)
    np.testing.assert_allclose(y, x.mean(axis=1), atol=1e-6)


def test_downmix_grows_past_a_short_frame_count(tmp_path, monkeypatch):
    """The decoder preallocates the header's frame count; more frames than that (a header
    that under-reports) still all arrive, in order."""
    import soundfile

    import features.audio

    monkeypatch.setattr(features.audio, "DECODE_BLOCK", 7)
    x = tone(SR, channels=2)
    sf.write(tmp_path / "s.wav", x, SR, subtype="FLOAT")
    with soundfile.SoundFile(tmp_path / "s.wav") as fh:
        y = features.audio._decode_mono(fh, 13)
    np.testing.assert_allclose(y, x.mean(axis=1), atol=1e-6)


@pytest.mark.parametrize("file_sr", [8000, 22050, 44100, 48000, 96000])
def test_resampling_keeps_duration_and_pitch(tmp_path, file_sr):
    path = tmp_path / "r.wav"
    sf.write(path, tone(file_sr, seconds=1.0, freq=1000.0), file_sr)
    y, sr = read_audio(path, sr=SR)
    assert sr == SR and abs(len(y) - SR) <= 1
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert abs(np.argmax(spectrum) * SR / len(y) - 1000.0) < 2.0
    y_native, native_sr = read_audio(path, sr=None)
    assert native_sr == file_sr and len(y_native) == file_sr


@pytest.mark.parametrize("rates", [(8000, 16000), (44100, 16000), (48000, 16000),
                                   (22050, 16000), (16000, 44100), (11025, 16000)])
@pytest.mark.parametrize("chunk", [None, 7, 1000])
def test_resample_equals_scipy_resample_poly(rates, chunk, monkeypatch):
    """Our polyphase resampler (no scipy.signal import) against scipy's, with the filter scipy
    designs by default, on lengths from one sample to two seconds and a (2, 3, n) batch; also
    with small output chunks, so every rate pair crosses chunk seams."""
    from fractions import Fraction

    from scipy.signal import firwin, resample_poly

    import features.audio
    from features.audio import resample

    if chunk is not None:
        monkeypatch.setattr(features.audio, "RESAMPLE_CHUNK", chunk)

    orig, target = rates
    r = Fraction(target, orig)
    up, down = r.numerator, r.denominator
    h = firwin(2 * 10 * max(up, down) + 1, 1 / max(up, down), window=("kaiser", 5.0))
    rng = np.random.default_rng(up * 7 + down)
    assert resample(np.zeros(0, np.float32), orig, target).shape == (0,)
    for n in (1, 5, 999, 2 * orig + 3):
        x = (0.3 * rng.standard_normal(n)).astype(np.float32)
        want = resample_poly(x, up, down, window=h.astype(np.float32))
        got = resample(x, orig, target)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-6)
    batch = (0.3 * rng.standard_normal((2, 3, 1000))).astype(np.float32)
    np.testing.assert_allclose(resample(batch, orig, target),
                               resample_poly(batch, up, down, axis=-1,
                                             window=h.astype(np.float32)), atol=1e-6)


@pytest.mark.parametrize("file_sr,channels", [(16000, 1), (16000, 2), (44100, 2), (8000, 1),
                                              (48000, 6), (22050, 1)])
@pytest.mark.parametrize("block_frames", [1, 977, 1 << 18])
def test_blocks_are_read_audio_a_block_at_a_time(tmp_path, file_sr, channels, block_frames):
    """read_audio_blocks (predict, listen --file, long training files) concatenates to
    read_audio's samples: the same ones at the model's rate, resampled ones to float32
    rounding (its blocks go through the live streams' resampler); no block is empty."""
    path = tmp_path / "b.wav"
    rng = np.random.default_rng(file_sr + channels)
    x = (0.2 * rng.standard_normal((int(file_sr * 2.3) + 1, channels))).astype(np.float32)
    sf.write(path, x, file_sr, subtype="FLOAT")
    if block_frames == 1:
        sf.write(path, x[:400], file_sr, subtype="FLOAT")  # one-frame blocks: keep it short
    whole, _ = read_audio(path, sr=SR)
    blocks = list(read_audio_blocks(path, sr=SR, block_frames=block_frames))
    assert all(b.dtype == np.float32 and b.ndim == 1 and b.shape[0] for b in blocks)
    if block_frames == 1 << 18 and file_sr == SR:
        assert len(blocks) == 1  # a clip is one block
    got = np.concatenate(blocks)
    assert got.shape == whole.shape
    if file_sr == SR:
        np.testing.assert_array_equal(got, whole)
    else:
        np.testing.assert_allclose(got, whole, atol=1e-6)


def test_blocks_before_a_problem_arrive_then_the_error(tmp_path):
    """A problem only decoding finds (here a NaN two seconds in) is raised when its block
    is reached: what came before it has already been handed over."""
    x = tone(SR, seconds=4.0)
    x[2 * SR] = np.nan
    sf.write(tmp_path / "n.wav", x, SR, subtype="FLOAT")
    got = []
    with pytest.raises(AudioError, match="NaN or infinite"):
        for block in read_audio_blocks(tmp_path / "n.wav", sr=SR, block_frames=SR // 2):
            got.append(block)
    assert sum(map(len, got)) == 2 * SR


def _bad(path, content: bytes):
    path.write_bytes(content)
    return path


def good_wav_bytes(tmp_path):
    p = tmp_path / "good.wav"
    sf.write(p, tone(SR), SR, subtype="PCM_16")
    return p.read_bytes()


@pytest.mark.parametrize("case,expect", [
    ("missing", "no such file"),
    ("empty", "empty file"),
    ("text", "not a readable audio file"),
    ("truncated", "truncated"),
    ("zero_length", "zero length"),
    ("nan", "NaN or infinite"),
    ("absurd_rate", "absurd sample rate"),
    ("directory", "is a directory"),
    # libsndfile says such a file "does not exist or is not a regular file"
    ("random_mp3", "not a readable audio file (unrecognised format or corrupt data)"),
    ("m4a", ".m4a is not a format libsndfile decodes; convert the file first, e.g. ffmpeg "
            "-i IN.m4a OUT.flac"),
])
def test_bad_input_messages_name_file_and_problem(tmp_path, case, expect):
    path = tmp_path / (f"{case}.mp3" if case.endswith("mp3") else
                       f"x.{case}" if case == "m4a" else f"{case}.wav")
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("hello, I am not audio\n" * 20)
    elif case == "truncated":
        data = good_wav_bytes(tmp_path)
        path.write_bytes(data[: len(data) // 2])  # header still claims the full length
    elif case == "zero_length":
        sf.write(path, np.zeros((0,)), SR)
    elif case == "nan":
        x = tone(SR)
        x[100] = np.nan
        sf.write(path, x, SR, subtype="FLOAT")
    elif case == "absurd_rate":
        sf.write(path, tone(SR), 10)  # 10 Hz is a valid header value but not audio
    elif case == "directory":
        path.mkdir()
    elif case == "random_mp3":
        path.write_bytes(np.random.default_rng(0).bytes(1000))
    elif case == "m4a":  # the start of an MP4 container
        path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(2000))
    for read in (read_audio, lambda p: list(read_audio_blocks(p, block_frames=1000))):
        with pytest.raises(AudioError) as err:
            read(path)
        message = str(err.value)
        assert str(path) in message and expect in message
        assert "\n" not in message


def test_info_reports_header(tmp_path):
    path = tmp_path / "st.flac"
    sf.write(path, tone(44100, seconds=2.0, channels=2), 44100, format="FLAC")
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.format) == (44100, 2, "FLAC")
    assert info.duration == pytest.approx(2.0)


def test_cli_info_and_bad_file_give_one_line_no_traceback(tmp_path):
    good = tmp_path / "a.wav"
    sf.write(good, tone(SR), SR)
    bad = tmp_path / "b.wav"
    bad.write_text("nope")
    out = subprocess.run([sys.executable, "-m", "audioclf", "info", str(good), str(bad)],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "16000 Hz" in out.stdout and "-9.0 dBFS" in out.stdout.replace("-9.03", "-9.0")
    assert "Traceback" not in out.stderr
    err_lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert len(err_lines) == 1 and str(bad) in err_lines[0]


def test_cli_info_on_a_folder_lists_its_audio_files_and_sums_them_up(tmp_path):
    data = tmp_path / "data"
    (data / "dog").mkdir(parents=True)
    (data / "cat").mkdir()
    sf.write(data / "dog" / "a.wav", tone(SR, seconds=1.0), SR)
    sf.write(data / "cat" / "b.flac", tone(44100, seconds=0.5, channels=2), 44100)
    (data / "cat" / "notes.txt").write_text("not audio, not listed")
    (data / "cat" / "c.wav").write_text("nope")
    out = subprocess.run([sys.executable, "-m", "audioclf", "info", str(data)],
                         capture_output=True, text=True)
    assert out.returncode == 1  # c.wav is unreadable, and says so
    listed = [line.split(":")[0] for line in out.stdout.splitlines()[:-1]]
    assert listed == [str(data / "cat" / "b.flac"), str(data / "dog" / "a.wav")]
    assert out.stdout.splitlines()[-1] == ("3 files (1 unreadable), 1.5 s in all; 16000 Hz x1, "
                                           "44100 Hz x1; 1 ch x1, 2 ch x1")
    assert out.stderr.count("\n") == 1 and "c.wav" in out.stderr
    out = subprocess.run([sys.executable, "-m", "audioclf", "info", str(data / "cat" / "c.wav"),
                          str(data / "cat" / "c.wav")], capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout == "2 files (2 unreadable), 0.0 s in all\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    out = subprocess.run([sys.executable, "-m", "audioclf", "info", str(empty)],
                         capture_output=True, text=True)
    assert out.returncode == 1 and f"{empty}: no audio files" in out.stderr


def test_damaged_mp3s_print_only_our_line(tmp_path):
    """libmpg123 writes notes to descriptor 2 on a damaged MP3 ("Note: Trying to resync...",
    "Warning: Xing stream size off..."); a truncated file is one error line, a file with a gap
    of junk that still decodes is no line at all."""
    good = tmp_path / "good.mp3"
    sf.write(good, tone(SR, seconds=4.0), SR)
    data = good.read_bytes()
    cut, gap = tmp_path / "cut.mp3", tmp_path / "gap.mp3"
    cut.write_bytes(data[:len(data) // 2])
    gap.write_bytes(data[:len(data) // 3] + bytes(200) + data[len(data) // 3:])
    out = subprocess.run([sys.executable, "-m", "audioclf", "info", str(cut), str(gap)],
                         capture_output=True, text=True)
    assert out.returncode == 1 and f"{gap}: MP3" in out.stdout, out.stdout
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"audioclf: error: {cut}: truncated"), lines


def test_hidden_decoder_notes_keep_other_output(capfd):
    """The redirection is process-wide: what another thread writes meanwhile is written back."""
    import os

    from features.audio import _decoder_notes_hidden

    with _decoder_notes_hidden("x.mp3"):
        os.write(2, b"Note: Trying to resync...\n")
        os.write(2, b"another thread's line\n")
        print("python's stderr too", file=sys.stderr)
    err = capfd.readouterr().err
    assert "another thread's line" in err and "python's stderr too" in err
    assert "resync" not in err


def test_plot_writes_labelled_png(tmp_path):
    import matplotlib.image as mpimg

    wav = tmp_path / "p.wav"
    sf.write(wav, tone(44100, seconds=1.5, channels=2), 44100)
    out = subprocess.run([sys.executable, "-m", "audioclf", "plot", str(wav), "-o",
                          str(tmp_path / "p.png")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    img = mpimg.imread(tmp_path / "p.png")
    assert img.shape[0] > 300 and img.shape[1] > 500 and img.std() > 0.05  # not blank
    # the axes carry units: time (s), frequency (Hz), power (dB)
    from features import FeatureConfig
    from features.plot import audio_figure
    fig = audio_figure(tone(16000, seconds=1.0), FeatureConfig())
    labels = [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]
    assert ("time (s)", "frequency (Hz, mel-spaced bands)") in labels
    assert any(y == "power (dB)" for _, y in labels)  # the colour bar


def test_plot_takes_several_files_and_folders(tmp_path):
    """`plot FOLDER`: one PNG per audio file under it, named by its path (same-named files in
    two class folders do not overwrite each other); a bad file is one line and the others are
    still drawn."""
    import matplotlib.image as mpimg

    for sub, ext in (("dog", "wav"), ("cat", "flac")):
        (tmp_path / "data" / sub).mkdir(parents=True)
        sf.write(tmp_path / "data" / sub / f"0.{ext}", tone(22050, seconds=0.5), 22050)
    (tmp_path / "data" / "cat" / "1.wav").write_bytes(b"RIFF not really")
    out = subprocess.run([sys.executable, "-m", "audioclf", "plot", str(tmp_path / "data"),
                          "-o", str(tmp_path / "png")], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "1.wav" in out.stderr and "Traceback" not in out.stderr
    written = sorted(p.relative_to(tmp_path / "png").as_posix()
                     for p in (tmp_path / "png").rglob("*.png"))
    assert written == ["cat/0.png", "dog/0.png"]
    assert out.stdout.split() == [str(tmp_path / "png" / w) for w in ("cat/0.png", "dog/0.png")]
    assert mpimg.imread(tmp_path / "png" / "dog" / "0.png").std() > 0.05
    # several inputs need a folder to write in, not one PNG's name
    refused = subprocess.run([sys.executable, "-m", "audioclf", "plot",
                              str(tmp_path / "data" / "dog" / "0.wav"),
                              str(tmp_path / "data" / "cat" / "0.flac"), "-o",
                              str(tmp_path / "png" / "dog" / "0.png")],
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "give a folder" in refused.stderr


def test_plot_spectrogram_lines_up_with_the_waveform():
    """A 0.5-0.7 s tone burst in silence: the spectrogram's power is centred at 0.6 s (each
    frame drawn at its centre, not its start, which put it 11 ms early)."""
    from features import FeatureConfig
    from features.plot import audio_figure

    sr = 16000
    y = np.zeros(sr)
    burst = slice(int(0.5 * sr), int(0.7 * sr))
    y[burst] = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(burst.stop - burst.start) / sr)
    fig = audio_figure(y, FeatureConfig())
    mesh = fig.axes[1].collections[0]
    x_edges = mesh.get_coordinates()[0, :, 0]
    centres = (x_edges[:-1] + x_edges[1:]) / 2
    power = (10.0 ** (np.asarray(mesh.get_array()).reshape(-1, len(centres)) / 10)).sum(axis=0)
    assert abs(np.sum(centres * power) / power.sum() - 0.6) < 0.002
    assert x_edges[-1] <= len(y) / sr  # no frame drawn past the end of the signal


def test_a_long_signal_is_plotted_as_envelope_and_pooled_columns(monkeypatch):
    """Beyond MAX_WAVEFORM_POINTS samples the waveform is its min/max envelope, beyond
    MAX_COLUMNS frames each spectrogram column is the mean power of its frames (the same
    power as the frames drawn one by one), and the picture spans the signal's time."""
    from features import FeatureConfig
    import features.plot as fp

    cfg = FeatureConfig()
    rng = np.random.default_rng(3)
    y = (0.3 * rng.standard_normal(5 * SR) * np.repeat(rng.uniform(0, 1, 50), SR // 10)
         ).astype(np.float32)
    full = fp.audio_figure(y, cfg, t0=10.0)
    mesh = full.axes[1].collections[0]
    frames = np.asarray(mesh.get_array()).reshape(cfg.n_mels, -1)
    monkeypatch.setattr(fp, "MAX_COLUMNS", 50)
    monkeypatch.setattr(fp, "CHUNK_FRAMES", 37)  # chunk seams inside the signal
    pooled_fig = fp.audio_figure(y, cfg, t0=10.0)
    wave = pooled_fig.axes[0].collections[0]  # fill_between: the envelope
    assert len(pooled_fig.axes[0].lines) == 0 and wave.get_paths()
    mesh = pooled_fig.axes[1].collections[0]
    pooled = np.asarray(mesh.get_array()).reshape(cfg.n_mels, -1)
    pool = -(-frames.shape[1] // 50)
    assert pooled.shape[1] == -(-frames.shape[1] // pool) <= 50
    want = 10 * np.log10(np.stack([(10 ** (frames[:, k:k + pool] / 10)).mean(axis=1)
                                   for k in range(0, frames.shape[1], pool)], axis=1))
    np.testing.assert_allclose(pooled, want, atol=1e-3)
    x = mesh.get_coordinates()[0, :, 0]
    assert 10.0 < x[0] < 10.03 and x[-1] <= 15.0
    assert x[-1] == full.axes[1].collections[0].get_coordinates()[0, -1, 0]


def test_plot_draws_a_segment_of_a_long_file(tmp_path):
    """--start/--seconds plot part of a recording, on the recording's clock; the segment is
    the samples read whole would give there; a start past the end is one line."""
    from features.audio import read_audio_segment

    x = tone(44100, seconds=12.0) * np.linspace(0, 1, 44100 * 12)
    sf.write(tmp_path / "long.wav", x, 44100)
    whole, _ = read_audio(tmp_path / "long.wav")
    part = read_audio_segment(tmp_path / "long.wav", SR, 3.5, 2.0)
    np.testing.assert_allclose(part, whole[int(3.5 * SR):int(5.5 * SR)], atol=1e-6)
    np.testing.assert_allclose(read_audio_segment(tmp_path / "long.wav", SR, 11.0),
                               whole[11 * SR:], atol=1e-6)
    out = subprocess.run([sys.executable, "-m", "audioclf", "plot", tmp_path / "long.wav",
                          "--start", "3.5", "--seconds", "2", "-o", tmp_path / "seg.png"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and (tmp_path / "seg.png").exists(), out.stderr
    out = subprocess.run([sys.executable, "-m", "audioclf", "plot", tmp_path / "long.wav",
                          "--start", "20", "-o", tmp_path / "x.png"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and out.stderr == (
        f"audioclf: error: {tmp_path / 'long.wav'}: a part from 20 s starts at or past its end "
        "(12.00 s)\n")


@pytest.mark.parametrize("fmt,file_sr", [("WAV", 16000), ("WAV", 44100), ("FLAC", 48000),
                                         ("OGG", 44100)])
def test_a_part_of_a_file_is_the_samples_read_whole_give_there(tmp_path, fmt, file_sr):
    """read_audio_segment seeks WAV and FLAC (a resampled file to the first input its filter
    reads, so the part joins the whole file's samples) and decodes OGG from its start."""
    from features.audio import read_audio_segment

    rng = np.random.default_rng(file_sr)
    path = tmp_path / f"p.{fmt.lower()}"
    sf.write(path, (0.2 * rng.standard_normal((file_sr * 20, 2))).astype(np.float32), file_sr,
             format=fmt)
    whole, _ = read_audio(path)
    for start, seconds in ((0.0, 3.0), (7.3, 2.2), (17.5, None), (19.99, 5.0)):
        a = int(round(start * SR))
        want = whole[a:] if seconds is None else whole[a:a + int(round(seconds * SR))]
        got = read_audio_segment(path, SR, start, seconds)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-6)
