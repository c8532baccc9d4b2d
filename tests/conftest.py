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


def start_shared_tool(tool, what: str, timeout: float) -> str:
    """``TOOL start`` from ../shared/tools; its stdout, or skip when absent or failing."""
    import subprocess

    if not tool.exists():
        pytest.skip(f"{what} tool not available (../shared/tools/{tool.name})")
    out = subprocess.run([str(tool), "start"], capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        pytest.skip(f"{what} did not start: {out.stderr.strip()[-300:]}")
    return out.stdout


@pytest.fixture(scope="session")
def vmic_env():
    """Environment of a running virtual microphone (device "vmic"), or skip without one."""
    env = {}
    for line in start_shared_tool(VMIC, "virtual mic", 180).splitlines():
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
