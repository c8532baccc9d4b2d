"""Offline: datasets, cached parallel features, grouped search, evaluation, prediction.

Uses ``features`` and the model artifact (``audioclf.artifact``); never ``stream``.
"""
