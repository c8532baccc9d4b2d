import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOCLF_SHARED", REPO.parent / "shared"))
FSDD = SHARED / "data" / "fsdd"
VMIC = SHARED / "tools" / "virtual-mic.sh"
PLAYED_KINDS = ("siren", "noise", "chord")


def fsdd_manifest():
    """Rows of FSDD's manifest (path made absolute), or skip when ../shared is absent."""
    import csv

    manifest = FSDD / "manifest.csv"
    if not manifest.exists():
        pytest.skip("FSDD not available (../shared/data/fsdd)")
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["path"] = str(FSDD / r["path"])
    return rows


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def vmic_env():
    """Environment of a running virtual microphone (device "vmic"), or skip without one."""
    import subprocess

    if not VMIC.exists():
        pytest.skip("virtual mic tool not available (../shared/tools/virtual-mic.sh)")
    out = subprocess.run([str(VMIC), "start"], capture_output=True, text=True, timeout=180,
                         stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        pytest.skip(f"virtual mic did not start: {out.stderr.strip()[-300:]}")
    env = {}
    for line in out.stdout.splitlines():
        if line.startswith("export "):
            k, v = line[len("export "):].split("=", 1)
            env[k] = v
    yield env


def played_sounds_wav(path, seed: int = 11):
    """A 16 kHz WAV to play into the microphone: 0.5 s of silence, then 3 s of each of
    ``PLAYED_KINDS`` (sounds the default model knows)."""
    from features.audio import write_wav
    from train.synthetic import synth_clip

    rng = np.random.default_rng(seed)
    parts = [np.zeros(8000, np.float32)]
    for kind in PLAYED_KINDS:
        parts.append(synth_clip(kind, rng, seconds=3.0) / 0.5 * 0.3)
    write_wav(path, np.clip(np.concatenate(parts), -1, 1), 16000)
    return path
