"""Shipped model artifacts. ``default.joblib`` is trained on the project's synthetic sounds:

    audioclf train --synthetic --synthetic-per-class 100 --out models/default.joblib --n-iter 6 --seed 0 --no-cache
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# The shipped model's SHA-256, held by the code rather than a file beside the model: the
# package is what a user already trusts, so the default loads with AUDIOCLF_MODEL_KEY set (a key
# signs the team's own models) and a swapped default.joblib -- with a matching .sha256 -- is
# refused. Retraining the default means updating it (a test compares it with the file).
DEFAULT_SHA256 = "bcaaab8bcf6530fbcf7a0b6a724522b584fe9776fb9ea16c0212029070b53efa"


def default_model_path() -> str:
    return os.path.join(HERE, "default.joblib")
