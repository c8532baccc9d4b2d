"""Drift: the state machine, and detection of shifted audio against the default model's baseline."""
import numpy as np
import pytest

from audioclf.artifact import load_model
from features import batch_windows
from models import default_model_path
from stream.drift import DRIFT, OK, WARN, DriftDetector, DriftThresholds, evaluate_window
from train.synthetic import CLASSES, synth_clip


def test_hysteresis_state_machine():
    d = DriftDetector(k_enter=3, k_leave=2)
    assert [d.update(x) for x in [WARN, WARN, OK, WARN, WARN, WARN]] == \
        [OK, OK, OK, OK, OK, WARN]
    assert [d.update(x) for x in [DRIFT, DRIFT, DRIFT]] == [WARN, WARN, DRIFT]
    assert d.drift_detected
    assert [d.update(x) for x in [OK, DRIFT, OK, OK]] == [DRIFT, DRIFT, DRIFT, OK]


@pytest.fixture(scope="module")
def art():
    return load_model(default_model_path())


def held_out(seed, n_per_class=16, transform=lambda y: y):
    """Fresh clips from the training generator (a new seed: held out), all classes mixed."""
    rng = np.random.default_rng(seed)
    clips = [transform(synth_clip(k, rng)) for _ in range(n_per_class) for k in CLASSES]
    _, _, X, _ = batch_windows(clips, art_cfg())
    return X


def art_cfg():
    return load_model(default_model_path()).feature_config


def levels(X, art):
    labels = np.asarray(art.labels)[art.score(X).argmax(axis=1)]
    return evaluate_window(X, labels, art.baseline, DriftThresholds())


def test_in_distribution_is_ok_and_shifts_are_detected(art):
    ok = levels(held_out(101), art)
    assert ok["level"] == OK, ok
    rng = np.random.default_rng(5)
    shifts = {
        "noise 0 dB SNR": lambda y: (y + rng.standard_normal(len(y)) * np.std(y)).astype(np.float32),
        "-30 dB gain": lambda y: (y * 10 ** (-30 / 20)).astype(np.float32),
        "low-pass 500 Hz": lambda y: __import__("scipy.signal", fromlist=["x"]).sosfilt(
            __import__("scipy.signal", fromlist=["x"]).butter(6, 500, fs=16000, output="sos"),
            y).astype(np.float32),
    }
    for name, f in shifts.items():
        res = levels(held_out(202, transform=f), art)
        assert res["level"] in (WARN, DRIFT), (name, res)
        assert res["drift_share"] > ok["drift_share"], name
