import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDIOCLF_SHARED", REPO.parent / "shared"))
FSDD = SHARED / "data" / "fsdd"


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
