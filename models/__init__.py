"""Shipped model artifacts. ``default.joblib`` is trained on the project's synthetic sounds:

    audioclf train --synthetic --synthetic-per-class 100 --out models/default.joblib --n-iter 6 --seed 0 --no-cache
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def default_model_path() -> str:
    return os.path.join(HERE, "default.joblib")
