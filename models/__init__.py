"""Shipped model artifacts. ``default.joblib`` is trained on the project's synthetic sounds:

    audioclf train --synthetic --synthetic-per-class 100 --out models/default.joblib --n-iter 6 --seed 0 --no-cache
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# The shipped model's SHA-256, held by the code rather than a file beside the model: the
# package is what a user already trusts, so the default loads with AUDIOCLF_MODEL_KEY set (a key
# signs the team's own models) and a swapped default.joblib -- with a matching .sha256 -- is
# refused. Retraining the default means updating it (a test compares it with the file).
DEFAULT_SHA256 = "ed189c363f0df1c4e3b5f18968e66b9316bbf879b9a2cbaa8ca6bb0d7ba143c0"


def default_model_path() -> str:
    return os.path.join(HERE, "default.joblib")
